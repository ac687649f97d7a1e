import { jsonOk, minimalSpec } from './helpers.js';

/**
 * The taint guard's CRM (unit and e2e tests): a customer read (personal data), a note read (free text
 * anyone can write), a search, and an outward write.
 */
export const CRM_SPEC = minimalSpec({
  '/customers/{id}': {
    get: {
      operationId: 'getCustomer',
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
      responses: jsonOk({
        type: 'object',
        properties: {
          id: { type: 'string' },
          name: { type: 'string' },
          email: { type: 'string', format: 'email' },
        },
      }),
    },
  },
  '/notes/{id}': {
    get: {
      operationId: 'getNote',
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
      responses: jsonOk({ type: 'object', properties: { id: { type: 'string' }, text: { type: 'string' } } }),
    },
  },
  '/search': {
    get: {
      operationId: 'searchWeb',
      parameters: [{ name: 'q', in: 'query', required: true, schema: { type: 'string' } }],
      responses: jsonOk({
        type: 'object',
        properties: { hits: { type: 'array', items: { type: 'string' } } },
      }),
    },
  },
  '/messages': {
    post: {
      operationId: 'sendMessage',
      requestBody: {
        required: true,
        content: {
          'application/json': {
            schema: {
              type: 'object',
              required: ['to', 'text'],
              properties: { to: { type: 'string' }, text: { type: 'string' } },
            },
          },
        },
      },
      responses: { '201': { description: 'sent' } },
    },
  },
});
