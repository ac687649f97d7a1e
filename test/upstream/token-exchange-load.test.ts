import { describe, expect, it, vi } from 'vitest';
import { holdSubjectToken, type Principal } from '../../src/model/principal.js';

// oauth4webapi is loaded by the first exchange, not by every start (issue 22). A load that fails
// refuses that exchange with a clear error (fail closed: never a call without the caller's token).
vi.mock('oauth4webapi', () => {
  throw new Error('cannot load oauth4webapi');
});

describe('token exchange with a client library that fails to load', () => {
  it('refuses the exchange, naming the credential and not the secrets', async () => {
    const { createTokenExchanger } = await import('../../src/upstream/token-exchange.js');
    const secrets: string[] = [];
    const ex = createTokenExchanger(
      {
        tokenUrl: 'http://127.0.0.1:9/token',
        clientId: 'env:TX_ID',
        clientSecret: 'env:TX_SECRET',
        audience: 'https://upstream.test',
      },
      'credential idp',
      { TX_ID: 'gw-client', TX_SECRET: 'gw-secret-value-0001' },
      (v) => secrets.push(...v),
    );
    if (typeof ex === 'string') throw new Error(ex);
    const caller: Principal = { id: 'jwt:issuer#alice', scopes: [], via: 'jwt' };
    holdSubjectToken(caller, 'subject-token-value', Date.now() + 600_000);
    const refused = await ex.tokenFor(caller, ['orders:read']).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message: string },
    );
    expect(refused?.code).toBe('TOKEN_EXCHANGE_REFUSED');
    expect(refused?.message).toMatch(/^credential idp: the token exchange client could not be loaded/);
    expect(refused?.message).not.toContain('gw-secret-value-0001');
    expect(refused?.message).not.toContain('subject-token-value');
    // A second exchange tries the load again (a failed load is not kept), and is refused again.
    const again = await ex.tokenFor(caller, ['orders:read']).catch((e: { code?: string }) => e.code);
    expect(again).toBe('TOKEN_EXCHANGE_REFUSED');
  });
});
