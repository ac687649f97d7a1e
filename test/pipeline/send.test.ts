import type { Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallContext } from '../../src/pipeline/context.js';
import { createSend } from '../../src/pipeline/send.js';
import { startUpstream } from '../support/helpers.js';
import { contextFor } from '../support/pipeline.js';

let up: Awaited<ReturnType<typeof startUpstream>>;
beforeAll(async () => {
  up = await startUpstream((req, res) => {
    if (req.url.startsWith('/slow')) {
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'), 2000);
      return;
    }
    if (req.url.startsWith('/huge')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 'a');
      let sent = 0;
      const pump = () => {
        while (sent < 50 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return res.once('drain', pump);
        }
        res.end();
      };
      res.on('error', () => {});
      pump();
      return;
    }
    if (req.url.startsWith('/declared-huge')) {
      // Announces its length: the cap applies to an announced body as to a chunked one.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(4 * 1024 * 1024) });
      res.on('error', () => {});
      res.end(Buffer.alloc(4 * 1024 * 1024, 'b'));
      return;
    }
    if (req.url.startsWith('/chunks')) {
      // A body in many writes, each byte telling its position: reassembly is checked byte for byte.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      let i = 0;
      const next = () => {
        if (i === 40) return res.end();
        res.write(Buffer.from(Array.from({ length: 4096 }, (_, k) => (i * 4096 + k) % 251)));
        i++;
        setImmediate(next);
      };
      next();
      return;
    }
    if (req.url.startsWith('/slow-body')) {
      // Headers at once, the body never finished.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"a":');
      res.on('error', () => {});
      return;
    }
    if (req.url.startsWith('/redirect')) {
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
      return;
    }
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ method: req.method, url: req.url, body: req.body }));
  });
});
afterAll(() => up.close());

function ctxFor(
  path: string,
  extra: Partial<NonNullable<CallContext['outbound']>> = {},
  signal?: AbortSignal,
): CallContext {
  const ctx = contextFor({ name: 't', ...(signal ? { signal } : {}) });
  ctx.outbound = {
    method: 'GET',
    origin: up.origin,
    pathAndQuery: path,
    headers: { accept: 'application/json' },
    ...extra,
  };
  return ctx;
}

describe('send stage', () => {
  it('sends the request and records status, type, body and time', async () => {
    const send = createSend();
    const ctx = ctxFor('/echo?a=1', {
      method: 'POST',
      body: '{"x":1}',
      headers: { 'content-type': 'application/json' },
    });
    await send(ctx);
    expect(ctx.response?.status).toBe(200);
    expect(ctx.response?.contentType).toBe('application/json');
    expect(JSON.parse(ctx.response!.body.toString())).toEqual({
      method: 'POST',
      url: '/echo?a=1',
      body: '{"x":1}',
    });
    expect(ctx.response?.truncated).toBe(false);
    await send.close();
  });

  it('cuts a slow upstream at the timeout with UPSTREAM_TIMEOUT', async () => {
    const send = createSend({ timeoutMs: 200 });
    const t0 = Date.now();
    await expect(send(ctxFor('/slow'))).rejects.toMatchObject({ code: 'UPSTREAM_TIMEOUT' });
    expect(Date.now() - t0).toBeLessThan(1500);
    await send.close();
  });

  it('stops reading a huge response at the cap and marks it truncated', async () => {
    const send = createSend({ maxResponseBytes: 100_000 });
    const ctx = ctxFor('/huge');
    await send(ctx);
    expect(ctx.response?.truncated).toBe(true);
    expect(ctx.response?.body.length).toBe(100_000);
    await send.close();
  });

  it('ends a try whose dispatcher throws at once, with the cause and no timer left (not at the timeout)', async () => {
    const throwing = {
      dispatch() {
        throw new TypeError('invalid dispatch options');
      },
      close: async () => {},
    } as unknown as Dispatcher;
    const send = createSend({ timeoutMs: 5_000, dispatcher: throwing });
    const t0 = Date.now();
    await expect(send(ctxFor('/echo'))).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    expect(Date.now() - t0).toBeLessThan(1_000);
    await send.close();
  });

  it('does not follow redirects', async () => {
    const send = createSend();
    const ctx = ctxFor('/redirect');
    await send(ctx);
    expect(ctx.response?.status).toBe(302);
    await send.close();
  });

  it('reports an unreachable upstream as UPSTREAM_UNAVAILABLE and a cancelled call as CANCELLED', async () => {
    const send = createSend({ timeoutMs: 2000 });
    const ctx = ctxFor('/x');
    ctx.outbound!.origin = 'http://127.0.0.1:1';
    await expect(send(ctx)).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    const ac = new AbortController();
    const pending = send(ctxFor('/slow', {}, ac.signal));
    setTimeout(() => ac.abort(), 50);
    await expect(pending).rejects.toMatchObject({ code: 'CANCELLED' });
    await send.close();
  });

  it('reassembles a body that arrives in many pieces, byte for byte', async () => {
    const send = createSend();
    const ctx = ctxFor('/chunks');
    await send(ctx);
    const body = ctx.response!.body;
    expect(body.length).toBe(40 * 4096);
    expect(body.every((b, k) => b === k % 251)).toBe(true);
    expect(ctx.response?.truncated).toBe(false);
    expect(ctx.response?.contentType).toBe('application/octet-stream');
    expect(ctx.response?.headers['content-type']).toBe('application/octet-stream');
    await send.close();
  });

  it('caps an announced body above the cap too, and the next call on the pool still works', async () => {
    const send = createSend({ maxResponseBytes: 10_000 });
    const ctx = ctxFor('/declared-huge');
    await send(ctx);
    expect(ctx.response?.truncated).toBe(true);
    expect(ctx.response?.body.length).toBe(10_000);
    expect(ctx.response?.body.every((b) => b === 0x62)).toBe(true);
    const after = ctxFor('/echo');
    await send(after);
    expect(after.response?.status).toBe(200);
    await send.close();
  });

  it('times out while the body is still arriving, and cancels while it is', async () => {
    const send = createSend({ timeoutMs: 200 });
    const t0 = Date.now();
    await expect(send(ctxFor('/slow-body'))).rejects.toMatchObject({ code: 'UPSTREAM_TIMEOUT' });
    expect(Date.now() - t0).toBeLessThan(1500);
    await send.close();
    const patient = createSend({ timeoutMs: 5000 });
    const ac = new AbortController();
    const pending = patient(ctxFor('/slow-body', {}, ac.signal));
    setTimeout(() => ac.abort(), 100);
    await expect(pending).rejects.toMatchObject({ code: 'CANCELLED' });
    await patient.close();
  });

  it('refuses a call cancelled before it is sent, without sending it', async () => {
    const send = createSend();
    const ac = new AbortController();
    ac.abort();
    const before = up.requests.length;
    await expect(send(ctxFor('/echo?never', {}, ac.signal))).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(up.requests.length).toBe(before);
    await send.close();
  });

  it('refuses at once a call cancelled or timed out while waiting for a connection (the pool is full), never sending it', async () => {
    const { Agent } = await import('undici');
    const dispatcher = new Agent({ connections: 1 });
    const send = createSend({ dispatcher, timeoutMs: 5000 });
    const slow = ctxFor('/slow');
    let busyDone = false;
    const busy = send(slow).then(() => {
      busyDone = true;
    });
    const ac = new AbortController();
    const queued = send(ctxFor('/echo?queued-cancel', {}, ac.signal));
    setTimeout(() => ac.abort(), 50);
    await expect(queued).rejects.toMatchObject({ code: 'CANCELLED' });
    const impatient = createSend({ dispatcher, timeoutMs: 200 });
    await expect(impatient(ctxFor('/echo?queued-timeout'))).rejects.toMatchObject({
      code: 'UPSTREAM_TIMEOUT',
    });
    // Both refused while the slow call still held the only connection, which it keeps to its end.
    expect(busyDone).toBe(false);
    await busy;
    expect(slow.response?.status).toBe(200);
    // The connection is free again: the dropped requests were never sent, and the pool still serves.
    const after = ctxFor('/echo?after');
    await send(after);
    expect(after.response?.status).toBe(200);
    expect(up.requests.map((r) => r.url).filter((u) => u.startsWith('/echo?queued'))).toEqual([]);
    await dispatcher.close();
  });
});
