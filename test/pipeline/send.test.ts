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
});
