// buildCatalog alone on a cold start (issue 22): the spec is loaded with the cache off, then the
// catalogue is built and timed by CPU (process.cpuUsage: all threads, so GC helpers count) and wall.
// The first build of a process is what a cold start pays (cold code, empty memos); later builds in
// the same process show the steady cost. Fresh processes alternate between builds (--base).
//
//   node bench/catalog-build.mjs [--fresh 5] [--runs 3] [--only stripe,github] [--base /tmp/base]
//   node bench/catalog-build.mjs --child <dist> <spec> [--runs 3] [--prof out.cpuprofile] [--dump out.json] [--ref-root dir]
//
// --restore <file> times restoreCatalog of a snapshot instead (the first run stores the file).
// --prof profiles the first build only (node:inspector; summarise with bench/profile-summary.mjs).
// --dump writes what the catalogue holds, every lazy field read (input/output schemas with `$defs`,
// data classes), one SHA-256 per tool plus the catalogue's own fields, for `--compare a.json b.json`
// (equality before/after a change; prints the first tools that differ). For all 17 specs:
//   node bench/catalog-build.mjs --dump-all /tmp/base/dist /tmp/cat-base
//   node bench/catalog-build.mjs --dump-all $PWD/dist /tmp/cat-now
//   node bench/catalog-build.mjs --compare-all /tmp/cat-base /tmp/cat-now
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const here = fileURLToPath(new URL('..', import.meta.url));
const shared = fileURLToPath(new URL('../../shared/specs/', import.meta.url));
/** Every spec of the shared corpus (a folder's root file for the multi-file ones). */
const allSpecs = () =>
  readdirSync(shared)
    .filter((f) => f !== 'INDEX.md')
    .map((f) => {
      if (!statSync(join(shared, f)).isDirectory()) return { name: f, path: join(shared, f) };
      const root = ROOTS[f];
      return { name: f, path: join(shared, f, root), refRoot: join(shared, f) };
    });
const ROOTS = {
  digitalocean: 'specification/DigitalOcean-public.v2.yaml',
  'petstore-separate-swagger2': 'spec/swagger.yaml',
};
const child = (dist, spec, extra) => {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', dist, spec, ...extra], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
};

if (args[0] === '--dump-all') {
  const [dist, out] = [args[1], args[2]];
  mkdirSync(out, { recursive: true });
  for (const s of allSpecs()) {
    const r = child(dist, s.path, [
      '--runs',
      '0',
      '--dump',
      join(out, `${s.name}.json`),
      ...(s.refRoot ? ['--ref-root', s.refRoot] : []),
    ]);
    console.log(`${s.name}: ${r.tools} tools`);
  }
  process.exit(0);
}

if (args[0] === '--compare-all') {
  let bad = 0;
  for (const f of readdirSync(args[1]).filter((x) => x.endsWith('.json'))) {
    const r = spawnSync(
      process.execPath,
      [fileURLToPath(import.meta.url), '--compare', join(args[1], f), join(args[2], f)],
      {
        encoding: 'utf8',
      },
    );
    if (r.status !== 0) bad++;
    console.log(`${f}: ${r.stdout.trim().split('\n').join('; ')}`);
  }
  process.exit(bad ? 1 : 0);
}

if (args[0] === '--compare') {
  const [a, b] = [JSON.parse(readFileSync(args[1], 'utf8')), JSON.parse(readFileSync(args[2], 'utf8'))];
  let diffs = 0;
  if (JSON.stringify(a.catalog) !== JSON.stringify(b.catalog)) {
    console.log('catalogue fields differ');
    diffs++;
  }
  if (a.tools.length !== b.tools.length) console.log(`tools: ${a.tools.length} vs ${b.tools.length}`);
  for (let i = 0; i < Math.max(a.tools.length, b.tools.length); i++) {
    const [x, y] = [a.tools[i], b.tools[i]];
    if (x?.name !== y?.name || x?.hash !== y?.hash) {
      if (diffs++ < 5) console.log(`differs: ${x?.name} / ${y?.name}`);
    }
  }
  console.log(diffs === 0 ? `same (${a.tools.length} tools)` : `${diffs} differences`);
  process.exit(diffs === 0 ? 0 : 1);
}

if (args[0] === '--child') {
  const [dist, spec] = [args[1], args[2]];
  const runs = Number(opt('--runs', 3));
  const { loadSpec } = await import(`${dist}/openapi/load.js`);
  const { buildCatalog } = await import(`${dist}/catalog/build.js`);
  const refRoot = opt('--ref-root');
  const loaded = await loadSpec(spec, { specCache: false, ...(refRoot ? { refRoot } : {}) });
  const restore = opt('--restore');
  if (restore) {
    // A restored snapshot instead of a build (../src/catalog/snapshot.ts), first catalogue work of the
    // process: what a start would pay if the worker handed over a snapshot with the spec.
    const { restoreCatalog, snapshotCatalog } = await import(`${dist}/catalog/snapshot.js`);
    let bytes;
    try {
      bytes = readFileSync(restore);
    } catch {
      bytes = snapshotCatalog(buildCatalog(loaded), loaded);
      writeFileSync(restore, bytes);
      process.stdout.write(JSON.stringify({ stored: bytes.length }));
      process.exit(0);
    }
    const c0 = cpu();
    const t0 = performance.now();
    const cat = restoreCatalog(bytes, loaded);
    process.stdout.write(
      JSON.stringify({
        tools: cat.tools.length,
        restoreCpu: cpu() - c0,
        restoreWall: performance.now() - t0,
      }),
    );
    process.exit(0);
  }
  const prof = opt('--prof');
  let session;
  if (prof) {
    const { Session } = await import('node:inspector/promises');
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
    await session.post('Profiler.start');
  }
  const times = [];
  let cat;
  for (let i = 0; i <= runs; i++) {
    const c0 = cpu();
    const t0 = performance.now();
    cat = buildCatalog(loaded);
    times.push({ cpu: cpu() - c0, wall: performance.now() - t0 });
    if (i === 0 && session) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(prof, JSON.stringify(profile));
    }
  }
  const dump = opt('--dump');
  if (dump) {
    const hash = (v) => createHash('sha256').update(JSON.stringify(v)).digest('hex');
    const { tools, ...rest } = cat;
    writeFileSync(
      dump,
      JSON.stringify({ catalog: rest, tools: tools.map((t) => ({ name: t.name, hash: hash(t) })) }),
    );
  }
  process.stdout.write(
    JSON.stringify({
      tools: cat.tools.length,
      firstCpu: times[0].cpu,
      firstWall: times[0].wall,
      warmCpu: runs ? median(times.slice(1).map((t) => t.cpu)) : null,
      warmWall: runs ? median(times.slice(1).map((t) => t.wall)) : null,
    }),
  );
  process.exit(0);
}

const fresh = Number(opt('--fresh', 5));
const runs = opt('--runs', '3');
const base = opt('--base');
const SPECS = {
  stripe: 'stripe.yaml',
  github: 'github-rest.json',
  kubernetes: 'kubernetes-swagger2.json',
  openai: 'openai.yaml',
  digitalocean: 'digitalocean/specification/DigitalOcean-public.v2.yaml',
};
const only = opt('--only')?.split(',') ?? Object.keys(SPECS);
const builds = [['now', `${here}dist`], ...(base ? [['base', `${base}/dist`]] : [])];
console.log(
  `node ${process.version}; ${fresh} fresh processes per build, ${runs} warm builds each (medians, ms)`,
);
for (const name of only) {
  const spec = `${shared}${SPECS[name] ?? name}`;
  const rows = Object.fromEntries(builds.map(([b]) => [b, []]));
  for (let i = 0; i < fresh; i++) {
    for (const [b, dist] of i % 2 ? [...builds].reverse() : builds) {
      rows[b].push(child(dist, spec, ['--runs', runs]));
    }
  }
  for (const [b] of builds) {
    const xs = rows[b];
    const m = (k) => median(xs.map((x) => x[k])).toFixed(0);
    console.log(
      `${name.padEnd(13)} ${b.padEnd(5)} tools ${xs[0].tools}  first CPU ${m('firstCpu')} wall ${m('firstWall')}  warm CPU ${m('warmCpu')} wall ${m('warmWall')}`,
    );
  }
}
