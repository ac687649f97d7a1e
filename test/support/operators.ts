/** Named operators (`admin.operators`) for the approval tests: each with a token of its own. */
export const ALICE_TOKEN = 'alice-operator-token-0123456789';
export const BOB_TOKEN = 'bob-operator-token-0123456789';
/** The caller id that is Bob himself (his agent's API key): Bob never approves its calls. */
export const BOB_AGENT = 'key:bob-agent';

/** The policy lines of an admin port with the shared ADMIN_TOKEN and the operators alice and bob. */
export const OPERATOR_LINES = [
  'admin:',
  '  token: env:ADMIN_TOKEN',
  '  operators:',
  '    - { id: alice, token: env:ALICE_TOKEN }',
  `    - { id: bob, token: env:BOB_TOKEN, principals: ["${BOB_AGENT}"] }`,
];

/** The gateway environment the lines above read. */
export const OPERATOR_ENV = { ALICE_TOKEN, BOB_TOKEN };

/** The approval id an APPROVAL_PENDING answer names. */
export function approvalIdOf(text: string): string {
  const id = /\bapr_[\w-]+/.exec(text)?.[0];
  if (!id) throw new Error(`no approval id in: ${text.slice(0, 300)}`);
  return id;
}
