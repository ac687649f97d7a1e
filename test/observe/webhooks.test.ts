import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Alerts } from '../../src/observe/alerts.js';
import { DELIVERY_DEFAULTS, Webhooks } from '../../src/observe/webhooks.js';
import { alertsSchema } from '../../src/policy/schema.js';
import { type Listening, listen } from '../support/http.js';
import { holds, waitFor } from '../support/wait.js';

const silent = pino({ level: 'silent' });

/** A webhook receiver on port 0 that answers each POST as `answer` says (by its position). */
async function receiver(answer: (n: number, req: IncomingMessage, res: ServerResponse) => void) {
  const bodies: unknown[] = [];
  const statuses: number[] = [];
  let n = 0;
  const server = await listen(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const i = n++;
    res.on('finish', () => {
      statuses.push(res.statusCode);
      if (res.statusCode < 300) bodies.push(JSON.parse(Buffer.concat(chunks).toString()));
    });
    answer(i, req, res);
  });
  return { ...server, bodies, statuses, requests: () => n };
}

/** Fires one alert (first use of a tool) into webhooks at `url`. */
function fireOne(url: string, delivery = {}): Alerts {
  const alerts = new Alerts({
    config: alertsSchema.parse({ webhooks: [{ url }] }),
    logger: silent,
    delivery: { initialDelayMs: 50, maxDelayMs: 200, ...delivery },
  });
  alerts.observe({
    input: { name: 'getOrder', arguments: {}, principal: { id: 'ci', scopes: [], via: 'stdio' } },
    tool: { name: 'getOrder' },
  } as never);
  return alerts;
}

const open: Listening[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

describe('alert webhooks', () => {
  it('retries a failing receiver in the background and delivers the alert once', async () => {
    const hook = await receiver((i, _req, res) => res.writeHead(i < 2 ? 503 : 204).end());
    open.push(hook);
    const alerts = fireOne(`${hook.url}/hook`);
    await waitFor(() => hook.bodies.length === 1, { what: 'the alert delivered after two failures' });
    await alerts.flush();
    expect(hook.statuses).toEqual([503, 503, 204]);
    expect(hook.bodies).toEqual([
      expect.objectContaining({ source: 'mcp-warden', rule: 'firstUse', subject: 'ci → getOrder' }),
    ]);
  });

  it('retries a try that timed out, but not a refusal another try would not change', async () => {
    const refusing = await receiver((_i, _req, res) => res.writeHead(400).end());
    open.push(refusing);
    const a = fireOne(`${refusing.url}/hook`);
    await waitFor(() => refusing.requests() === 1, { what: 'the first try' });
    await a.flush();
    expect(refusing.statuses).toEqual([400]);

    // Hangs on the first try (cut by the per-try time limit), answers the second.
    const slow = await receiver((i, _req, res) => {
      if (i > 0) res.writeHead(200).end();
    });
    open.push(slow);
    fireOne(`${slow.url}/hook`, { timeoutMs: 200 });
    await waitFor(() => slow.bodies.length === 1, { what: 'the alert delivered after a timed-out try' });
    expect(slow.requests()).toBe(2);
  });

  it('gives up after the bounded number of tries', async () => {
    const down = await receiver((_i, _req, res) => res.writeHead(500).end());
    open.push(down);
    fireOne(`${down.url}/hook`, { attempts: 3 });
    await waitFor(() => down.requests() === 3, { what: 'three tries' });
    // No fourth try comes, for longer than the largest backoff.
    await holds(() => expect(down.requests()).toBe(3), { during: 600, what: 'three tries, no more' });
  });

  it('never holds a flush (shutdown) longer than its limit for a receiver that hangs', async () => {
    expect(DELIVERY_DEFAULTS.flushLimitMs).toBe(2000);
    const hung = await receiver(() => {});
    open.push(hung);
    // The try outlives the limit; a retry would follow within 200 ms of it failing.
    const alerts = fireOne(`${hung.url}/hook`, { timeoutMs: 10_000 });
    await waitFor(() => hung.requests() === 1, { what: 'the receiver to get the alert' });
    let flushed = false;
    void alerts.flush().then(() => {
      flushed = true;
    });
    // The default limit plus a margin for a loaded machine; the receiver never answers.
    await waitFor(() => flushed, { what: 'flush to give up on the hung receiver', timeout: 2000 + 1500 });
    // Given up means given up: no retry reaches the receiver afterwards.
    await holds(() => expect(hung.requests()).toBe(1), { during: 600, what: 'no try after giving up' });
  });

  it('posts nothing and waits for nothing without webhooks', async () => {
    const w = new Webhooks([], silent);
    w.post({ generic: {}, slackText: '' });
    await w.flush();
  });
});
