/**
 * The house rules: the folders of src/ from the ground floor up. A module may import its own folder
 * and any folder BELOW it, never one above: data flows up from the spec to the surfaces, and a lower
 * floor can be read, tested and changed without the ones above. docs/architecture.md explains each
 * floor (a test checks it lists the same order). `npm run lint` runs this check.
 */
const LAYERS = [
  'model', // shared types and the smallest pure helpers on them; imports nothing of the project
  'errors', // the error code table and one mapper per surface
  'lib', // small utilities: canonical JSON, linear-time regexps, listening, secret references, the HTTP agent
  'openapi', // reading and checking a spec: files, URLs, $refs, Swagger 2.0 conversion
  'classify', // risk, data classes and upstream auth of operations and fields
  'catalog', // operations become tools: names, schemas, descriptions
  'protect', // detection by value, masking by schema, caps: the one redactor
  'policy', // the policy file and its evaluation per tool
  'report', // scan reports (table, JSON, SARIF)
  'state', // runtime switches: in memory or shared (Redis)
  'upstream', // base URLs and upstream credentials
  'audit', // the audit trail: JSONL chain, database mirror, reading and verifying
  'control', // what is served right now: policy + toggles + kill switch + pins
  'pipeline', // the guard pipeline, one stage per file
  'observe', // logs, metrics, series, alerts
  'discover', // dynamic mode: search, describe, call
  'admin', // the admin port: API and dashboard
  'server', // the MCP surfaces (stdio, Streamable HTTP, callers) and start-up wiring
  'cli', // the command line
];

const folder = (name) => `^src/${name}/`;

module.exports = {
  forbidden: [
    ...LAYERS.map((layer, i) => ({
      name: `layer-${layer}`,
      comment: `src/${layer}/ may import only ${LAYERS.slice(0, i).join(', ') || 'nothing of the project'} (below it)`,
      severity: 'error',
      from: { path: folder(layer) },
      to: { path: `^src/(${LAYERS.slice(i + 1).join('|')})/` },
    })),
    {
      name: 'model-imports-nothing',
      comment: 'src/model/ is the ground floor: types every layer shares, importing nothing of the project',
      severity: 'error',
      from: { path: folder('model') },
      to: { path: '^src/', pathNot: folder('model') },
    },
    {
      name: 'unlisted-folder',
      comment: 'every folder of src/ has a place in LAYERS (.dependency-cruiser.cjs and docs/architecture.md)',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: `^src/(?!(?:${LAYERS.join('|')})/)[^/]+/` },
    },
    {
      name: 'no-circular',
      comment: 'no import cycle, even inside one folder',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|generated|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
