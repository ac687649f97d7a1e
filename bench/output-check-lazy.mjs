// Lazy output checks against whole compiles (issue 22): for every tool with an output schema, the first
// call's compile + validate with a fresh compiler (timed), and, for tools with at most maxDefs definitions,
// the same verdict and errors as a whole compile over an example and random mutations of it.
//   node bench/output-check-lazy.mjs <dist dir> <spec> [maxDefs=60]
const [dist, spec, maxDefsArg] = process.argv.slice(2);
const maxDefs = Number(maxDefsArg ?? 60);
const imp = (p) => import(`${dist}/${p}`);
const { loadSpec } = await imp('openapi/load.js');
const { buildCatalog } = await imp('catalog/build.js');
const { createSchemaCompiler } = await imp('catalog/validator.js');
const { exampleOf } = await imp('catalog/example.js');
const cat = buildCatalog(await loadSpec(spec));
let seed = 7;
const rnd = () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};
const mutate = (v, depth = 0) => {
  if (Array.isArray(v)) {
    if (!v.length || rnd() < 0.3) return [...v, 12345];
    const c = [...v];
    const i = Math.floor(rnd() * c.length);
    c[i] = mutate(c[i], depth + 1);
    return c;
  }
  if (v && typeof v === 'object') {
    const ks = Object.keys(v);
    const r = rnd();
    if (!ks.length || r < 0.15) return { ...v, zz_extra: [1] };
    const c = { ...v };
    const k = ks[Math.floor(rnd() * ks.length)];
    if (r < 0.3) {
      delete c[k];
      return c;
    }
    c[k] = mutate(c[k], depth + 1);
    return c;
  }
  const r = rnd();
  return r < 0.25 ? null : r < 0.5 ? 'x' : r < 0.75 ? 1.5 : { a: 1 };
};
const sig = (errs) =>
  (errs ?? [])
    .map((e) => `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`)
    .sort()
    .join('\n');
let compared = 0,
  diffs = 0,
  values = 0,
  worst = [0, ''],
  lazySum = 0,
  n = 0;
const firstCall = [];
for (const t of cat.tools) {
  const o = t.outputSchema;
  if (!o) continue;
  // Lazy first call: fresh compiler, compile + validate one example.
  const ex = exampleOf(o, o);
  const fresh = createSchemaCompiler(cat.formats);
  const a = performance.now();
  const lz = fresh.compileLazily(o);
  if (ex) lz(ex.value);
  else lz({});
  const ms = performance.now() - a;
  firstCall.push(ms);
  if (ms > worst[0]) worst = [ms, t.name];
  const ndefs = Object.keys(o.$defs ?? {}).length;
  if (ndefs > maxDefs) continue;
  const plain = createSchemaCompiler(cat.formats).compile(o);
  compared++;
  const vals = [];
  if (ex) {
    vals.push(ex.value);
    for (let i = 0; i < 12; i++) vals.push(mutate(ex.value));
  }
  vals.push({}, null, [], 'x', { result: 1 });
  for (const v of vals) {
    values++;
    const p = plain(v),
      l = lz(v);
    if (p !== l || sig(plain.errors) !== sig(lz.errors)) {
      diffs++;
      if (diffs < 5)
        console.log(
          'DIFF',
          t.name,
          p,
          l,
          JSON.stringify(v).slice(0, 200),
          '\n',
          sig(plain.errors).slice(0, 400),
          '\n--\n',
          sig(lz.errors).slice(0, 400),
        );
    }
  }
}
firstCall.sort((a, b) => a - b);
console.log(
  JSON.stringify({
    spec: spec.split('/').pop(),
    compared,
    values,
    diffs,
    firstCall: {
      n: firstCall.length,
      p50: +firstCall[firstCall.length >> 1]?.toFixed(1),
      p90: +firstCall[Math.floor(firstCall.length * 0.9)]?.toFixed(1),
      max: +worst[0].toFixed(1),
      worst: worst[1],
    },
  }),
);
