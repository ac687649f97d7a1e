import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempTree } from '../support/paths.js';
import { SHOP_SPEC, type Shop, shopEnv, startShop } from '../support/shop.js';
import { onJsonLines, sendJson, serveArgs, spawnCli } from '../support/stdio.js';
import { waitFor } from '../support/wait.js';

type Msg = Record<string, unknown> & {
  id?: unknown;
  error?: { code: number; message: string; data?: unknown };
};

/** `levels` nested objects around `inner`. */
function nest(levels: number, inner: unknown): unknown {
  let v = inner;
  for (let i = 0; i < levels; i++) v = { a: v };
  return v;
}

/**
 * The built CLI over stdio, spoken to in raw JSON-RPC lines (a client library would refuse to send
 * the frames below), with the HTTP transport's caps: 1 MiB per frame, 64 levels of nesting.
 */
describe('stdio frames get the HTTP caps (real CLI over stdio)', () => {
  let shop: Shop;
  let child: ChildProcessWithoutNullStreams;
  let stderr = '';
  const answers = new Map<unknown, Msg>();
  let exited = false;

  const answerTo = (id: unknown) =>
    waitFor(() => answers.get(id), { what: `the answer to ${String(id)}`, timeout: 20_000 });
  /** Writes one line (a string is written as it is), in pieces as a pipe would carry a big one. */
  const writeLine = (line: string) =>
    new Promise<void>((resolve, reject) =>
      child.stdin.write(`${line}\n`, (e) => (e ? reject(e) : resolve())),
    );
  const callFrame = (id: string, args: unknown) =>
    JSON.stringify({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name: 'getCustomer', arguments: args },
    });
  /** The gateway still answers a plain call after each refusal, and reaches the shop for it. */
  async function stillServing(tag: string) {
    const before = shop.requests.length;
    sendJson(child, {
      id: `ok-${tag}`,
      method: 'tools/call',
      params: { name: 'getCustomer', arguments: { customerId: 'c_1001' } },
    });
    const ok = await answerTo(`ok-${tag}`);
    expect(ok.error, JSON.stringify(ok).slice(0, 300)).toBeUndefined();
    expect(JSON.stringify(ok.result)).toContain('c_1001');
    expect(shop.requests.length).toBe(before + 1);
    expect(exited).toBe(false);
  }

  beforeAll(async () => {
    shop = await startShop();
    const dir = tempTree({});
    child = spawnCli(
      serveArgs({ spec: SHOP_SPEC, baseUrl: shop.url, auditFile: join(dir, 'a.jsonl'), logLevel: 'info' }),
      shopEnv(shop),
    );
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.once('exit', () => {
      exited = true;
    });
    onJsonLines(child.stdout, (m) => answers.set(m.id, m as Msg));
    sendJson(child, {
      id: 'init',
      method: 'initialize',
      params: {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 'stdio-caps', version: '1' },
      },
    });
    await answerTo('init');
    sendJson(child, { method: 'notifications/initialized' });
  }, 30_000);
  afterAll(async () => {
    if (child && !exited) {
      child.stdin.end();
      await new Promise((r) => child.once('close', r));
    }
    await shop?.close();
  });

  it('refuses a frame nested 65 levels deep with -32600 under its id, and keeps serving', async () => {
    const before = shop.requests.length;
    // The frame is level 0, params 1, arguments 2: 62 more levels reach level 64.
    await writeLine(callFrame('deep', { customerId: 'c_1001', x: nest(62, 1) }));
    const deep = await answerTo('deep');
    expect(deep.error).toMatchObject({ code: -32600, data: { code: 'HTTP_BAD_REQUEST' } });
    expect(deep.error?.message).toContain('deeper than 64 levels');
    // One level less is a frame like any other (here refused by the tool's schema, after dispatch).
    await writeLine(callFrame('edge', { customerId: 'c_1001', x: nest(61, 1) }));
    expect((await answerTo('edge')).error?.code).not.toBe(-32600);
    expect(shop.requests.length).toBe(before);
    await stillServing('deep');
  });

  it('refuses a __proto__ key hidden 70 levels down, where the argument check once stopped looking', async () => {
    const hidden = nest(70, JSON.parse('{"__proto__":{"admin":true}}'));
    await writeLine(callFrame('hidden', { customerId: 'c_1001', x: hidden }));
    expect((await answerTo('hidden')).error).toMatchObject({ code: -32600 });
    await stillServing('hidden');
  });

  it('refuses a frame over 1 MiB with -32000 under its id (read from the discarded frame), and keeps serving', async () => {
    const before = shop.requests.length;
    const big = callFrame('big', { customerId: 'c_1001', pad: 'x'.repeat(1024 * 1024) });
    expect(big.length).toBeGreaterThan(1024 * 1024);
    await writeLine(big);
    const answer = await answerTo('big');
    expect(answer.error).toMatchObject({ code: -32000, data: { code: 'HTTP_BODY_TOO_LARGE' } });
    expect(answer.error?.message).toBe('Frame larger than 1048576 bytes.');
    expect(shop.requests.length).toBe(before);
    await stillServing('big');
  });

  it('survives a frame larger than the SDK reader would hold (12 MiB), which used to end the session', async () => {
    // The id comes last, after the padding: it is read from the stream, not from a kept buffer.
    const huge = `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"getCustomer","arguments":{"pad":"${'y'.repeat(12 * 1024 * 1024)}"}},"id":"huge"}`;
    await writeLine(huge);
    expect((await answerTo('huge')).error).toMatchObject({ code: -32000 });
    await stillServing('huge');
    expect(stderr).toContain('stdio frame refused');
  }, 60_000);
});
