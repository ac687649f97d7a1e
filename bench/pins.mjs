// Cost of hashing tool definitions for pins (start-up does it at least twice), on Stripe's spec:
// one canonical text per tool (how it was) against the Merkle digest (how it is).
//
//   node bench/pins.mjs      (after npm run build)
import { createHash } from 'node:crypto';

const root = new URL('..', import.meta.url).pathname;
const { loadSpec } = await import(`${root}dist/openapi/load.js`);
const { buildCatalog } = await import(`${root}dist/catalog/build.js`);
const { canonicalJson } = await import(`${root}dist/lib/canonical.js`);
const { definitionHash } = await import(`${root}dist/control/pins.js`);

const cat = buildCatalog(await loadSpec(new URL('../../shared/specs/stripe.yaml', import.meta.url).pathname));
const defOf = (t) => ({
  name: t.name,
  title: t.title,
  description: t.description,
  inputSchema: t.inputSchema,
  outputSchema: t.outputSchema,
  annotations: t.annotations,
  method: t.source.method,
  path: t.source.path,
  servers: t.source.servers,
  bindings: t.bindings,
  risk: t.risk.classes,
  auth: t.auth,
});
let t = performance.now();
for (const x of cat.tools)
  createHash('sha256')
    .update(canonicalJson(defOf(x)))
    .digest('hex');
console.log(
  `one canonical text per tool (before): ${Math.round(performance.now() - t)} ms for ${cat.tools.length} tools`,
);
t = performance.now();
for (const x of cat.tools) definitionHash(x);
console.log(`Merkle digest (now): ${Math.round(performance.now() - t)} ms`);
