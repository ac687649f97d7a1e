import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import type { CallInput, ToolResult } from '../../src/pipeline/context.js';
import type { Pipeline } from '../../src/pipeline/index.js';
import { lazyPipeline, lazyStages } from '../../src/server/serve.js';
import { startShopGateway } from '../support/gateway.js';
import { SHARED_SPECS, SHOP_SPEC, tempPath, tempTree } from '../support/paths.js';
import { waitFor } from '../support/wait.js';

// Start-up loads only what the configuration uses (issue 22): a plain `serve` of an OpenAPI 3 spec
// does not load the Redis client, the PostgreSQL driver, the OpenTelemetry SDK, the Swagger 2.0
// converter or the external-$ref bundler; a configuration that uses them does (so this test can
// fail both ways).

const CHILD = new URL('./helpers/lazy-start-child.ts', import.meta.url).pathname;
const REDIS_URL = process.env.MCP_WARDEN_TEST_REDIS ?? 'redis://127.0.0.1:6379';
const PG_URL = process.env.MCP_WARDEN_TEST_PG ?? 'postgres://root@127.0.0.1:5432/test';

/** The npm packages a gateway started (and closed) in a fresh process loaded. */
function packagesLoaded(options: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): string[] {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', CHILD, tempPath('modules.txt'), JSON.stringify(options)],
    { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } },
  );
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

// The Swagger 2.0 converter and the external-$ref bundler belong to the specs that need them.
const OPTIONAL = [
  'swagger2openapi',
  '@apidevtools/json-schema-ref-parser',
  'ioredis',
  'pg',
  '@opentelemetry/sdk-trace-base',
  '@opentelemetry/exporter-trace-otlp-http',
];

// What only a call needs (the guard stages' HTTP client, Ajv's compiler with its formats, the
// resilience policies, the rate and budget counters): loaded by the first call, or shortly after
// serving starts, never before the first tools/list (but while a prefetch worker parses a big spec,
// when this thread would idle: see 'the stage modules loaded ahead of the first list' below). (Ajv's runtime helpers are loaded by every
// start: the spec's meta-schema validators use them.)
const CALL_ONLY = ['undici', 'ajv-formats', 'cockatiel', 'rate-limiter-flexible'];
// The Streamable HTTP stack, which a stdio gateway does not load.
const HTTP_ONLY = ['@modelcontextprotocol/node', '@hono/node-server'];

describe('serve loads what its configuration uses', () => {
  it('a plain configuration: no Redis client, PostgreSQL driver, tracing SDK or spec converters', () => {
    const loaded = packagesLoaded({ spec: SHOP_SPEC, auditFile: tempPath() });
    // It did load the gateway (the SDK, the HTTP transport) — the record is not empty.
    expect(loaded).toEqual(expect.arrayContaining(['@modelcontextprotocol/server', ...HTTP_ONLY]));
    for (const name of [...OPTIONAL, ...CALL_ONLY]) expect(loaded).not.toContain(name);
  }, 180_000);

  it('over stdio: no HTTP stack either; the first call loads the guard stages', () => {
    const stdio = { spec: SHOP_SPEC, auditFile: tempPath(), transport: { kind: 'stdio' } };
    const started = packagesLoaded(stdio);
    expect(started).toContain('@modelcontextprotocol/server');
    for (const name of [...OPTIONAL, ...CALL_ONLY, ...HTTP_ONLY]) expect(started).not.toContain(name);
    // Modules of features this configuration does not use (per-user OAuth), or that only a call
    // needs (the injection screen, whose patterns compile when it loads).
    expect(started).not.toContain('src:server/user-credentials.ts');
    expect(started).not.toContain('src:protect/injection.ts');
    // The token exchange client: loaded by the first exchange (upstream/token-exchange.ts).
    expect(started).not.toContain('oauth4webapi');
    const called = packagesLoaded({ ...stdio, auditFile: tempPath(), call: true });
    for (const name of CALL_ONLY) expect(called).toContain(name);
    expect(called).toContain('src:protect/injection.ts');
    for (const name of HTTP_ONLY) expect(called).not.toContain(name);
  }, 180_000);

  it('shared state, an audit mirror, tracing and a Swagger 2.0 spec split in files load theirs', () => {
    const prefix = `lazy-${randomBytes(4).toString('hex')}`;
    const dir = tempTree({
      'policy.yaml': [
        'version: 1',
        'state:',
        '  redis: env:LAZY_TEST_REDIS',
        `  prefix: ${prefix}`,
        'audit:',
        '  postgres: env:LAZY_TEST_PG',
        'telemetry:',
        '  traces:',
        '    endpoint: http://127.0.0.1:9/v1/traces',
        '',
      ].join('\n'),
    });
    const loaded = packagesLoaded(
      {
        spec: join(SHARED_SPECS, 'petstore-separate-swagger2/spec/swagger.yaml'),
        load: { refRoot: join(SHARED_SPECS, 'petstore-separate-swagger2') },
        auditFile: tempPath(),
        policy: `${dir}/policy.yaml`,
        watchPolicy: false,
      },
      { LAZY_TEST_REDIS: REDIS_URL, LAZY_TEST_PG: PG_URL },
    );
    for (const name of OPTIONAL) expect(loaded).toContain(name);
  }, 180_000);
});

describe('a pipeline built at its first call', () => {
  const input: CallInput = {
    name: 'getPart',
    arguments: {},
    principal: { id: 'stdio:local', scopes: [], via: 'stdio' },
  };
  const result = { content: [{ type: 'text', text: 'ok' }] } as unknown as ToolResult;
  const real = (closed: { n: number }): Pipeline => ({
    call: async () => result,
    stages: ['resolve', 'audit'],
    close: async () => {
      closed.n++;
    },
  });

  it('refuses the call whose build failed (never answers unguarded) and builds again at the next', async () => {
    const closed = { n: 0 };
    let builds = 0;
    const failures: unknown[] = [];
    const p = lazyPipeline(
      async () => {
        builds++;
        if (builds === 1) throw new Error('module missing');
        return real(closed);
      },
      (e) => failures.push(e),
    );
    expect(builds).toBe(0);
    expect(() => p.stages).toThrow(/first call/);
    await expect(p.call(input)).rejects.toThrow('module missing');
    await expect(p.call(input)).resolves.toBe(result);
    await expect(p.call(input)).resolves.toBe(result);
    expect(builds).toBe(2);
    expect(failures).toEqual([new Error('module missing')]);
    expect(p.stages).toEqual(['resolve', 'audit']);
    await p.close();
    expect(closed.n).toBe(1);
  });

  it('runs every call inside `during` (the warm-up counts calls in flight), before and after the build', async () => {
    const closed = { n: 0 };
    const seen: string[] = [];
    const p = lazyPipeline(
      async () => real(closed),
      undefined,
      <T>(run: () => Promise<T>) => {
        seen.push('enter');
        return run().finally(() => seen.push('settled'));
      },
    );
    // The first call waits for the build inside `during`; the second finds it built.
    await expect(p.call(input)).resolves.toBe(result);
    await expect(p.call(input)).resolves.toBe(result);
    expect(seen).toEqual(['enter', 'settled', 'enter', 'settled']);
    await p.close();
  });

  it('refuses a call that reaches it after close (a reload replaced it) and builds nothing new', async () => {
    const closed = { n: 0 };
    let builds = 0;
    const p = lazyPipeline(async () => {
      builds++;
      return real(closed);
    });
    await p.close();
    await expect(p.call(input)).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(builds).toBe(0);
    expect(closed.n).toBe(0);
  });

  it('is built once for calls that arrive together, and closing an unbuilt one builds nothing', async () => {
    const closed = { n: 0 };
    let builds = 0;
    const p = lazyPipeline(async () => {
      builds++;
      return real(closed);
    });
    await Promise.all([p.call(input), p.call(input), p.call(input)]);
    expect(builds).toBe(1);
    const unbuilt = lazyPipeline(async () => {
      builds++;
      return real(closed);
    });
    await unbuilt.close();
    expect(builds).toBe(1);
    expect(closed.n).toBe(0);
  });

  it('is built ahead of its first call by warm(), once, and not after close; a failed warm build leaves it to the call', async () => {
    const closed = { n: 0 };
    let builds = 0;
    const failures: unknown[] = [];
    const build = async () => {
      builds++;
      if (builds === 1) throw new Error('module missing');
      return real(closed);
    };
    const p = lazyPipeline(build, (e) => failures.push(e));
    p.warm();
    await waitFor(() => failures.length === 1, { what: 'the failed warm build reported' });
    expect(() => p.stages).toThrow(/first call/);
    p.warm();
    await waitFor(() => p.stages.length > 0, { what: 'the warm build' });
    p.warm();
    await expect(p.call(input)).resolves.toBe(result);
    expect(builds).toBe(2);
    await p.close();
    expect(closed.n).toBe(1);
    const unbuilt = lazyPipeline(build);
    await unbuilt.close();
    unbuilt.warm();
    expect(builds).toBe(2);
  });
});

describe('the guard stages warmed once the first tools/list is answered', () => {
  it('builds the pipeline without a call, so the first call neither loads nor builds it', async () => {
    const g = await startShopGateway();
    try {
      // Nothing built at start: the first list does not wait for the stages.
      expect(() => g.gw.pipeline.stages).toThrow(/first call/);
      const client = await g.connect();
      expect((await client.listTools()).tools.length).toBeGreaterThan(0);
      const stages = await waitFor(() => g.gw.pipeline.stages, { what: 'the pipeline built with no call' });
      expect(stages).toContain('audit');
    } finally {
      await g.close();
    }
  }, 60_000);
});

describe('a failed build or load ahead of the first call', () => {
  const input: CallInput = {
    name: 'getPart',
    arguments: {},
    principal: { id: 'stdio:local', scopes: [], via: 'stdio' },
  };
  const real: Pipeline = {
    call: async () => ({ content: [] }) as unknown as ToolResult,
    stages: ['audit'],
    close: async () => {},
  };

  it('a warm build that fails refused nobody; a call waiting on a failing build was refused', async () => {
    const told: boolean[] = [];
    let fail = true;
    let release = () => {};
    const p = lazyPipeline(
      () =>
        new Promise<Pipeline>((ok, no) => {
          release = () => (fail ? no(new Error('module missing')) : ok(real));
        }),
      (_e, refused) => told.push(refused),
    );
    p.warm();
    release();
    await waitFor(() => told.length === 1, { what: 'the failed warm build reported' });
    expect(told).toEqual([false]);
    // A call that joins a build warm() started is refused when it fails, and told so.
    p.warm();
    const call = p.call(input);
    release();
    await expect(call).rejects.toThrow('module missing');
    expect(told).toEqual([false, true]);
    fail = false;
    const next = p.call(input);
    release();
    await expect(next).resolves.toBeDefined();
    expect(told).toEqual([false, true]);
  });

  function capture() {
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s)) });
    return { lines, logger };
  }
  const modules = (closed: { n: number }) => ({
    createPipeline: (() => real) as never,
    createLimit: (() => ({})) as never,
    agent: {
      close: async () => {
        closed.n++;
      },
    } as unknown as Dispatcher,
  });

  /** Stages whose first load fails (a chunk missing) and later ones succeed. */
  const failingFirst = () => {
    const { lines, logger } = capture();
    const closed = { n: 0 };
    let n = 0;
    const stages = lazyStages(logger, async () => {
      n++;
      if (n === 1) throw new Error('chunk missing');
      return modules(closed);
    });
    return { lines, closed, stages, loads: () => n };
  };

  it('warming that fails is asked again by a new pipeline (a reload), and logs no refused call', async () => {
    const { lines, closed, stages, loads } = failingFirst();
    const warmed: string[] = [];
    stages.whenWarm(() => warmed.push('first'));
    stages.warmAfterList();
    await waitFor(() => lines.length === 1, { what: 'the failed warming logged' });
    expect(lines[0]!.msg).toMatch(/could not be loaded ahead of a call/);
    expect(lines[0]!.msg).not.toMatch(/refused/);
    expect(warmed).toEqual([]);
    // A reload's pipeline asks to be warmed: the load is tried again, and both pipelines are built.
    stages.whenWarm(() => warmed.push('reloaded'));
    await waitFor(() => warmed.length === 2, { what: 'the pipelines warmed by the second load' });
    expect(warmed).toEqual(['first', 'reloaded']);
    expect(loads()).toBe(2);
    // Warm now: a later pipeline is built at once, and nothing loads again.
    stages.whenWarm(() => warmed.push('later'));
    expect(warmed).toEqual(['first', 'reloaded', 'later']);
    stages.warmAfterList();
    await new Promise((r) => setImmediate(r));
    expect(loads()).toBe(2);
    await stages.close();
    expect(closed.n).toBe(1);
  });

  it('stages a call loaded after a failed warming warm the pipelines waiting', async () => {
    const { lines, closed, stages } = failingFirst();
    const warmed: string[] = [];
    stages.whenWarm(() => warmed.push('waiting'));
    stages.warmAfterList();
    await waitFor(() => lines.length === 1, { what: 'the failed warming logged' });
    // The first call loads them itself: the pipelines waiting for warming are built then too.
    await stages.load();
    expect(warmed).toEqual(['waiting']);
    await stages.close();
    expect(closed.n).toBe(1);
  });
});

// While a worker parses a big spec the cache does not hold, the stages' modules load ahead
// (LazyStages.preload); what comes next — warming or a call — takes them instead of loading again.
describe('the stage modules loaded ahead of the first list', () => {
  const real: Pipeline = {
    call: async () => ({ content: [] }) as unknown as ToolResult,
    stages: ['audit'],
    close: async () => {},
  };
  const counted = (fail = 0) => {
    const closed = { n: 0 };
    let n = 0;
    const stages = lazyStages(pino({ level: 'silent' }), async () => {
      n++;
      if (n <= fail) throw new Error('chunk missing');
      return {
        createPipeline: (() => real) as never,
        createLimit: (() => ({})) as never,
        agent: { close: async () => void closed.n++ } as unknown as Dispatcher,
      };
    });
    return { stages, closed, loads: () => n };
  };

  it('loads once: the warming after the list and a call take what preload loaded, and warm nothing before', async () => {
    const { stages, closed, loads } = counted();
    const warmed: string[] = [];
    stages.preload();
    stages.preload();
    expect(loads()).toBe(1);
    stages.whenWarm(() => warmed.push('pipeline'));
    await new Promise((r) => setTimeout(r, 20));
    // Loaded, not warmed: the pipelines are built after the list, as without a preload.
    expect(warmed).toEqual([]);
    const m = await stages.load();
    expect(m.createPipeline).toBeDefined();
    expect(warmed).toEqual(['pipeline']);
    stages.warmAfterList();
    await stages.load();
    expect(loads()).toBe(1);
    await stages.close();
    expect(closed.n).toBe(1);
  });

  it('a preload that failed is dropped: the next load loads again (nothing unhandled)', async () => {
    const { stages, loads } = counted(1);
    stages.preload();
    await new Promise((r) => setTimeout(r, 20));
    await expect(stages.load()).resolves.toBeDefined();
    expect(loads()).toBe(2);
    await stages.close();
  });

  it('a load that takes a preload still running shares its outcome', async () => {
    const { stages, loads } = counted(1);
    stages.preload();
    await expect(stages.load()).rejects.toThrow(/chunk missing/);
    // Not kept: the call after it loads again.
    await expect(stages.load()).resolves.toBeDefined();
    expect(loads()).toBe(2);
    await stages.close();
  });

  it('closes what a preload made even when nothing took it, and after close preloads nothing', async () => {
    const { stages, closed, loads } = counted();
    stages.preload();
    await stages.close();
    expect(closed.n).toBe(1);
    stages.preload();
    expect(loads()).toBe(1);
  });

  it('after a load (or while one runs), preload does nothing', async () => {
    const { stages, loads } = counted();
    const loading = stages.load();
    stages.preload();
    await loading;
    stages.preload();
    expect(loads()).toBe(1);
    await stages.close();
  });
});
