import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linesOfInstance } from '../../src/audit/postgres.js';
import { connectHttp, mcpClient } from '../support/gateway.js';
import { serveFiles, startUpstream, tempTree } from '../support/helpers.js';
import { adminApi, freePort, rawPost } from '../support/http.js';
import { tempPath } from '../support/paths.js';
import { runCli, spawnCli, stdioTransport } from '../support/stdio.js';
import { readAudit, waitFor } from '../support/wait.js';

/**
 * Every flag `mcp-warden serve --help` lists changes what the gateway does: one row per flag, saying
 * how it is observed. The flags are read from the help text, so a new flag without a row fails here.
 * Rows share gateways: A (HTTP, most flags), B (HTTP, a second instance sharing Redis with A), and
 * short stdio runs.
 */
const REDIS_URL = process.env.MCP_WARDEN_TEST_REDIS ?? 'redis://127.0.0.1:6379';
const PG_URL = process.env.MCP_WARDEN_TEST_PG ?? 'postgres://root@127.0.0.1:5432/test';
const ADMIN_TOKEN = 'admin-token-for-flag-tests-0123456789';
const run = randomBytes(4).toString('hex');
const INSTANCE_A = `flags-${run}-a`;

const op = (operationId: string, tag: string, extra: object = {}) => ({
  operationId,
  tags: [tag],
  responses: {
    '200': { description: 'ok', content: { 'application/json': { schema: { type: 'object' } } } },
  },
  ...extra,
});
const SPEC = {
  openapi: '3.0.3',
  info: { title: 'Flags', version: '1' },
  // Unreachable: only --base-url makes a call reach the test upstream.
  servers: [{ url: 'http://127.0.0.1:9/' }],
  components: { securitySchemes: { key: { type: 'apiKey', in: 'header', name: 'X-Key' } } },
  security: [{ key: [] }],
  paths: {
    '/items': {
      get: op('listItems', 'catalog', {
        parameters: [{ name: 'limit', in: 'query', schema: { type: 'integer' } }],
      }),
      post: op('createItem', 'catalog', {
        requestBody: { content: { 'application/json': { schema: { type: 'object' } } } },
      }),
    },
    '/slow': { get: op('slowThing', 'ops') },
    '/big': { get: op('bigThing', 'ops') },
    '/other': { get: op('otherThing', 'misc') },
    '/watched': { get: op('watchedThing', 'misc') },
  },
};

/** A policy for A or B: credentials per environment, a Redis prefix of this run, the admin port. */
const policy = (instance: string, rules: string[] = []) =>
  [
    'version: 1',
    'mode: read-write',
    'environment: dev',
    'credentials:',
    '  k: { scheme: key, dev: env:KEY_DEV, staging: env:KEY_STAGING }',
    // The policy's own Redis is unreachable: only --state connects the instances.
    `state: { redis: env:POLICY_REDIS, prefix: flags-${run} }`,
    `audit: { instance: ${instance} }`,
    'admin: { token: env:ADMIN_TOKEN }',
    'callers:',
    '  anonymous: { scopes: [tools:read, tools:write], reason: loopback test }',
    'rules:',
    '  - match: { name: createItem }',
    '    enabled: true',
    ...rules,
    '',
  ].join('\n');

const ENV = {
  KEY_DEV: 'dev-key-0123456789',
  KEY_STAGING: 'staging-key-0123456789',
  POLICY_REDIS: 'redis://127.0.0.1:1',
  ADMIN_TOKEN,
  // Runs without a policy take the scheme's credential from here.
  MCP_WARDEN_CRED_KEY: 'default-key-0123456789',
};

interface Served {
  child: ChildProcessWithoutNullStreams;
  stderr: () => string;
  url: string;
  adminUrl?: string;
}

/** Spawns `serve` over HTTP and waits for its endpoint line. */
async function serveHttp(args: string[]): Promise<Served> {
  const child = spawnCli(['serve', ...args], ENV);
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const url = await waitFor(
    () => /MCP endpoint (\S+)/.exec(err)?.[1] ?? (child.exitCode !== null && 'exit'),
    {
      what: `serve ${args.join(' ')} to start (stderr: ${err})`,
      timeout: 30_000,
    },
  );
  if (url === 'exit') throw new Error(`serve exited: ${err}`);
  return { child, stderr: () => err, url, adminUrl: /admin API (\S+)/.exec(err)?.[1] };
}

/** Spawns `serve --stdio` with stdin left open; resolves once it started or ended. */
async function serveStdioOnce(
  args: string[],
  env: NodeJS.ProcessEnv = ENV,
): Promise<{ started: boolean; stderr: string }> {
  // Its audit goes to a temp file, never into the working directory.
  const child = spawnCli(['serve', '--stdio', '--audit-file', tempPath(), ...args], env);
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const started = await waitFor(
    () => (err.includes('mcp-warden: audit file') ? 'yes' : child.exitCode !== null && 'no'),
    {
      what: 'serve --stdio to start or exit',
      timeout: 30_000,
    },
  );
  child.kill('SIGTERM');
  return { started: started === 'yes', stderr: err };
}

const names = async (c: Client) => (await c.listTools()).tools.map((t) => t.name).sort();
const text = (r: unknown) => JSON.stringify((r as { content?: unknown }).content ?? r);

describe('every documented `serve` flag changes what the gateway does', () => {
  const dir = tempTree({
    'spec.json': SPEC,
    'a.yaml': policy(INSTANCE_A),
    'b.yaml': policy(`flags-${run}-b`),
    'refs/api/root.json': {
      ...SPEC,
      paths: { '/x': { get: { ...op('refThing', 'misc'), parameters: [{ $ref: '../common/p.json' }] } } },
    },
    'refs/common/p.json': { name: 'q', in: 'query', schema: { type: 'string' } },
  });
  const specFile = join(dir, 'spec.json');
  const auditA = join(dir, 'audit-a.jsonl');
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let a: Served;
  let b: Served;
  let clientA: Client;
  let clientB: Client;
  let port: number;
  let adminPort: number;

  beforeAll(async () => {
    upstream = await startUpstream((req, res) => {
      if (req.url.startsWith('/slow')) {
        setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'), 10_000);
        return;
      }
      const body = req.url.startsWith('/big') ? { blob: 'x'.repeat(50_000) } : { ok: true };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    [port, adminPort] = [await freePort(), await freePort()];
    const common = ['--spec', specFile, '--base-url', upstream.origin, '--state', REDIS_URL];
    [a, b] = await Promise.all([
      serveHttp([
        ...common,
        ...['--policy', join(dir, 'a.yaml'), '--env', 'staging', '--no-watch'],
        ...['--port', String(port), '--host', '127.0.0.2', '--allowed-host', 'gw.example', '127.0.0.2'],
        ...['--admin-port', String(adminPort), '--admin-host', '127.0.0.3'],
        ...['--audit-file', auditA, '--audit-db', PG_URL, '--log-level', 'warn'],
        ...['--timeout', '2000', '--max-response-bytes', '2000', '--max-page-size', '7'],
      ]),
      serveHttp([
        ...common,
        ...['--policy', join(dir, 'b.yaml'), '--port', '0', '--admin-port', '0', '--watch-spec'],
        ...['--audit-file', join(dir, 'audit-b.jsonl')],
      ]),
    ]);
    clientA = await connectHttp(a.url, {}, mcpClient());
    clientB = await connectHttp(b.url, {}, mcpClient());
  }, 60_000);

  afterAll(async () => {
    await clientA?.close();
    await clientB?.close();
    a?.child.kill('SIGTERM');
    b?.child.kill('SIGTERM');
    await upstream?.close();
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`flags-${run}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    const db = new pg.Pool({ connectionString: PG_URL });
    await db.query('DELETE FROM mcp_warden_audit WHERE instance LIKE $1', [`flags-${run}-%`]);
    await db.end();
  });

  const call = (c: Client, name: string, args: Record<string, unknown> = {}) =>
    c.callTool({ name, arguments: args });

  /** One row per flag of `serve --help`: how its effect is seen. */
  const ROWS: Record<string, () => Promise<void>> = {
    '--spec': async () => {
      expect(await names(clientB)).toContain('listItems');
    },
    '--base-url': async () => {
      const r = await call(clientB, 'listItems', {});
      expect(r.isError, text(r)).toBeFalsy();
      expect(upstream.requests.some((q) => q.url.startsWith('/items'))).toBe(true);
    },
    '--policy': async () => {
      // createItem is a write: hidden by the secure defaults, enabled by the policy.
      expect(await names(clientA)).toContain('createItem');
    },
    '--env': async () => {
      await call(clientA, 'listItems', {});
      await call(clientB, 'listItems', {});
      const keys = upstream.requests.map((q) => q.headers['x-key']);
      expect(keys).toContain(ENV.KEY_STAGING);
      expect(keys).toContain(ENV.KEY_DEV);
    },
    '--admin-port': async () => {
      expect(a.adminUrl).toBe(`http://127.0.0.3:${adminPort}`);
      expect((await adminApi(a.adminUrl!, ADMIN_TOKEN)('GET', '/tools')).status).toBe(200);
    },
    '--admin-host': async () => {
      expect(new URL(a.adminUrl!).hostname).toBe('127.0.0.3');
      expect(new URL(b.adminUrl!).hostname).toBe('127.0.0.1');
    },
    '--no-watch': async () => {
      const hide = ['  - match: { name: watchedThing }', '    enabled: false'];
      writeFileSync(join(dir, 'a.yaml'), policy(INSTANCE_A, hide));
      writeFileSync(join(dir, 'b.yaml'), policy(`flags-${run}-b`, hide));
      // B watches its policy and applies the edit; A, started with --no-watch, does not.
      await waitFor(async () => !(await names(clientB)).includes('watchedThing'), {
        what: 'B to apply the edit',
      });
      expect(await names(clientA)).toContain('watchedThing');
    },
    '--watch-spec': async () => {
      const spec = structuredClone(SPEC) as { paths: Record<string, unknown> };
      spec.paths['/added'] = { get: op('addedThing', 'misc') };
      writeFileSync(specFile, JSON.stringify(spec));
      await waitFor(() => b.stderr().includes('spec reloaded'), { what: 'B to reload the spec' });
      // A logs at warn too, where a reload would show: it did not watch.
      expect(a.stderr()).not.toContain('spec reloaded');
    },
    '--state': async () => {
      // A toggle made on A's admin API reaches B through the shared Redis.
      expect(await names(clientB)).toContain('otherThing');
      const r = await adminApi(a.adminUrl!, ADMIN_TOKEN)('POST', '/tools/otherThing/disable');
      expect(r.status).toBe(200);
      await waitFor(async () => !(await names(clientB)).includes('otherThing'), {
        what: 'the toggle to reach B',
      });
    },
    '--audit-db': async () => {
      await call(clientA, 'listItems', { limit: 1 });
      const lines = await waitFor(
        async () => {
          const l = await linesOfInstance(PG_URL, INSTANCE_A);
          return l.some((x) => x.includes('"tool":"listItems"')) && l;
        },
        { what: 'the call mirrored into PostgreSQL' },
      );
      expect(lines.length).toBeGreaterThan(0);
    },
    '--pins': async () => {
      const pins = join(dir, 'pins.json');
      expect(() => readFileSync(pins)).toThrow();
      const r = await serveStdioOnce(['--spec', specFile, '--base-url', upstream.origin, '--pins', pins]);
      expect(r.started, r.stderr).toBe(true);
      expect(JSON.parse(readFileSync(pins, 'utf8')).tools).toBeDefined();
      expect(readFileSync(pins, 'utf8')).toContain('listItems');
    },
    '--audit-file': async () => {
      await call(clientA, 'listItems', {});
      await waitFor(() => readAudit(auditA).some((x) => x.kind === 'call'), {
        what: 'a call in --audit-file',
      });
    },
    '--state-dir': async () => {
      // Without --audit-file, the audit goes to <state dir>/<spec folder>/audit.jsonl (docs/files.md).
      const root = join(dir, 'state');
      const args = ['serve', '--stdio', '--spec', specFile, '--base-url', upstream.origin];
      const { transport, stderr } = stdioTransport([...args, '--state-dir', root], ENV);
      const c = mcpClient();
      await c.connect(transport);
      await call(c, 'listItems', {});
      await c.close();
      const audit = new RegExp(`audit file (${root}/spec-[0-9a-f]{8}/audit\\.jsonl)`).exec(stderr())?.[1];
      await waitFor(() => audit && readAudit(audit).some((x) => x.kind === 'call'), {
        what: 'a call in the audit under --state-dir',
      });
    },
    '--stdio': async () => {
      const { transport } = stdioTransport(
        [
          'serve',
          '--stdio',
          '--spec',
          specFile,
          '--base-url',
          upstream.origin,
          '--audit-file',
          join(dir, 's.jsonl'),
        ],
        ENV,
      );
      const c = mcpClient();
      await c.connect(transport);
      expect(await names(c)).toContain('listItems');
      await c.close();
    },
    '--port': async () => {
      expect(a.url).toBe(`http://127.0.0.2:${port}/mcp`);
    },
    '--host': async () => {
      expect(new URL(a.url).hostname).toBe('127.0.0.2');
      expect(new URL(b.url).hostname).toBe('127.0.0.1');
    },
    '--allowed-host': async () => {
      const frame = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });
      expect((await rawPost(a.url, '/mcp', frame, { host: 'gw.example' })).status).toBe(200);
      expect((await rawPost(b.url, '/mcp', frame, { host: 'gw.example' })).status).toBe(403);
    },
    '--timeout': async () => {
      expect(text(await call(clientA, 'slowThing'))).toContain('UPSTREAM_TIMEOUT');
    },
    '--max-response-bytes': async () => {
      expect(text(await call(clientA, 'bigThing'))).toContain('UPSTREAM_TOO_LARGE');
      expect(text(await call(clientB, 'bigThing'))).not.toContain('UPSTREAM_TOO_LARGE');
    },
    '--max-page-size': async () => {
      await call(clientA, 'listItems', { limit: 50 });
      expect(upstream.requests.some((q) => q.url === '/items?limit=7')).toBe(true);
    },
    '--log-level': async () => {
      // The start-up summary is an info line: B (default info) writes it, A (--log-level warn) does not.
      expect(b.stderr()).toMatch(/serving \d+ of \d+ tools/);
      expect(a.stderr()).not.toMatch(/serving \d+ of \d+ tools/);
    },
    '--remote-refs': async () => {
      const files = await serveFiles({
        '/api.json': {
          ...SPEC,
          paths: { '/x': { get: { ...op('x', 'misc'), parameters: [{ $ref: '/p.json' }] } } },
        },
        '/p.json': { name: 'q', in: 'query', schema: { type: 'string' } },
      });
      try {
        const args = ['--spec', `${files.url}/api.json`, '--base-url', upstream.origin];
        expect((await serveStdioOnce(args)).started).toBe(true);
        const refused = await serveStdioOnce([...args, '--remote-refs', 'none']);
        expect(refused.started).toBe(false);
        expect(refused.stderr).toMatch(/SPEC_REF_DENIED/);
      } finally {
        await files.close();
      }
    },
    '--ref-root': async () => {
      const args = ['--spec', join(dir, 'refs/api/root.json'), '--base-url', upstream.origin];
      const refused = await serveStdioOnce(args);
      expect(refused.stderr).toMatch(/SPEC_REF_DENIED/);
      expect((await serveStdioOnce([...args, '--ref-root', join(dir, 'refs')])).started).toBe(true);
    },
    '--no-spec-cache': async () => {
      // A served spec's load is stored in the spec cache (src/openapi/cache.ts); with the flag, nothing is.
      const cache = join(tempTree({}), 'cache');
      const env = { ...ENV, MCP_WARDEN_CACHE_DIR: cache };
      const args = ['--spec', specFile, '--base-url', upstream.origin];
      expect((await serveStdioOnce([...args, '--no-spec-cache'], env)).started).toBe(true);
      expect(existsSync(cache)).toBe(false);
      expect((await serveStdioOnce(args, env)).started).toBe(true);
      expect(readdirSync(cache)).toHaveLength(1);
    },
    '--toolsets': async () => {
      const { transport } = stdioTransport(
        [
          'serve',
          '--stdio',
          '--audit-file',
          tempPath(),
          '--spec',
          specFile,
          '--base-url',
          upstream.origin,
          '--toolsets',
          'ops',
        ],
        ENV,
      );
      const c = mcpClient();
      await c.connect(transport);
      expect(await names(c)).toEqual(['bigThing', 'slowThing']);
      await c.close();
    },
    '--api': async () => {
      // Two APIs from one spec: each tool under its API's prefix, each API with its own credential.
      const { transport } = stdioTransport(
        [
          'serve',
          '--stdio',
          '--audit-file',
          tempPath(),
          '--api',
          `one=${specFile},${upstream.origin}`,
          '--api',
          `two=${specFile},${upstream.origin}`,
          '--toolsets',
          'two:ops',
        ],
        { ...ENV, MCP_WARDEN_CRED_TWO_KEY: 'two-key-value' },
      );
      const c = mcpClient();
      await c.connect(transport);
      expect(await names(c)).toEqual(['two_bigThing', 'two_slowThing']);
      const before = upstream.requests.length;
      await c.callTool({ name: 'two_bigThing', arguments: {} });
      expect(upstream.requests.slice(before).map((r) => r.headers['x-key'])).toEqual(['two-key-value']);
      await c.close();
    },
    '--dynamic': async () => {
      const { transport } = stdioTransport(
        [
          'serve',
          '--stdio',
          '--audit-file',
          tempPath(),
          '--spec',
          specFile,
          '--base-url',
          upstream.origin,
          '--dynamic',
        ],
        ENV,
      );
      const c = mcpClient();
      await c.connect(transport);
      expect(await names(c)).toEqual(['call_tool', 'describe_tool', 'search_tools']);
      await c.close();
    },
  };

  const help = runCli(['serve', '--help'], {}).stdout;
  const documented = [...help.matchAll(/^\s+(?:-\w, )?(--[\w-]+)/gm)]
    .map((m) => m[1]!)
    .filter((f) => f !== '--help');

  it('has a row for every flag `serve --help` lists, and no row for a flag it does not', () => {
    expect(documented.length).toBeGreaterThan(20);
    expect(Object.keys(ROWS).sort()).toEqual([...documented].sort());
  });

  it('docs/serving.md shows every flag `serve --help` lists', () => {
    const doc = readFileSync(new URL('../../docs/serving.md', import.meta.url), 'utf8');
    const synopsis = /```sh\n(mcp-warden serve[\s\S]*?)```/.exec(doc)?.[1] ?? '';
    const shown = new Set([...synopsis.matchAll(/--[\w-]+/g)].map((m) => m[0]));
    expect([...documented].filter((f) => !shown.has(f))).toEqual([]);
    expect([...shown].filter((f) => !documented.includes(f))).toEqual([]);
  });

  it('docs/resilience.md names only flags `serve --help` lists', () => {
    const doc = readFileSync(new URL('../../docs/resilience.md', import.meta.url), 'utf8');
    const flags = [...doc.matchAll(/(?<![\w-])--[a-z][\w-]+/g)].map((m) => m[0]);
    expect(flags.length).toBeGreaterThan(0);
    expect(flags.filter((f) => !documented.includes(f))).toEqual([]);
  });

  for (const flag of documented) {
    it(`${flag}`, async () => {
      const row = ROWS[flag];
      if (!row) throw new Error(`no row for ${flag}: add one saying how its effect is observed`);
      await row();
    }, 60_000);
  }
});
