import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { type ConnectFlows, oauthPages } from '../../src/server/oauth-pages.js';

/** A browser request as the pages read it: method, URL, headers and (for POST) a form body. */
function request(
  method: string,
  url: string,
  body = '',
  headers: Record<string, string> = {},
): IncomingMessage {
  const req = Readable.from(body ? [Buffer.from(body)] : []) as unknown as IncomingMessage;
  Object.assign(req, {
    method,
    url,
    headers: { host: '127.0.0.1:3000', 'content-type': 'application/x-www-form-urlencoded', ...headers },
  });
  return req;
}

const failing = (what: string): ConnectFlows => ({
  connectView: async () => {
    throw new Error(`${what} down`);
  },
  consent: async () => {
    throw new Error(`${what} down`);
  },
  callback: async () => {
    throw new Error(`${what} down`);
  },
});

const setCookies = (headers: Record<string, string | string[]>) => {
  const v = headers['set-cookie'];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
};

describe('the OAuth pages when something behind them fails', () => {
  it('answers a page (503, no stack, nothing internal) when the flow fails after it was taken, and clears the binding', async () => {
    const page = await oauthPages(failing('vault'))(request('GET', '/oauth/callback?state=s&code=c'));
    expect(page.status).toBe(503);
    expect(page.headers['content-type']).toMatch(/^text\/plain/);
    expect(page.body).toMatch(/could not be completed/);
    expect(page.body).not.toMatch(/vault down|Error|at /);
    expect(setCookies(page.headers).every((c) => /Max-Age=0/.test(c))).toBe(true);
    expect(setCookies(page.headers)).toHaveLength(2);
  });

  it('answers 503 when approving cannot reach the shared state or the authorization server', async () => {
    const page = await oauthPages(failing('redis'))(
      request('POST', '/oauth/connect', 'flow=f&csrf=c&action=approve', { origin: 'http://127.0.0.1:3000' }),
    );
    expect(page.status).toBe(503);
    expect(page.body).not.toMatch(/redis down/);
    expect(setCookies(page.headers)).toEqual([]);
  });
});

describe('the binding cookie is cleared only once it has served a flow', () => {
  const flows = (noFlow: boolean): ConnectFlows => ({
    connectView: async () => undefined,
    consent: async () => ({ ok: false, status: 403, reason: 'no' }),
    callback: async () =>
      noFlow
        ? { ok: false, status: 400, reason: 'This link is unknown, already used or expired.', noFlow: true }
        : { ok: false, status: 400, reason: 'This browser did not approve this connection.' },
  });

  it('a visit that brings no flow (a cross-site link to the callback) leaves the cookie', async () => {
    const page = await oauthPages(flows(true))(request('GET', '/oauth/callback'));
    expect(page.status).toBe(400);
    expect(setCookies(page.headers)).toEqual([]);
  });

  it('a callback that consumed a flow clears it, whatever the outcome', async () => {
    const page = await oauthPages(flows(false))(request('GET', '/oauth/callback?state=s&code=c'));
    expect(page.status).toBe(400);
    expect(setCookies(page.headers)).toHaveLength(2);
  });
});
