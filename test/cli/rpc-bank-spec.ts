/**
 * An RPC-style banking API (every operation a POST under one tag, `/api/v1/bank/<resource>/<verb>`):
 * the fixture of the read-like POST and path-prefix toolset tests.
 */
const post = (operationId: string, summary: string) => ({
  post: {
    operationId,
    summary,
    tags: ['bank'],
    requestBody: {
      required: true,
      content: {
        'application/json': {
          schema: { type: 'object', properties: { id: { type: 'string', maxLength: 40 } } },
        },
      },
    },
    responses: {
      '200': {
        description: 'ok',
        content: {
          'application/json': { schema: { type: 'object', properties: { ok: { type: 'boolean' } } } },
        },
      },
    },
  },
});

export const RPC_BANK = {
  openapi: '3.0.3',
  info: { title: 'RPC Bank', version: '1.0.0' },
  servers: [{ url: 'https://bank.example/' }],
  tags: [{ name: 'bank' }],
  paths: {
    '/api/v1/bank/accounts/get': post('accountsGet', 'Get an account'),
    '/api/v1/bank/accounts/list': post('accountsList', 'List accounts'),
    '/api/v1/bank/payments/search': post('paymentsSearch', 'Search payments'),
    '/api/v1/bank/payments/create': post('paymentsCreate', 'Create a payment'),
    '/api/v1/bank/messages/send': post('messagesSend', 'Send a message'),
    '/api/v1/bank/users': post('getOrCreateUser', 'Get or create a user'),
    '/api/v1/bank/users/lookup': post('usersLookup', 'Find a user by e-mail'),
  },
};

/** The tools `init` proposes as reads, and the POSTs that stay writes. */
export const READ_LIKE = ['accountsGet', 'accountsList', 'paymentsSearch', 'usersLookup'];
export const WRITES = ['paymentsCreate', 'messagesSend', 'getOrCreateUser'];
