// What one `tools/call` costs inside the guard pipeline, in process: `pipeline.call` of a full
// gateway (policy, JSONL audit, metrics, rate limits lifted) against the demo shop in its own process,
// next to a bare undici request to the same endpoint. CPU µs per call (process.cpuUsage over whole
// blocks: the upstream runs elsewhere, so this is the pipeline, its HTTP client and GC), wall p50/p99,
// alternating blocks so drift hits every variant alike. With `--profile`, the measured calls of each
// variant run under the V8 profiler and the profile is summarised per stage (inclusive: the stage's
// own code and whatever it calls) and per module (self time).
//
//   node bench/pipeline-call.mjs [calls=20000] [--base <dir>] [--profile <dir>] [--read <file.cpuprofile>] [--alloc]
//
// --base <dir>: also the build in <dir> (e.g. /tmp/base, the commit before), measured in the same run.
// --read <file>: only print the summary of a profile written before.
// --alloc: also the bytes allocated per call (V8's sampling heap profiler, every 256 bytes, counting
//   objects a GC has since freed), alternating blocks, with the top sites per variant. Unlike CPU
//   time, it barely moves with the load on the machine.

import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { takeFlag } from './lib/args.mjs';
import { moduleOf } from './lib/profile-categories.mjs';
import { SHOP_KEY as KEY, liftedPolicy, startShopUpstream } from './lib/shop.mjs';

const argv = process.argv.slice(2);
const flag = (name) => takeFlag(argv, name);
const BASE = flag('--base');
const PROFILE = flag('--profile');
const READ = flag('--read');
const ALLOC = argv.includes('--alloc');
if (ALLOC) argv.splice(argv.indexOf('--alloc'), 1);
// --concurrency N: each block's calls run N at a time (N loops), as a busy HTTP gateway runs them.
const CONCURRENCY = Number(flag('--concurrency') ?? 1);
const CALLS = Number(argv[0] ?? 20000);
const BLOCK = 1000;
const root = new URL('..', import.meta.url).pathname;
const SPEC = `${root}examples/shop/openapi.yaml`;
const ARGS = { q: 'mouse' };

/** The pipeline's stages by the names of their functions (src/pipeline/*), in the order they run. */
const STAGES = [
  'resolve',
  'authorize',
  'toggle',
  'limit',
  'validate',
  'budget',
  'taint',
  'confirm',
  'buildRequest',
  'auditIntent',
  'injectCredential',
  'spend',
  'send',
  'answer',
  'screen',
  'protect',
  'taintRecord',
  'audit',
];

/**
 * A .cpuprofile summarised: inclusive time per pipeline stage (a sample counts for the outermost
 * stage function on its stack; the runner's own code, the observers told of each call and the rest
 * get their own rows), and the top self-time functions, by module.
 */
export function summarise(profile, top = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Only the samples from the first call to the last (a whole process's profile has start-up and
  // shut-down around them): a call is on the stack when a pipeline stage or the runner is.
  const inCall = new Map();
  const callOn = (id) => {
    if (inCall.has(id)) return inCall.get(id);
    const n = byId.get(id);
    const { url } = n.callFrame;
    // The floor (bench/floor-server.mjs) has no pipeline: its tool handler marks a call.
    const v =
      url.includes('/dist/pipeline/') ||
      url.endsWith('/bench/floor-server.mjs') ||
      (parent.has(id) && callOn(parent.get(id)));
    inCall.set(id, v);
    return v;
  };
  let first = 0;
  let last = profile.samples.length - 1;
  while (first < last && !callOn(profile.samples[first])) first++;
  while (last > first && !callOn(profile.samples[last])) last--;
  // PROFILE_WEIGHT=ticks: every sample weighs the median interval, instead of the time since the
  // previous sample; on a loaded machine a descheduled process stretches the interval, and the
  // stretch lands on whatever ran just before (often a syscall), so counting samples is fairer.
  const ticks = process.env.PROFILE_WEIGHT === 'ticks';
  const nominal = [...profile.timeDeltas].sort((a, b) => a - b)[profile.timeDeltas.length >> 1] ?? 0;
  const dt = new Map();
  for (let i = first + 1; i <= last; i++) {
    const id = profile.samples[i];
    dt.set(id, (dt.get(id) ?? 0) + (ticks ? nominal : (profile.timeDeltas[i] ?? 0)));
  }
  const stageOf = (id) => {
    let found;
    let record = false;
    for (let n = byId.get(id); n; n = byId.get(parent.get(n.id))) {
      const { functionName, url } = n.callFrame;
      if (url.includes('/dist/pipeline/') && STAGES.includes(functionName)) found = functionName;
      if (url.includes('/dist/pipeline/index') && functionName === 'record') record = true;
    }
    if (found) return found;
    const leaf = byId.get(id).callFrame;
    if (leaf.functionName === '(garbage collector)') return '(gc)';
    if (leaf.functionName === '(idle)') return '(idle)';
    if (record) return 'observers (onCall)';
    // Outside the stages: the runner, the MCP layer, the SDK, framing, the event loop.
    return `(outside) ${moduleOf(leaf.url)}`;
  };
  const stage = new Map();
  const self = new Map();
  let total = 0;
  for (const [id, us] of dt) {
    const node = byId.get(id);
    const s = stageOf(id);
    stage.set(s, (stage.get(s) ?? 0) + us);
    if (s === '(idle)') continue;
    total += us;
    const { functionName, url, lineNumber } = node.callFrame;
    const key = `${functionName || '(anonymous)'} ${moduleOf(url)}${url ? `:${lineNumber + 1}` : ''}`;
    self.set(key, (self.get(key) ?? 0) + us);
  }
  const mods = new Map();
  for (const [k, us] of self) {
    const m = k.split(' ')[1].replace(/:\d+$/, '');
    mods.set(m, (mods.get(m) ?? 0) + us);
  }
  const sorted = (m) => [...m].sort((a, b) => b[1] - a[1]);
  return {
    total,
    stage: sorted(stage),
    self: sorted(self).slice(0, top),
    modules: sorted(mods).slice(0, top),
  };
}

/** Two summaries added up (whole lists: the caller cuts them). */
function merged(a, b) {
  const add = (x, y) => {
    const m = new Map(x);
    for (const [k, v] of y) m.set(k, (m.get(k) ?? 0) + v);
    return [...m].sort((p, q) => q[1] - p[1]);
  };
  return {
    total: a.total + b.total,
    stage: add(a.stage, b.stage),
    self: add(a.self, b.self),
    modules: add(a.modules, b.modules),
  };
}

/** Prints a summary; `calls`: how many calls the profile covers, for µs per call. */
export function printSummary(title, s, calls) {
  const per = (us) => (calls ? (us / calls).toFixed(1) : '');
  const pc = (us) => ((100 * us) / s.total).toFixed(1);
  console.log(
    `\n## ${title}: ${(s.total / 1000).toFixed(0)} ms of CPU samples (idle excluded)${calls ? `, ${calls} calls` : ''}`,
  );
  console.log('\n| stage (inclusive) | µs per call | % |\n|---|---:|---:|');
  const order = (name) => {
    const i = STAGES.indexOf(name);
    return i < 0 ? 100 : i;
  };
  const rows = [...s.stage].sort((a, b) => order(a[0]) - order(b[0]) || b[1] - a[1]);
  let rest = 0;
  for (const [k, us] of rows) {
    if (k === '(idle)') continue;
    // Small rows outside the pipeline are summed into one.
    if (k.startsWith('(outside)') && us < 0.01 * s.total) rest += us;
    else console.log(`| ${k} | ${per(us)} | ${pc(us)} |`);
  }
  if (rest) console.log(`| (outside) the rest | ${per(rest)} | ${pc(rest)} |`);
  let inPipeline = 0;
  for (const [k, us] of rows) if (STAGES.includes(k) || k === 'observers (onCall)') inPipeline += us;
  console.log(`| **pipeline stages + observers** | **${per(inPipeline)}** | ${pc(inPipeline)} |`);
  console.log('\n| module (self) | µs per call | % |\n|---|---:|---:|');
  for (const [k, us] of s.modules) console.log(`| ${k} | ${per(us)} | ${pc(us)} |`);
  console.log('\n| function (self) | µs per call | % |\n|---|---:|---:|');
  for (const [k, us] of s.self) console.log(`| ${k.replace(/\|/g, '\\|')} | ${per(us)} | ${pc(us)} |`);
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function main() {
  if (READ) {
    const p = JSON.parse(readFileSync(READ, 'utf8'));
    printSummary(READ, summarise(p), CALLS || undefined);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'warden-pipeline-bench-'));
  const POLICY = liftedPolicy(dir, 1);
  const { url: up } = await startShopUpstream(4900);

  const principal = { id: 'stdio:local', scopes: ['tools:read'], via: 'stdio' };
  const variants = {};
  const gateway = async (at, name) => {
    const { startGateway } = await import(`${at}/dist/server/serve.js`);
    const g = await startGateway({
      spec: SPEC,
      baseUrl: up,
      policy: POLICY,
      auditFile: join(dir, `${name.replace(/\W/g, '_')}.jsonl`),
      transport: { kind: 'http', port: 0 },
      logLevel: 'warn',
      env: { MCP_WARDEN_CRED_SHOPKEY: KEY },
    });
    const call = async () => {
      const r = await g.pipeline.call({ name: 'searchProducts', arguments: ARGS, principal });
      if (r.isError) throw new Error(JSON.stringify(r).slice(0, 300));
    };
    return { call, close: () => g.close() };
  };
  const agent = new Agent({ connections: 64 });
  variants['direct (undici)'] = {
    call: async () => {
      const r = await agent.request({
        origin: new URL(up).origin,
        path: '/v1/products/search?q=mouse',
        method: 'GET',
        headers: { 'x-shop-key': KEY },
      });
      await r.body.text();
    },
    close: () => agent.close(),
  };
  if (BASE) variants['mcp-warden (base)'] = await gateway(BASE, 'base');
  variants['mcp-warden'] = await gateway(root, 'this');

  for (const v of Object.values(variants)) for (let i = 0; i < 3000; i++) await v.call();

  const session = PROFILE ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    mkdirSync(PROFILE, { recursive: true });
  }
  const results = Object.fromEntries(Object.keys(variants).map((k) => [k, { us: [], cpu: 0, blocks: [] }]));
  for (let done = 0; done < CALLS; done += BLOCK)
    for (const [name, v] of Object.entries(variants)) {
      const r = results[name];
      const c0 = process.cpuUsage();
      const loop = async (n) => {
        for (let i = 0; i < n; i++) {
          const t0 = process.hrtime.bigint();
          await v.call();
          r.us.push(Number(process.hrtime.bigint() - t0) / 1000);
        }
      };
      if (CONCURRENCY <= 1) await loop(BLOCK);
      else await Promise.all(Array.from({ length: CONCURRENCY }, () => loop(BLOCK / CONCURRENCY)));
      const c = process.cpuUsage(c0);
      r.cpu += c.user + c.system;
      r.blocks.push((c.user + c.system) / BLOCK);
    }
  // Profiles: a profile per block, the variants' blocks alternating (as above, so load on the machine
  // hits each alike), summed per variant; the first block's profile of each is kept as a file.
  const profiles = {};
  if (session)
    for (let done = 0; done < CALLS; done += BLOCK)
      for (const [name, v] of Object.entries(variants)) {
        if (name.startsWith('direct')) continue;
        await session.post('Profiler.start');
        for (let i = 0; i < BLOCK; i++) await v.call();
        const { profile } = await session.post('Profiler.stop');
        const summary = summarise(profile, Number.POSITIVE_INFINITY);
        if (!profiles[name]) {
          const file = join(PROFILE, `${name.replace(/\W+/g, '_')}.cpuprofile`);
          writeFileSync(file, JSON.stringify(profile));
          profiles[name] = { file, summary };
        } else profiles[name].summary = merged(profiles[name].summary, summary);
      }
  const allocs = ALLOC ? await allocations(variants) : undefined;
  for (const v of Object.values(variants)) await v.close();

  console.log(
    `# node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB`,
  );
  console.log(
    `# in process: ${CALLS} calls per variant in alternating blocks of ${BLOCK}${CONCURRENCY > 1 ? `, ${CONCURRENCY} at a time` : ''}; CPU = process.cpuUsage over the blocks`,
  );
  console.log(
    '\n| variant | CPU µs per call | over direct | wall p50 µs | wall p99 µs |\n|---|---:|---:|---:|---:|',
  );
  const direct = results['direct (undici)'].cpu / CALLS;
  for (const [name, r] of Object.entries(results)) {
    const s = [...r.us].sort((a, b) => a - b);
    const cpu = r.cpu / CALLS;
    console.log(
      `| ${name} | ${cpu.toFixed(1)} | ${name.startsWith('direct') ? '—' : `+${(cpu - direct).toFixed(1)}`} | ${pct(s, 50).toFixed(1)} | ${pct(s, 99).toFixed(1)} |`,
    );
  }
  // On a shared machine the sums above move with the load; the median of the paired differences
  // (each block of this build against the base's block run just before it) moves far less.
  if (BASE) {
    const a = results['mcp-warden'].blocks;
    const b = results['mcp-warden (base)'].blocks;
    const med = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
    const diffs = a.map((x, i) => x - b[i]);
    console.log(
      `\nmedian CPU µs per call of a block: mcp-warden ${med(a).toFixed(1)}, base ${med(b).toFixed(1)}; median paired difference ${med(diffs) >= 0 ? '+' : ''}${med(diffs).toFixed(1)} µs (${diffs.filter((d) => d < 0).length} of ${diffs.length} blocks cheaper)`,
    );
  }
  if (allocs) printAllocations(allocs);
  for (const [name, p] of Object.entries(profiles)) {
    const { summary: x } = p;
    printSummary(
      `${name} (blocks summed; first block in ${p.file})`,
      { ...x, self: x.self.slice(0, 25), modules: x.modules.slice(0, 25) },
      CALLS,
    );
  }
}

/**
 * Bytes allocated per call and by function (self), per variant: the sampling heap profiler over
 * alternating blocks of calls, objects already collected included.
 */
async function allocations(variants) {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  const out = Object.fromEntries(
    Object.keys(variants).map((k) => [k, { bytes: 0, calls: 0, sites: new Map() }]),
  );
  for (let round = 0; round < 4; round++)
    for (const [name, v] of Object.entries(variants)) {
      await session.post('HeapProfiler.startSampling', {
        samplingInterval: 256,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
      for (let i = 0; i < BLOCK; i++) await v.call();
      const { profile } = await session.post('HeapProfiler.stopSampling');
      const o = out[name];
      o.calls += BLOCK;
      const walk = (n) => {
        o.bytes += n.selfSize;
        if (n.selfSize) {
          const f = n.callFrame;
          const k = `${f.functionName || '(anonymous)'} ${moduleOf(f.url)}:${f.lineNumber + 1}`;
          o.sites.set(k, (o.sites.get(k) ?? 0) + n.selfSize);
        }
        for (const c of n.children) walk(c);
      };
      walk(profile.head);
    }
  await session.post('HeapProfiler.disable');
  session.disconnect();
  return out;
}

function printAllocations(allocs) {
  console.log('\n| variant | bytes allocated per call |\n|---|---:|');
  for (const [name, a] of Object.entries(allocs))
    console.log(`| ${name} | ${Math.round(a.bytes / a.calls)} |`);
  for (const [name, a] of Object.entries(allocs)) {
    if (name.startsWith('direct')) continue;
    console.log(`\n| ${name}: site (self) | bytes per call |\n|---|---:|`);
    for (const [k, b] of [...a.sites].sort((x, y) => y[1] - x[1]).slice(0, 15))
      console.log(`| ${k.replace(/\|/g, '\\|')} | ${Math.round(b / a.calls)} |`);
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
