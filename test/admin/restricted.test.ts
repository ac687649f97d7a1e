import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAdmin } from '../../src/admin/api.js';
import { type ControlEvent, Controller } from '../../src/control/controller.js';
import { createLogger } from '../../src/observe/log.js';
import { Metrics } from '../../src/observe/metrics.js';
import { createRedactor } from '../../src/protect/redactor.js';
import { createMemoryState } from '../../src/state/memory.js';
import { callPipeline, codeOf, type ShopGateway, startShopGateway } from '../support/gateway.js';
import { catalogOf, minimalSpec } from '../support/helpers.js';
import { adminApi } from '../support/http.js';
import { ADMIN_LINES, ADMIN_TOKEN, shopPolicy } from '../support/shop.js';
import { expectAudited } from '../support/wait.js';

const SCOPES = ['tools:read', 'tools:write', 'tools:delete'];
const BUDGET_POLICY = shopPolicy(
  ['budgets:', '  - { class: destructive, calls: 1, perSeconds: 3600 }', ...ADMIN_LINES],
  [
    '  - match: { name: deleteCustomer }',
    '    enabled: true',
    '    confirm: false',
    '    reason: the restricted-lift tests delete without asking anyone',
  ],
);

/**
 * `POST /restricted/<principal>/lift` (docs/budgets.md, "Lifting a restriction"): the reason's
 * limit of 500 characters, a caller that is not restricted, and a gateway that serves no budgets.
 */
describe('admin API: POST /restricted/<principal>/lift', () => {
  let fx: ShopGateway;
  let plain: ShopGateway;
  let next = 1001;

  /** Spends `who`'s budget of 1 and passes it: the caller is then read-only. */
  async function restrict(who: string) {
    const del = () => callPipeline(fx.gw, 'deleteCustomer', { customerId: `c_${next++}` }, who, SCOPES);
    expect(codeOf(await del())).toBe('OK');
    expect(codeOf(await del())).toBe('BUDGET_EXCEEDED');
  }
  const restricted = async () =>
    (
      (await adminApi(fx.gw.adminUrl!, ADMIN_TOKEN)('GET', '/restricted')).body.restricted as Array<{
        principal: string;
      }>
    ).map((r) => r.principal);

  beforeAll(async () => {
    fx = await startShopGateway({ policy: BUDGET_POLICY, admin: true });
    plain = await startShopGateway({ policy: shopPolicy(ADMIN_LINES), admin: true });
  }, 60_000);
  afterAll(async () => {
    await fx?.close();
    await plain?.close();
  });

  it('refuses a reason over 500 characters (400 USAGE) and lifts nothing; 500 characters are taken', async () => {
    await restrict('key:mallory');
    expect(await restricted()).toEqual(['key:mallory']);
    const admin = adminApi(fx.gw.adminUrl!, ADMIN_TOKEN, 'alice');
    const long = await admin('POST', '/restricted/key%3Amallory/lift', { reason: 'x'.repeat(501) });
    expect(long.status).toBe(400);
    expect(long.body.error).toBe('USAGE');
    expect(String(long.body.message)).toContain('500 characters');
    // A reason that is not text is refused the same way.
    const notText = await admin('POST', '/restricted/key%3Amallory/lift', { reason: 42 });
    expect(notText.status).toBe(400);
    expect(notText.body.error).toBe('USAGE');
    // Refused before anything was lifted: the caller is still read-only.
    expect(await restricted()).toEqual(['key:mallory']);

    const reason = `${'r'.repeat(499)}!`;
    const ok = await admin('POST', '/restricted/key%3Amallory/lift', { reason });
    expect(ok.status).toBe(200);
    expect(ok.body.lifted).toEqual(expect.objectContaining({ principal: 'key:mallory' }));
    expect(await restricted()).toEqual([]);
    await expectAudited(fx.auditFile, {
      kind: 'control',
      action: 'budget.lift',
      target: 'key:mallory',
      detail: expect.stringContaining(reason),
    });
  });

  it('answers 404 ADMIN_NOT_FOUND for a caller that is not restricted (never was, or already lifted)', async () => {
    const admin = adminApi(fx.gw.adminUrl!, ADMIN_TOKEN);
    await restrict('key:trent');
    const never = await admin('POST', '/restricted/key%3Anobody/lift', {});
    expect(never.status).toBe(404);
    expect(never.body.error).toBe('ADMIN_NOT_FOUND');
    expect(never.body.message).toBe('this caller is not restricted');
    // The restricted caller beside it is untouched.
    expect(await restricted()).toEqual(['key:trent']);
    expect((await admin('POST', '/restricted/key%3Atrent/lift')).status).toBe(200);
    const again = await admin('POST', '/restricted/key%3Atrent/lift');
    expect(again.status).toBe(404);
    expect(again.body.error).toBe('ADMIN_NOT_FOUND');
  });

  it('an admin server without the budget store answers 404 ADMIN_NOT_FOUND on /restricted and its lift', async () => {
    const controller = new Controller({
      catalog: await catalogOf(minimalSpec({})),
      env: {},
      state: createMemoryState(),
      onSecret: () => {},
      onControl: () => {},
      warn: () => {},
    });
    const events: ControlEvent[] = [];
    const bare = await startAdmin({
      controller,
      metrics: new Metrics(() => new Set()),
      metricsPublic: false,
      reloadSpec: async () => ({ tools: 0, pending: [] }),
      token: ADMIN_TOKEN,
      port: 0,
      host: '127.0.0.1',
      logger: createLogger({ level: 'silent', redactor: createRedactor() }),
      onControl: (e) => events.push(e),
      onAuthFailure: () => {},
    });
    try {
      const admin = adminApi(bare.url, ADMIN_TOKEN);
      const list = await admin('GET', '/restricted');
      expect(list.status).toBe(404);
      expect(list.body.error).toBe('ADMIN_NOT_FOUND');
      expect(list.body.message).toBe('budgets are not served by this gateway');
      // Answered before the body is judged: a bad reason gets the same 404, not USAGE.
      for (const body of [{ reason: 'no budgets here' }, { reason: 'x'.repeat(501) }]) {
        const lift = await admin('POST', '/restricted/key%3Amallory/lift', body);
        expect(lift.status).toBe(404);
        expect(lift.body.error).toBe('ADMIN_NOT_FOUND');
        expect(lift.body.message).toBe('budgets are not served by this gateway');
      }
      expect(events.filter((e) => e.action === 'budget.lift')).toEqual([]);
    } finally {
      await bare.close();
    }
  });

  it('a served gateway whose policy sets no budgets lists nobody and lifts nobody (404 ADMIN_NOT_FOUND)', async () => {
    const admin = adminApi(plain.gw.adminUrl!, ADMIN_TOKEN);
    const list = await admin('GET', '/restricted');
    expect(list.status).toBe(200);
    expect(list.body.restricted).toEqual([]);
    const lift = await admin('POST', '/restricted/key%3Amallory/lift', { reason: 'nothing to lift' });
    expect(lift.status).toBe(404);
    expect(lift.body.error).toBe('ADMIN_NOT_FOUND');
  });
});
