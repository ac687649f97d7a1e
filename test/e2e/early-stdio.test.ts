import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport as V1StdioTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterEach, describe, expect, it } from 'vitest';
import { listen } from '../support/http.js';
import { CLI, tempTree } from '../support/paths.js';
import { cliEnv, onJsonLines, sendJson, spawnCli } from '../support/stdio.js';
import { waitFor } from '../support/wait.js';

/**
 * Over stdio, the opening of either protocol era (`initialize`, `server/discover`, `ping`) is
 * answered while the spec loads; everything else waits for the gateway (issue 22). The spec's
 * loading is held, not timed: its one schema is a remote `$ref` whose server answers only once the
 * test releases it, so whatever is answered before the release was answered before the spec loaded.
 */

const TITLE = 'Held Inventory API';

interface Held {
  /** The spec file (local, JSON): its title is known before it loads. */
  spec: string;
  /** The same spec over HTTP: a title known only once it is loaded (the ready path). */
  specUrl: string;
  /** The upstream the tools call. */
  upstream: string;
  /** Lets the schema be served (`fail`: answered 404, so the load fails). */
  release(o?: { fail?: boolean }): void;
  cacheDir: string;
  close(): Promise<void>;
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => {});
});

async function held(): Promise<Held> {
  let released: { fail?: boolean } | undefined;
  const waiting: Array<() => void> = [];
  const upstream = await listen((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: req.url, n: 1 }));
  });
  const dir = tempTree({});
  const refs = await listen((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/spec.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(specDoc()));
      return;
    }
    const answer = () => {
      if (released?.fail) res.writeHead(404).end();
      else
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ Item: { type: 'object', properties: { id: { type: 'string' } } } }));
    };
    if (released) answer();
    else waiting.push(answer);
  });
  const specDoc = () => ({
    openapi: '3.0.3',
    info: { title: TITLE, version: '1' },
    paths: {
      '/items/{id}': {
        get: {
          operationId: 'getItem',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': {
              description: 'ok',
              content: { 'application/json': { schema: { $ref: `${refs.url}/schemas.json#/Item` } } },
            },
          },
        },
      },
    },
  });
  const specDir = tempTree({ 'spec.json': specDoc() });
  const h: Held = {
    spec: join(specDir, 'spec.json'),
    specUrl: `${refs.url}/spec.json`,
    upstream: upstream.url,
    release(o = {}) {
      released = o;
      for (const a of waiting.splice(0)) a();
    },
    cacheDir: dir,
    close: async () => {
      h.release();
      await refs.close();
      await upstream.close();
    },
  };
  closers.push(h.close);
  return h;
}

/** `serve --stdio` of `spec`, its remote `$ref` allowed, with a fresh audit and spec cache. */
function serve(h: Held, spec = h.spec): { args: string[]; env: NodeJS.ProcessEnv } {
  return {
    args: [
      'serve',
      '--stdio',
      '--spec',
      spec,
      '--base-url',
      h.upstream,
      '--remote-refs',
      'any',
      '--audit-file',
      join(tempTree({}), 'audit.jsonl'),
      '--log-level',
      'error',
    ],
    env: { MCP_WARDEN_CACHE_DIR: h.cacheDir },
  };
}

/** The spawn parameters of `serve` for either SDK's stdio client transport. */
function stdioParams(h: Held, spec?: string) {
  const { args, env } = serve(h, spec);
  return {
    command: process.execPath,
    args: [CLI, ...args],
    env: cliEnv(env) as Record<string, string>,
    stderr: 'pipe' as const,
  };
}

const v2Transport = (h: Held, spec?: string) => new StdioClientTransport(stdioParams(h, spec));
const v1Transport = (h: Held, spec?: string) => new V1StdioTransport(stdioParams(h, spec));

const v2Client = () =>
  new Client({ name: 'early-v2', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
const v1Client = () => new V1Client({ name: 'early-v1', version: '1' });

/** A raw JSON-RPC child: what it answered (by id), and its exit. */
function rawChild(h: Held, spec?: string) {
  const { args, env } = serve(h, spec);
  const child: ChildProcessWithoutNullStreams = spawnCli(args, env);
  const answers: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  onJsonLines(child.stdout, (m) => answers.push(m));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  closers.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const answer = (id: number) =>
    waitFor(() => answers.find((a) => a.id === id), { what: `the answer to request ${id}`, timeout: 30_000 });
  return { child, answers, answer, exited, stderr: () => stderr };
}

/** A start that failed: a non-zero exit code (not a signal) and the located reason on stderr. */
async function expectFailedStart(
  exited: Promise<{ code: number | null }>,
  stderr: () => string,
): Promise<void> {
  const { code } = await exited;
  expect(code).not.toBe(0);
  expect(code).not.toBeNull();
  expect(stderr()).toMatch(/error SPEC_\w+/);
}

const INIT = {
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
};

describe('serve --stdio answers the opening before the spec is loaded', () => {
  it('a v1 client (2025-11-25) connects while the spec loads; its tools come once it has', async () => {
    const h = await held();
    const client = v1Client();
    closers.push(() => client.close());
    await client.connect(v1Transport(h));
    // Connected, and the spec cannot have loaded: its schema has not been served.
    expect(client.getServerVersion()).toMatchObject({ name: 'mcp-warden', title: `mcp-warden: ${TITLE}` });
    expect(client.getInstructions()).toContain(`Tools for ${TITLE}, served through mcp-warden.`);
    await client.ping();
    const listed = client.listTools();
    h.release();
    expect((await listed).tools.map((t) => t.name)).toEqual(['getItem']);
  });

  it('a v2 client pinned to 2026-07-28: its version probe is answered by a sibling that then exits', async () => {
    const h = await held();
    const client = v2Client();
    closers.push(() => client.close());
    // connect() runs the probe on a sibling process and resolves once it was answered: here, while
    // the spec cannot have loaded (its schema is held).
    await client.connect(v2Transport(h));
    expect(client.getServerVersion()).toMatchObject({ name: 'mcp-warden', title: `mcp-warden: ${TITLE}` });
    const listed = client.listTools();
    h.release();
    expect((await listed).tools.map((t) => t.name)).toEqual(['getItem']);
  });

  it('requests sent before the gateway is ready are answered after it, in order, none lost', async () => {
    const h = await held();
    const { child, answers, answer } = rawChild(h);
    sendJson(child, { id: 1, ...INIT });
    sendJson(child, { method: 'notifications/initialized' });
    sendJson(child, { id: 2, method: 'tools/list' });
    sendJson(child, { id: 3, method: 'tools/call', params: { name: 'getItem', arguments: { id: 'a1' } } });
    sendJson(child, { id: 4, method: 'tools/list' });
    sendJson(child, { id: 5, method: 'ping' });
    expect(await answer(1)).toHaveProperty('result.serverInfo.title', `mcp-warden: ${TITLE}`);
    expect(await answer(5)).toHaveProperty('result', {});
    // Not before the spec is loaded: the schema is still held.
    expect(answers.map((a) => a.id)).toEqual([1, 5]);
    h.release();
    const [list, call, again] = [await answer(2), await answer(3), await answer(4)];
    expect(list).toHaveProperty('result.tools.0.name', 'getItem');
    expect(again).toEqual({ ...list, id: 4 });
    expect(call).toMatchObject({ result: { structuredContent: { id: '/items/a1', n: 1 } } });
    // The two lists (handled at once, unlike the call) in the order they were sent.
    const order = answers.map((a) => a.id);
    expect(order.indexOf(2)).toBeLessThan(order.indexOf(4));
    expect(order.filter((id) => id === 2 || id === 3 || id === 4)).toHaveLength(3);
  });

  it('serverInfo, capabilities and instructions are those of the ready server, in both eras', async () => {
    const h = await held();
    // Early: the title read from the local file while its schema is held.
    const early = rawChild(h);
    sendJson(early.child, { id: 1, ...INIT });
    const earlyInit = (await early.answer(1)).result;
    const probe = rawChild(h);
    sendJson(probe.child, { id: 2, method: 'server/discover', params: discoverParams() });
    const earlyDiscover = (await probe.answer(2)).result;
    h.release();
    // The ready path: a spec by URL has no title before it is loaded, so its opening waits.
    const ready = v1Client();
    closers.push(() => ready.close());
    await ready.connect(v1Transport(h, h.specUrl));
    expect(earlyInit).toEqual({
      protocolVersion: '2025-11-25',
      serverInfo: ready.getServerVersion(),
      capabilities: ready.getServerCapabilities(),
      instructions: ready.getInstructions(),
    });
    // A 2026-07-28 probe of each: the same discover answer.
    const late = rawChild(h, h.specUrl);
    sendJson(late.child, { id: 2, method: 'server/discover', params: discoverParams() });
    expect((await late.answer(2)).result).toEqual(earlyDiscover);
  });
});

function discoverParams() {
  return {
    _meta: {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
      'io.modelcontextprotocol/clientCapabilities': {},
    },
  };
}

describe('serve --stdio: the end of a start answered early', () => {
  it('a spec that fails to load after initialize was answered: the next request gets the reason, exit != 0', async () => {
    const h = await held();
    const { child, answer, exited, stderr } = rawChild(h);
    sendJson(child, { id: 1, ...INIT });
    expect(await answer(1)).toHaveProperty('result.serverInfo.name', 'mcp-warden');
    sendJson(child, { id: 2, method: 'tools/list' });
    h.release({ fail: true });
    const failed = (await answer(2)) as { error?: { message?: string } };
    expect(failed.error?.message).toMatch(/^mcp-warden could not start: error SPEC_\w+: .*schemas\.json/);
    await expectFailedStart(exited, stderr);
  });

  it('with nothing waiting, the next request to come gets the reason', async () => {
    const h = await held();
    const { child, answer, exited } = rawChild(h);
    sendJson(child, { id: 1, ...INIT });
    await answer(1);
    h.release({ fail: true });
    // Whether it comes before the failure (held, then answered) or after it (the next one): the reason.
    sendJson(child, { id: 7, method: 'tools/list' });
    expect(await answer(7)).toMatchObject({ error: { message: expect.stringMatching(/could not start/) } });
    expect((await exited).code).not.toBe(0);
  });

  it('stdin closed while the spec loads: what was sent before is answered once it has loaded, then exit 0', async () => {
    const h = await held();
    const { child, answer, exited } = rawChild(h);
    sendJson(child, { id: 1, ...INIT });
    sendJson(child, { method: 'notifications/initialized' });
    sendJson(child, { id: 2, method: 'tools/list' });
    sendJson(child, { id: 3, method: 'tools/call', params: { name: 'getItem', arguments: { id: 'b2' } } });
    await answer(1);
    child.stdin.end();
    h.release();
    expect(await answer(2)).toHaveProperty('result.tools.0.name', 'getItem');
    expect(await answer(3)).toMatchObject({ result: { structuredContent: { id: '/items/b2', n: 1 } } });
    expect(await exited).toEqual({ code: 0, signal: null });
  });

  it('stdin closed at once (nothing sent) while a bad spec loads: the reason and the exit code, as before', async () => {
    const h = await held();
    const { child, exited, stderr } = rawChild(h);
    child.stdin.end();
    h.release({ fail: true });
    await expectFailedStart(exited, stderr);
  });

  it('stdin closed after the probe was answered, then the load succeeds: exit 0, no part of a cache entry left', async () => {
    const h = await held();
    const { child, answer, exited } = rawChild(h);
    sendJson(child, { id: 1, method: 'server/discover', params: discoverParams() });
    expect(await answer(1)).toHaveProperty('result.supportedVersions', ['2026-07-28']);
    child.stdin.end();
    h.release();
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(readdirSync(h.cacheDir, { recursive: true }).filter((f) => String(f).endsWith('.tmp'))).toEqual(
      [],
    );
  });

  it('SIGTERM while the spec loads ends the process', async () => {
    const h = await held();
    const { child, answer, exited } = rawChild(h);
    sendJson(child, { id: 1, ...INIT });
    await answer(1);
    child.kill('SIGTERM');
    const end = await exited;
    expect(end.code === 0 || end.signal === 'SIGTERM').toBe(true);
  });
});
