// Search evaluation (issue 23): lay-phrased tasks (bench/search-tasks.json) over shared specs other
// than GitHub and Stripe, each with the tool(s) that do it; reports recall@1/@3/@5 and MRR for the
// dev and held-out splits. The search runs over every tool of the catalogue, which is what dynamic
// mode searches under a permissive policy (one that exposes every operation); a stricter policy only
// filters the same ranking.
// Usage: npm run bench:search
//        node bench/search-eval.mjs [--search <dist>/discover/search.js] [--verbose]
//        (--search /tmp/base/dist/discover/search.js measures an older build's search on the same catalogues)
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const arg = (k) => {
  const i = process.argv.indexOf(k);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const verbose = process.argv.includes('--verbose');
const dist = new URL('../dist/', import.meta.url);
const searchPath = arg('--search');
const { ToolSearch } = await import(
  searchPath ? pathToFileURL(searchPath).href : new URL('discover/search.js', dist).href
);
const { loadSpec } = await import(new URL('openapi/load.js', dist).href);
const { buildCatalog } = await import(new URL('catalog/build.js', dist).href);
const shared = fileURLToPath(new URL('../../shared/specs/', import.meta.url));
const { tasks } = JSON.parse(readFileSync(new URL('search-tasks.json', import.meta.url), 'utf8'));

const indexes = new Map();
const rows = { dev: [], heldout: [] };
const queryMs = [];
for (const t of tasks) {
  if (!indexes.has(t.spec)) {
    const cat = buildCatalog(await loadSpec(join(shared, t.spec)));
    const t0 = performance.now();
    const search = new ToolSearch(cat);
    indexes.set(t.spec, {
      names: new Set(cat.tools.map((x) => x.name)),
      search,
      tools: cat.tools.length,
      build: performance.now() - t0,
    });
  }
  const { names, search } = indexes.get(t.spec);
  for (const w of t.want) if (!names.has(w)) throw new Error(`${t.spec}: no tool ${w} (task "${t.query}")`);
  const q0 = performance.now();
  const hits = search.search(t.query, () => true, 10).map((h) => h.name);
  queryMs.push(performance.now() - q0);
  const rank = hits.findIndex((h) => t.want.includes(h)) + 1; // 0: not in the top 10
  rows[t.split].push(rank);
  if (verbose && rank !== 1)
    console.log(
      `${t.split} rank ${rank || '>10'}: "${t.query}" → ${hits.slice(0, 3).join(', ')} (want ${t.want.join('|')})`,
    );
}
const stats = (ranks) => {
  const at = (k) => ranks.filter((r) => r > 0 && r <= k).length / ranks.length;
  const mrr = ranks.reduce((s, r) => s + (r > 0 ? 1 / r : 0), 0) / ranks.length;
  return `| ${ranks.length} | ${at(1).toFixed(2)} | ${at(3).toFixed(2)} | ${at(5).toFixed(2)} | ${mrr.toFixed(2)} |`;
};
console.log(
  `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; search: ${searchPath ?? 'dist/discover/search.js'}`,
);
console.log('| split | tasks | recall@1 | recall@3 | recall@5 | MRR |');
console.log('|---|---|---|---|---|---|');
console.log(`| dev ${stats(rows.dev)}`);
console.log(`| held-out ${stats(rows.heldout)}`);
console.log(`| all ${stats([...rows.dev, ...rows.heldout])}`);
const sorted = [...queryMs].sort((a, b) => a - b);
const biggest = [...indexes.values()].sort((a, b) => b.tools - a.tools)[0];
console.log(
  `query: median ${sorted[Math.floor(sorted.length / 2)].toFixed(2)} ms, max ${sorted.at(-1).toFixed(2)} ms; ` +
    `index of the largest catalogue (${biggest.tools} tools): ${biggest.build.toFixed(0)} ms`,
);
