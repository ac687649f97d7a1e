import { request } from 'node:http';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildView, type ToolView } from '../../src/control/view.js';
import type { Catalog } from '../../src/model/catalog.js';
import { evaluatePolicy } from '../../src/policy/evaluate.js';
import { parsePolicy } from '../../src/policy/load.js';
import { Callers, newApiKey } from '../../src/server/callers.js';
import { type RunningHttp, startHttp } from '../../src/server/http.js';
import { type Caller, ListChanges } from '../../src/server/list-changes.js';
import { createServerFactory } from '../../src/server/mcp.js';
import { frame, postMcp } from '../support/http.js';
import { itemsCatalog } from '../support/pipeline.js';
import { eventually, holds, waitFor } from '../support/wait.js';

// getPart is a read (tools:read); createItem, enabled, is a write (tools:write).
const POLICY = `version: 1
mode: read-write
rules:
  - match: { name: createItem }
    enabled: true
`;
const READER: Caller = { id: 'key:reader', scopes: ['tools:read'] };
const WRITER: Caller = { id: 'key:writer', scopes: ['tools:read', 'tools:write'] };

/** The view the policy gives the items catalogue, with these runtime switches. */
function viewWith(catalog: Catalog, runtime: Parameters<typeof buildView>[2], version = 1): ToolView {
  const p = parsePolicy(POLICY, 'test.yaml');
  return buildView(evaluatePolicy(catalog, { doc: p.doc }), new Map(), runtime, version);
}
const NO_SWITCHES = { kill: 'none', toggles: new Map() } as const;

/** The real HTTP transport and MCP surface over the items catalogue, callers by API key (`id: [scopes]`). */
async function serve(
  catalog: Catalog,
  view: () => ToolView,
  changes: ListChanges,
  keys: Record<string, { hash: string; scopes: string[] }>,
): Promise<RunningHttp> {
  const doc = parsePolicy(
    [
      'version: 1',
      'callers:',
      '  apiKeys:',
      ...Object.entries(keys).map(
        ([id, k]) => `    - { id: ${id}, hash: "${k.hash}", scopes: [${k.scopes.join(', ')}] }`,
      ),
      '',
    ].join('\n'),
    'w.yaml',
  ).doc;
  return startHttp({
    factory: createServerFactory({
      catalog,
      pipeline: { call: () => Promise.reject(new Error('no calls here')) },
      view,
      inBandElicitation: false,
    }),
    logger: pino({ level: 'silent' }),
    callers: (url) =>
      new Callers({
        callers: doc.callers,
        environment: 'dev',
        resource: url,
        loopback: true,
        scopesInUse: () => ['tools:read', 'tools:write'],
        warn: () => {},
      }),
    port: 0,
    changes,
  });
}

/** A 2026-07-28 client over HTTP with this bearer key. */
async function modernClient(url: string, key: string): Promise<Client> {
  const client = new Client(
    { name: 'listener', version: '1' },
    { versionNegotiation: { mode: { pin: '2026-07-28' } } },
  );
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
    }),
  );
  return client;
}

describe('ListChanges: who is told of a change', () => {
  let catalog: Catalog;
  beforeAll(async () => {
    catalog = await itemsCatalog();
  });

  it('tells a listener only when the list for its own scopes changed', () => {
    let view = viewWith(catalog, NO_SWITCHES);
    const changes = new ListChanges({ view: () => view });
    const told: string[] = [];
    changes.listen(READER, () => told.push('reader'));
    changes.listen(WRITER, () => told.push('writer'));

    // The reader cannot see createItem: turning it off changes only the writer's list.
    view = viewWith(catalog, { kill: 'none', toggles: new Map([['createItem', 'disabled']]) });
    changes.changed();
    expect(told).toEqual(['writer']);

    // A refresh that changes nothing anyone sees (another instance re-read the same state) tells no one.
    view = viewWith(catalog, { kill: 'none', toggles: new Map([['createItem', 'disabled']]) }, 2);
    changes.changed();
    expect(told).toEqual(['writer']);

    // The kill switch hides everything: both lists change.
    view = viewWith(catalog, { kill: 'off', toggles: new Map() });
    changes.changed();
    expect(told).toEqual(['writer', 'reader', 'writer']);
  });

  it('stops telling a listener that unsubscribed, and a failing listener does not stop the others', () => {
    let view = viewWith(catalog, NO_SWITCHES);
    const changes = new ListChanges({ view: () => view });
    const told: string[] = [];
    const stop = changes.listen(READER, () => told.push('gone'));
    changes.listen(READER, () => {
      throw new Error('a broken stream');
    });
    changes.listen(READER, () => told.push('reader'));
    stop();
    view = viewWith(catalog, { kill: 'off', toggles: new Map() });
    changes.changed();
    expect(told).toEqual(['reader']);
    expect(changes.counts.listeners).toBe(2);
  });

  it('bounds streams per caller and in all, and gives a slot back once', () => {
    const changes = new ListChanges({
      view: () => viewWith(catalog, NO_SWITCHES),
      limits: { perCaller: 2, total: 3 },
    });
    const a1 = changes.claim(READER);
    const a2 = changes.claim(READER);
    expect(changes.claim(READER)).toBe('caller');
    const b1 = changes.claim(WRITER);
    expect(changes.claim(WRITER)).toBe('total');
    if (typeof a1 === 'string' || typeof a2 === 'string' || typeof b1 === 'string')
      throw new Error('refused');
    a1.release();
    a1.release();
    expect(changes.counts.streams).toBe(2);
    expect(typeof changes.claim(WRITER)).toBe('object');
    expect(changes.claim(READER)).toBe('total');
  });

  it('gives a listen subscription to the caller whose slot opened it, and none without a slot', () => {
    let view = viewWith(catalog, NO_SWITCHES);
    const warned: string[] = [];
    const changes = new ListChanges({ view: () => view, warn: (m) => warned.push(m) });
    const slot = changes.claim(READER);
    if (typeof slot === 'string') throw new Error('refused');
    const events: string[] = [];
    changes.within(slot, () => changes.bus.subscribe((e) => events.push(`reader:${e.kind}`)));
    changes.bus.subscribe((e) => events.push(`nobody:${e.kind}`));
    expect(warned).toHaveLength(1);
    view = viewWith(catalog, { kill: 'off', toggles: new Map() });
    changes.bus.publish({ kind: 'tools_list_changed' });
    expect(events).toEqual(['reader:tools_list_changed']);
  });
});

describe('notification streams over HTTP', () => {
  const reader = newApiKey();
  const writer = newApiKey();
  const bearer = (k: { key: string }) => ({ authorization: `Bearer ${k.key}` });
  let catalog: Catalog;
  let view: ToolView;
  let changes: ListChanges;
  let http: RunningHttp;

  beforeAll(async () => {
    catalog = await itemsCatalog();
    view = viewWith(catalog, NO_SWITCHES);
    changes = new ListChanges({
      view: () => view,
      limits: { perCaller: 2, total: 3, keepAliveMs: 50 },
    });
    http = await serve(catalog, () => view, changes, {
      reader: { hash: reader.hash, scopes: ['tools:read'] },
      writer: { hash: writer.hash, scopes: ['tools:read', 'tools:write'] },
    });
  });
  afterAll(() => http?.close());

  const change = (runtime: Parameters<typeof buildView>[2]) => {
    view = viewWith(catalog, runtime);
    changes.changed();
  };

  /** Opens a GET stream and collects its text as it arrives. */
  async function openGet(headers: Record<string, string>) {
    const abort = new AbortController();
    const res = await fetch(http.url, {
      headers: { accept: 'text/event-stream', ...headers },
      signal: abort.signal,
    });
    const got = { text: '', ended: false, status: res.status, type: res.headers.get('content-type') };
    if (res.ok && res.body) {
      const decoder = new TextDecoder();
      void (async () => {
        try {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>)
            got.text += decoder.decode(chunk, { stream: true });
          got.ended = true;
        } catch {
          /* aborted by the test */
        }
      })();
    }
    const json = res.ok
      ? undefined
      : ((await res.json()) as { error: { message: string; data: { code: string } } });
    return { got, close: () => abort.abort(), json };
  }

  it('refuses a GET stream without a credential (401) or from a foreign Origin (403), like a POST', async () => {
    const anonymous = await openGet({});
    expect([anonymous.got.status, anonymous.json?.error.data.code]).toEqual([401, 'AUTH_REQUIRED']);
    const foreign = await openGet({ ...bearer(reader), origin: 'https://evil.example' });
    expect([foreign.got.status, foreign.json?.error.data.code]).toEqual([403, 'HTTP_FORBIDDEN_HOST']);
    // Not asking for a stream: the stateless endpoint has nothing else to GET.
    const plain = await fetch(http.url, { headers: bearer(reader) });
    expect(plain.status).toBe(405);
    await plain.body?.cancel();
    expect(changes.counts.streams).toBe(0);
  });

  it('sends keep-alive comments and tools/list_changed when the caller’s own list changes', async () => {
    const r = await openGet(bearer(reader));
    const w = await openGet(bearer(writer));
    try {
      expect([r.got.status, r.got.type]).toEqual([200, 'text/event-stream']);
      await eventually(() => expect(r.got.text).toMatch(/^retry: \d+\n\n(.|\n)*: keepalive\n\n/), {
        what: 'the retry hint and a keep-alive comment',
      });
      const told = (s: typeof r) =>
        s.got.text.split('"method":"notifications/tools/list_changed"').length - 1;
      // Positive control: both are told when everything is switched off, and when it comes back.
      change({ kill: 'off', toggles: new Map() });
      await eventually(() => expect([told(r), told(w)]).toEqual([1, 1]), {
        what: 'both told of the kill switch',
      });
      change(NO_SWITCHES);
      await eventually(() => expect([told(r), told(w)]).toEqual([2, 2]), { what: 'both told it is over' });
      // Read-only hides createItem, which only the writer sees: only the writer is told.
      change({ kill: 'read-only', toggles: new Map() });
      await eventually(() => expect(told(w)).toBe(3), { what: 'the writer told of read-only' });
      await holds(() => expect(told(r)).toBe(2), {
        during: 300,
        what: 'the reader not told of a tool it cannot see',
      });
    } finally {
      r.close();
      w.close();
    }
    change(NO_SWITCHES);
    await waitFor(() => changes.counts.streams === 0 && changes.counts.listeners === 0, {
      what: 'the closed streams to give their slots back',
    });
  });

  it('refuses one stream too many, per caller and in all, GET and listen alike', async () => {
    const open = [await openGet(bearer(reader)), await openGet(bearer(reader))];
    try {
      const third = await openGet(bearer(reader));
      expect([third.got.status, third.json?.error.data.code]).toEqual([429, 'HTTP_TOO_MANY_STREAMS']);
      expect(third.json?.error.message).toMatch(/for this caller \(2\)/);
      const listen = await postMcp(
        http.url,
        frame('listen:1', 'subscriptions/listen', { notifications: { toolsListChanged: true } }),
        bearer(reader),
      );
      expect(listen.status).toBe(429);
      expect(((await listen.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
        'HTTP_TOO_MANY_STREAMS',
      );
      open.push(await openGet(bearer(writer)));
      const over = await openGet(bearer(writer));
      expect([over.got.status, over.json?.error.data.code]).toEqual([429, 'HTTP_TOO_MANY_STREAMS']);
      expect(over.json?.error.message).toMatch(/on this server \(3\)/);
    } finally {
      for (const s of open) s.close();
    }
    await waitFor(() => changes.counts.streams === 0, { what: 'every slot given back' });
  });

  it('serves a 2026-07-28 listen stream to the caller whose view it follows', async () => {
    const told: number[] = [];
    const client = await modernClient(http.url, writer.key);
    client.setNotificationHandler('notifications/tools/list_changed', () => void told.push(Date.now()));
    try {
      const sub = await client.listen({ toolsListChanged: true });
      expect(sub.honoredFilter).toEqual({ toolsListChanged: true });
      expect(changes.counts.streams).toBe(1);
      change({ kill: 'none', toggles: new Map([['createItem', 'disabled']]) });
      await waitFor(() => told.length === 1, { what: 'list_changed on the listen stream' });
      await sub.close();
      await waitFor(() => changes.counts.streams === 0, { what: 'the listen slot given back' });
    } finally {
      change(NO_SWITCHES);
      await client.close();
    }
  });
});

describe('stream lifetime and close', () => {
  const key = newApiKey();
  const auth = { authorization: `Bearer ${key.key}` };
  const keys = { k: { hash: key.hash, scopes: ['tools:read'] } };
  const getStream = (url: string) => fetch(url, { headers: { accept: 'text/event-stream', ...auth } });

  it('ends GET and listen streams cleanly once their lifetime is over', async () => {
    const catalog = await itemsCatalog();
    const view = viewWith(catalog, NO_SWITCHES);
    const changes = new ListChanges({ view: () => view, limits: { lifetimeMs: 200 } });
    const http = await serve(catalog, () => view, changes, keys);
    let client: Client | undefined;
    try {
      // GET: the body ends without an error; the retry hint has the client open the next one soon.
      const res = await getStream(http.url);
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/^retry: \d+\n\n$/);
      // Listen: the empty listen result, which a client tells apart from a dropped stream.
      client = await modernClient(http.url, key.key);
      const sub = await client.listen({ toolsListChanged: true });
      expect(await sub.closed).toBe('graceful');
      await waitFor(() => changes.counts.streams === 0, { what: 'the slots given back' });
    } finally {
      await client?.close();
      await http.close();
    }
  });

  it('ends every open stream cleanly when the endpoint closes', async () => {
    const catalog = await itemsCatalog();
    const view = viewWith(catalog, NO_SWITCHES);
    const changes = new ListChanges({ view: () => view });
    const http = await serve(catalog, () => view, changes, keys);
    const client = await modernClient(http.url, key.key);
    try {
      const sub = await client.listen({ toolsListChanged: true });
      const body = (await getStream(http.url)).text();
      await waitFor(() => changes.counts.streams === 2, { what: 'both streams open' });
      await http.close();
      expect(await sub.closed).toBe('graceful');
      expect(await body).toMatch(/^retry: \d+\n\n$/);
      expect(changes.counts).toEqual({ streams: 0, listeners: 0 });
    } finally {
      await client.close();
    }
  });
});

describe('a GET stream whose client left while it was being authenticated', () => {
  it('gives its slot back (the next stream of that caller is not refused)', async () => {
    const catalog = await itemsCatalog();
    const view = viewWith(catalog, NO_SWITCHES);
    const changes = new ListChanges({ view: () => view, limits: { perCaller: 1, total: 4 } });
    const key = newApiKey();
    let open: () => void = () => {};
    let gate = new Promise<void>((r) => {
      open = r;
    });
    const doc = parsePolicy(
      `version: 1\ncallers:\n  apiKeys:\n    - { id: slow, hash: "${key.hash}", scopes: [tools:read] }\n`,
      'w.yaml',
    ).doc;
    // Authentication that takes a while (a JWKS fetch, say): the client hangs up meanwhile.
    class SlowCallers extends Callers {
      override async authenticate(h: Parameters<Callers['authenticate']>[0]) {
        await gate;
        return super.authenticate(h);
      }
    }
    const http = await startHttp({
      factory: createServerFactory({
        catalog,
        pipeline: { call: () => Promise.reject(new Error('no calls here')) },
        view: () => view,
        inBandElicitation: false,
      }),
      logger: pino({ level: 'silent' }),
      callers: (url) =>
        new SlowCallers({
          callers: doc.callers,
          environment: 'dev',
          resource: url,
          loopback: true,
          scopesInUse: () => ['tools:read'],
          warn: () => {},
        }),
      port: 0,
      changes,
    });
    try {
      const req = request(http.url, {
        headers: { accept: 'text/event-stream', authorization: `Bearer ${key.key}` },
      });
      req.on('error', () => {});
      const closed = new Promise<void>((r) => req.once('close', () => r()));
      req.end();
      // Wait for the request to be on the server (its socket is held by the gate), then leave.
      await waitFor(() => req.socket !== null && req.socket !== undefined, { what: 'the request sent' });
      req.destroy();
      await closed;
      open();
      await waitFor(() => changes.counts.streams === 0 && changes.counts.listeners === 0, {
        what: 'the slot given back',
      });
      gate = Promise.resolve();
      const again = await fetch(http.url, {
        headers: { accept: 'text/event-stream', authorization: `Bearer ${key.key}` },
      });
      expect(again.status).toBe(200);
      await again.body?.cancel();
    } finally {
      await http.close();
    }
  });
});

describe('stream slots of callers that share one id', () => {
  it('anonymous callers are counted per address: one cannot use up the bucket of all', async () => {
    const catalog = await itemsCatalog();
    const view = viewWith(catalog, NO_SWITCHES);
    const changes = new ListChanges({ view: () => view, limits: { perCaller: 2, total: 10 } });
    const anon = { id: 'anonymous', scopes: ['tools:read'], via: 'anonymous' as const };
    expect(typeof changes.claim(anon, '10.0.0.1')).toBe('object');
    expect(typeof changes.claim(anon, '10.0.0.1')).toBe('object');
    expect(changes.claim(anon, '10.0.0.1')).toBe('caller');
    const other = changes.claim(anon, '10.0.0.2');
    expect(typeof other).toBe('object');
    // A key is one caller wherever it connects from.
    const key = { id: 'key:shared', scopes: ['tools:read'], via: 'api-key' as const };
    changes.claim(key, '10.0.0.1');
    changes.claim(key, '10.0.0.2');
    expect(changes.claim(key, '10.0.0.3')).toBe('caller');
    if (typeof other === 'object') other.release();
    expect(changes.counts.streams).toBe(4);
  });
});
