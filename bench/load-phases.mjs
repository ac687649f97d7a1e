// Where the time goes between a process start and a loaded spec object (issue 22, target 1), phase by
// phase, for the big shared specs: each sample is a fresh process (cold code, as at start-up) that
// times the loader's exported functions one after the other, for this checkout's build and the
// "before" build (/tmp/base) interleaved. Also the whole `loadSpec`, and the prefetch path of
// `serve --spec` end to end: worker start, its module loading and load, the transfer to the main
// thread, and how long the main thread is blocked receiving it.
//
//   node bench/load-phases.mjs [reps=3] [--only stripe,github] [--no-base]
//
// Phases (CPU ms of the process): read (fs), parse (parseText: JSON.parse or YAML, plus the shape check), refs
// (hasExternalRefs), bundle (multi-file specs: bundleExternal, the files it $refs read, parsed and
// bundled), inline (inlineMisplacedRefs), repair (repairSpec), validate (validateSpec: meta-
// schema, incl. importing its generated validator, and the prose rules), convert (Swagger 2.0 only),
// clone (structuredClone of the LoadedSpec: what a postMessage costs both sides together). `load`:
// wall and CPU ms of one loadSpec on the main thread; `prefetch`: wall ms until the worker's spec is
// in hand, and the process's CPU ms by then.
//
// The spec cache (src/openapi/cache.ts) is off here, in this process and its children: a hit would
// skip the phases timed. bench/startup.mjs times the cache (warm and --cold).

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { takeFlag } from './lib/args.mjs';

const argv = process.argv.slice(2);
const flag = (name) => takeFlag(argv, name);
process.env.MCP_WARDEN_SPEC_CACHE = 'off';

if (argv[0] === '--child') {
  await child(argv[1], argv[2], argv[3]);
  process.exit(0);
}

const only = flag('--only')?.split(',');
const noBase = argv.includes('--no-base');
const REPS = Number(argv.find((a) => /^\d+$/.test(a)) ?? 3);
const root = fileURLToPath(new URL('..', import.meta.url));
const shared = fileURLToPath(new URL('../../shared/specs/', import.meta.url));
const SPECS = [
  'stripe.yaml',
  'github-rest.json',
  'kubernetes-swagger2.json',
  'openai.yaml',
  'asana.yaml',
  'slack-web.json',
  'digitalocean/specification/DigitalOcean-public.v2.yaml',
].filter((f) => !only || only.some((o) => f.includes(o)));
const builds = [
  ['after', `${root}dist/`],
  ...(!noBase && existsSync('/tmp/base/dist/openapi/load.js') ? [['before', '/tmp/base/dist/']] : []),
];
const MODES = ['phases', 'load', 'prefetch'];

const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : Number.NaN;
};

const results = {}; // spec -> build -> mode -> [samples]
for (let r = 0; r < REPS; r++) {
  for (const spec of SPECS) {
    for (const mode of MODES) {
      for (const [name, dist] of builds) {
        const c = spawnSync(
          process.execPath,
          [fileURLToPath(import.meta.url), '--child', mode, dist, `${shared}${spec}`],
          {
            encoding: 'utf8',
            maxBuffer: 1 << 26,
          },
        );
        if (c.status !== 0) {
          console.error(`${name} ${mode} ${spec}: ${c.stderr.slice(0, 400)}`);
          continue;
        }
        const s = JSON.parse(c.stdout.trim().split('\n').pop());
        results[spec] ??= {};
        results[spec][name] ??= {};
        results[spec][name][mode] ??= [];
        results[spec][name][mode].push(s);
      }
    }
  }
  process.stderr.write(`run ${r + 1}/${REPS} done\n`);
}

const fmt = (x) => (Number.isFinite(x) ? x.toFixed(0) : '–');
console.log(`node ${process.version}, ${REPS} fresh processes each (median), ms`);
for (const spec of SPECS) {
  console.log(`\n${spec}`);
  const keys = [];
  for (const [name] of builds)
    for (const mode of MODES)
      for (const k of Object.keys(results[spec]?.[name]?.[mode]?.[0] ?? {}))
        if (!keys.includes(`${mode}.${k}`)) keys.push(`${mode}.${k}`);
  console.log(
    `| phase | ${builds.map(([n]) => n).join(' | ')} |\n|---|${builds.map(() => '---:|').join('')}`,
  );
  for (const key of keys) {
    const [mode, k] = key.split('.');
    const cells = builds.map(([n]) => fmt(median((results[spec]?.[n]?.[mode] ?? []).map((s) => s[k]))));
    console.log(`| ${key} | ${cells.join(' | ')} |`);
  }
}

/** One fresh process: times one mode for one build and spec; prints one JSON line. */
async function child(mode, dist, spec) {
  const out = {};
  const t = () => performance.now();
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const mod = (p) => import(pathToFileURL(`${dist}${p}`).href);
  if (mode === 'prefetch') {
    const t0 = t();
    const { prefetchSpec, takePrefetched } = await mod('openapi/prefetch.js');
    prefetchSpec(spec, {});
    const started = t();
    // The main thread's share: the longest stall of its event loop while the worker runs (the
    // result arrives as one message; receiving it blocks the loop).
    let last = t();
    let stall = 0;
    const tick = setInterval(() => {
      const now = t();
      stall = Math.max(stall, now - last);
      last = now;
    }, 1);
    const p = takePrefetched(spec, {});
    const r = await p;
    clearInterval(tick);
    out.total = t() - t0;
    out.worker = t() - started;
    out.cpu = cpu();
    out.mainStall = stall;
    out.ok = r?.ok ? 1 : 0;
  } else if (mode === 'load') {
    const t0 = t();
    const c0 = cpu();
    const { loadSpec } = await mod('openapi/load.js');
    out.import = t() - t0;
    const t1 = t();
    await loadSpec(spec, {});
    out.loadSpec = t() - t1;
    out.cpu = cpu() - c0;
  } else {
    const t0 = cpu();
    const load = await mod('openapi/load.js');
    const { parseText } = await mod('openapi/parse.js');
    const { repairSpec } = await mod('openapi/repair.js');
    const { validateSpec } = await mod('openapi/validate.js');
    const { describeSource } = await mod('openapi/read.js');
    out.import = cpu() - t0;
    // CPU time of the process per phase (wall time on a shared machine measures the neighbours).
    let s = cpu();
    const lap = (k) => {
      const now = cpu();
      out[k] = now - s;
      s = now;
    };
    const text = readFileSync(spec, 'utf8');
    lap('read');
    const src = describeSource(spec);
    let doc = parseText(text, spec, { maxDepth: 256, maxNodes: 20_000_000 });
    lap('parse');
    const external = load.hasExternalRefs(doc);
    lap('refs');
    // A build before bundleExternal was exported: its phases stop here.
    if (external && !load.bundleExternal) return console.log(JSON.stringify(out));
    if (external) {
      // A multi-file spec (DigitalOcean's): reading, parsing and bundling the files it $refs.
      const limits = { maxDepth: 256, maxNodes: 20_000_000 };
      doc = (await load.bundleExternal(doc, src, { maxBytes: 64 * 1024 * 1024, limits, timeoutMs: 15_000 }))
        .doc;
      lap('bundle');
    }
    load.inlineMisplacedRefs(doc);
    lap('inline');
    const v2 = doc.swagger !== undefined;
    repairSpec(doc, v2 ? '2.0' : String(doc.openapi).startsWith('3.1') ? '3.1' : '3.0');
    lap('repair');
    await validateSpec(doc, text, src);
    lap('validate');
    if (v2) {
      const { default: s2o } = await import('swagger2openapi');
      lap('convertImport');
      // As the loader calls it since issue 22 (`text`: no YAML dump of the whole spec first).
      const opts = { patch: true, warnOnly: true, resolve: false, direct: false, text };
      doc = (await s2o.convertObj(doc, opts)).openapi;
      lap('convert');
    }
    structuredClone({ doc, rootText: text });
    lap('clone');
  }
  console.log(JSON.stringify(out));
}
