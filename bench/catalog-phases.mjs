// Start-up phases of one spec in one process (issue 22): loadSpec, buildCatalog, policy + view, the first
// list without and with output schemas (wall and CPU ms: CPU is what to compare on a shared machine); --compile adds each tool's whole input/output validator compile.
//   node bench/catalog-phases.mjs <dist dir, e.g. $PWD/dist or /tmp/base/dist> <spec> [--compile]
const [dist, spec, ...rest] = process.argv.slice(2);
const imp = (p) => import(`${dist}/${p}`);
const { loadSpec } = await imp('openapi/load.js');
const { buildCatalog } = await imp('catalog/build.js');
const { evaluatePolicy, DEFAULT_POLICY } = await imp('policy/evaluate.js');
const { buildView } = await imp('control/view.js');
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const t0 = performance.now();
const s = await loadSpec(spec);
const t1 = performance.now();
const c1 = cpu();
const cat = buildCatalog(s);
const t2 = performance.now();
const c2 = cpu();
const decisions = evaluatePolicy(cat, { doc: DEFAULT_POLICY });
const view = buildView(decisions, new Map(), { toggles: new Map(), kill: 'none' }, 1);
const t3 = performance.now();
const c3 = cpu();
const bare = view.listFor(['tools:read'], false);
const t4 = performance.now();
const c4 = cpu();
const full = view.listFor(['tools:read']);
const json = JSON.stringify(full);
const t5 = performance.now();
const c5 = cpu();
const out = {
  tools: cat.tools.length,
  listed: full.length,
  load: t1 - t0,
  catalog: t2 - t1,
  catalogCpu: c2 - c1,
  policyView: t3 - t2,
  listBare: bare ? t4 - t3 : null,
  listBareCpu: c4 - c3,
  listFull: t5 - t4,
  listFullCpu: c5 - c4,
  listBytes: json.length,
};
if (rest.includes('--compile')) {
  const { createSchemaCompiler } = await imp('catalog/validator.js');
  const { relaxOverlappingOneOfs } = await imp('catalog/one-of.js');
  const inC = createSchemaCompiler(cat.formats),
    outC = createSchemaCompiler(cat.formats);
  const ins = [],
    outs = [];
  for (const t of cat.tools) {
    let a = performance.now();
    inC.compile(relaxOverlappingOneOfs(t.inputSchema));
    ins.push([performance.now() - a, t.name]);
    if (t.outputSchema) {
      a = performance.now();
      outC.compile(t.outputSchema);
      outs.push([performance.now() - a, t.name]);
    }
  }
  const st = (xs) => {
    const v = xs.map((x) => x[0]).sort((a, b) => a - b);
    const worst = [...xs]
      .sort((a, b) => b[0] - a[0])
      .slice(0, 3)
      .map(([ms, n]) => `${n} ${ms.toFixed(0)}`);
    return {
      n: v.length,
      p50: +v[v.length >> 1].toFixed(1),
      p90: +v[Math.floor(v.length * 0.9)].toFixed(1),
      max: +v[v.length - 1].toFixed(1),
      sum: +v.reduce((a, b) => a + b, 0).toFixed(0),
      worst,
    };
  };
  out.compileIn = st(ins);
  out.compileOut = st(outs);
}
console.log(JSON.stringify(out));
