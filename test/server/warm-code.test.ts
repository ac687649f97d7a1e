import { pino } from 'pino';
import { RE2JS } from 're2js';
import type { Dispatcher } from 'undici';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Pipeline } from '../../src/pipeline/index.js';
import { lazyStages } from '../../src/server/serve.js';
import { WARM_SLICES, warmHttp } from '../../src/server/warm-code.js';
import { startShopGateway } from '../support/gateway.js';
import { waitFor } from '../support/wait.js';

// Issue 22, target 1: what a first call pays once whatever the tool (re2js's case tables, code run
// for the first time) is done after the first tools/list, in slices a call can come between; a
// failed slice changes nothing but who does that work.

const WARM_PATTERN = '^warm-up_[a-z0-9]{1,8}$';

afterEach(() => {
  vi.restoreAllMocks();
});

function stagesWith(
  slices: ReadonlyArray<() => void>,
  afterWritten?: (f: () => void) => void,
  maxParkMs?: number,
) {
  const lines: Array<{ level: number; msg: string; slice?: number }> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  const real = {
    call: async () => ({ content: [] }),
    stages: [],
    close: async () => {},
  } as unknown as Pipeline;
  let loads = 0;
  const stages = lazyStages(
    logger,
    async () => {
      loads++;
      return {
        createPipeline: (() => real) as never,
        createLimit: (() => ({})) as never,
        agent: { close: async () => {} } as unknown as Dispatcher,
        warmUp: slices,
      };
    },
    afterWritten,
    maxParkMs,
  );
  return { lines, stages, loads: () => loads };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('the code warm-up after the first tools/list', () => {
  it('waits for the answers written so far to have left: after the list, and after WARM_AFTER_MS', async () => {
    // The transport's afterWritten, held: as a stdio client that has not read the list's tail yet.
    const held: Array<() => void> = [];
    const ran: string[] = [];
    const { stages, loads } = stagesWith([() => ran.push('slice')], (f) => held.push(f));
    stages.warmAfterList();
    stages.warmSoon();
    // Past the fallback's 250 ms: it too waits for the answers to leave.
    await waitFor(() => held.length === 2, { what: 'the fallback asking to wait too', timeout: 5000 });
    for (let i = 0; i < 5; i++) await tick();
    expect(loads()).toBe(0);
    expect(ran).toEqual([]);
    // The list has left: the stages load (once), then the warm-up runs.
    for (const f of held.splice(0)) f();
    await waitFor(() => ran.length === 1, { what: 'the warm-up after the list left' });
    expect(loads()).toBe(1);
  });

  it('runs after the first list only, one slice per task, so that a call can come between', async () => {
    const ran: string[] = [];
    const { stages } = stagesWith([
      () => {
        ran.push('slice 0');
        // What arrives while slice 0 runs (a call's I/O) is served before slice 1.
        setImmediate(() => ran.push('call'));
      },
      () => ran.push('slice 1'),
    ]);
    // Loaded by a call before any list (or by warmSoon): no warm-up yet.
    await stages.load();
    for (let i = 0; i < 5; i++) await tick();
    expect(ran).toEqual([]);
    stages.warmAfterList();
    await waitFor(() => ran.length === 3, { what: 'the warm-up slices run' });
    expect(ran).toEqual(['slice 0', 'call', 'slice 1']);
    // Once: a second list warms nothing again.
    stages.warmAfterList();
    for (let i = 0; i < 5; i++) await tick();
    expect(ran).toHaveLength(3);
    await stages.close();
  });

  it('waits while a tool call is in flight, and goes on once none is', async () => {
    const ran: string[] = [];
    // A wait bound far past the test's own (the bounded wait has its own test below).
    const { stages } = stagesWith([() => ran.push('slice 0'), () => ran.push('slice 1')], undefined, 60_000);
    stages.warmAfterList();
    // A call sent the moment the list arrived: in flight (waiting for its upstream) when the warm-up starts.
    let answer!: (v: string) => void;
    const call = stages.during(() => new Promise<string>((r) => (answer = r)));
    await stages.load();
    for (let i = 0; i < 10; i++) await tick();
    expect(ran).toEqual([]);
    // A second call in flight too: the warm-up goes on only once neither is.
    let second!: () => void;
    const other = stages.during(() => new Promise<void>((r) => (second = r)));
    answer('done');
    await expect(call).resolves.toBe('done');
    for (let i = 0; i < 10; i++) await tick();
    expect(ran).toEqual([]);
    second();
    await other;
    await waitFor(() => ran.length === 2, { what: 'the warm-up after the calls' });
    expect(ran).toEqual(['slice 0', 'slice 1']);
    await stages.close();
  });

  it('under steady load (a call always in flight) waits a bounded time, then runs between calls and ends', async () => {
    const ran: string[] = [];
    const { stages } = stagesWith([() => ran.push('slice 0'), () => ran.push('slice 1')], undefined, 500);
    stages.warmAfterList();
    // A call that does not end while the test runs: as many clients calling without a pause.
    let end!: () => void;
    const call = stages.during(() => new Promise<void>((r) => (end = r)));
    await stages.load();
    for (let i = 0; i < 10; i++) await tick();
    expect(ran).toEqual([]);
    // Past the bound: the slices run with the call still in flight.
    await waitFor(() => ran.length === 2, { what: 'the warm-up after its wait ran out', timeout: 5000 });
    // The warm-up is over: a call from now on runs as it is (not counted).
    const later = Promise.resolve(2);
    await waitFor(() => stages.during(() => later) === later, { what: 'calls no longer counted' });
    end();
    await call;
    await stages.close();
  });

  it("a call's rejection and a call that throws at once both end it for the warm-up", async () => {
    const ran: string[] = [];
    const { stages } = stagesWith([() => ran.push('slice 0'), () => ran.push('slice 1')], undefined, 60_000);
    stages.warmAfterList();
    await stages.load();
    let fail!: (e: Error) => void;
    const failing = stages.during(() => new Promise<never>((_r, j) => (fail = j)));
    const thrown = stages.during((): Promise<never> => {
      throw new Error('refused before any await');
    });
    await expect(thrown).rejects.toThrow('refused before any await');
    for (let i = 0; i < 10; i++) await tick();
    // Parked before its first slice (the failing call is still in flight).
    expect(ran).toEqual([]);
    fail(new Error('upstream down'));
    await expect(failing).rejects.toThrow('upstream down');
    await waitFor(() => ran.length === 2, { what: 'the warm-up after the failed calls' });
    await stages.close();
  });

  it('a call before the first list, or after the warm-up, runs as it is (nothing to hold back)', async () => {
    const { stages } = stagesWith([() => {}]);
    const run = () => Promise.resolve(1);
    // The very promise `run` returns: no wrapper on the hot path.
    const before = run();
    expect(stages.during(() => before)).toBe(before);
    stages.warmAfterList();
    await stages.load();
    const after = run();
    await waitFor(() => stages.during(() => after) === after, { what: 'the warm-up over' });
    await stages.close();
  });

  it('a failing slice is logged at debug, the others still run, and the stages serve the call', async () => {
    const ran: number[] = [];
    const { lines, stages } = stagesWith([
      () => {
        throw new Error('engine missing');
      },
      () => ran.push(1),
    ]);
    stages.warmAfterList();
    await waitFor(() => ran.length === 1, { what: 'the slice after the failing one' });
    const failed = lines.filter((l) => /warm-up step failed/.test(l.msg));
    expect(failed).toHaveLength(1);
    expect(failed[0]!.level).toBe(20);
    expect(failed[0]!.slice).toBe(0);
    const { createPipeline } = await stages.load();
    expect(createPipeline).toBeTypeOf('function');
    await stages.close();
  });

  it('every real slice runs on its own (a slice that always threw would warm nothing, silently)', () => {
    const compile = vi.spyOn(RE2JS, 'compile');
    for (const slice of WARM_SLICES) slice();
    // re2js's case tables are decoded through the path Ajv's patterns take.
    expect(compile.mock.calls.map((c) => c[0])).toContain(WARM_PATTERN);
  });

  it("runs one request through undici's HTTP/1.1 client on a socket in memory, in more than one task", async () => {
    let tasks = 0;
    let done = false;
    const count = () => {
      tasks++;
      if (!done) setImmediate(count);
    };
    setImmediate(count);
    const body = await warmHttp();
    done = true;
    // Parsed by llhttp from the in-memory answer: the whole path ran.
    expect(body).toBe('{"object":"list","data":[]}');
    // The connection and the answer came in tasks of their own (a call can come between).
    expect(tasks).toBeGreaterThanOrEqual(2);
  });
});

describe('a gateway warms the code once the first list is answered', () => {
  it('compiles a pattern before the first call, and a warm-up that fails leaves the call working', async () => {
    const original = RE2JS.compile.bind(RE2JS);
    const order: string[] = [];
    vi.spyOn(RE2JS, 'compile').mockImplementation((...args: Parameters<typeof RE2JS.compile>) => {
      if (args[0] === WARM_PATTERN) {
        order.push('warm-up');
        // The warm-up's first step fails: the call does that work itself.
        throw new Error('no case tables today');
      }
      order.push('call');
      return original(...args);
    });
    const g = await startShopGateway();
    try {
      const client = await g.connect();
      // Nothing is warmed before the first list.
      expect(order).toEqual([]);
      const tools = (await client.listTools()).tools;
      await waitFor(() => order.includes('warm-up'), { what: 'the warm-up after the list' });
      const search = tools.find((t) => /search/i.test(t.name));
      expect(search).toBeDefined();
      const r = (await client.callTool({ name: search!.name, arguments: { q: 'mouse' } })) as {
        isError?: boolean;
      };
      expect(r.isError).not.toBe(true);
      expect(order[0]).toBe('warm-up');
    } finally {
      await g.close();
    }
  }, 60_000);
});
