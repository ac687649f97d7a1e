// How much of a model's context `tools/list` costs, per serving mode, on every shared real spec
// (../shared/specs): every tool the default policy exposes (reads), the same with output schemas
// listed (the policy's `toolsList.outputSchemas: true`), every tool allowed, one toolset, and dynamic
// mode. Sizes are of the JSON `tools` array a real MCP client receives; tokens are counted with the
// o200k_base tokenizer (gpt-tokenizer), an estimate for other models. In dynamic mode it also reports
// the largest search_tools and describe_tool answers, since those reach the context too.
//
//   node bench/toolsets.mjs                        (after npm run build) every shared spec
//   node bench/toolsets.mjs --specs github,stripe  only these (names as in SPECS below)
//   node bench/toolsets.mjs --no-describe          skip the describe_tool sweep (quicker)

import { writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { countTokens as count } from 'gpt-tokenizer/encoding/o200k_base';

// Spec text is text: a literal `<|endoftext|>` (OpenAI's spec has one) counts as ordinary characters.
const countTokens = (text) => count(text, { disallowedSpecial: new Set() });

const root = new URL('..', import.meta.url).pathname;
const { startGateway } = await import(`${root}dist/server/serve.js`);
const { loadSpec } = await import(`${root}dist/openapi/load.js`);
const { buildCatalog } = await import(`${root}dist/catalog/build.js`);
const { listToolsets } = await import(`${root}dist/policy/toolsets.js`);
const { DEFAULT_POLICY } = await import(`${root}dist/policy/evaluate.js`);
const { credentialEnvVar } = await import(`${root}dist/upstream/credentials.js`);
const shared = new URL('../../shared/specs/', import.meta.url).pathname;

const args = process.argv.slice(2);
const only = args.includes('--specs') ? args[args.indexOf('--specs') + 1].split(',') : undefined;
const sweepDescribe = !args.includes('--no-describe');

const policyFile = (name, lines) => {
  const file = join(tmpdir(), `warden-bench-${name}-${process.pid}.yaml`);
  writeFileSync(file, ['version: 1', ...lines, ''].join('\n'));
  return file;
};
// The defaults with output schemas listed: what `tools/list` cost before issue 23.
const WITH_OUTPUT = policyFile('outputs', ['toolsList: { outputSchemas: true }']);
// Every tool the defaults allow, plus every write and every restricted risk: the worst case.
const ALL = policyFile('all', [
  'mode: read-write',
  'callers:',
  '  anonymous: { scopes: [tools:read, tools:write, tools:delete, tools:admin], reason: a local benchmark of every tool }',
  'rules:',
  '  - match: { name: "*" }',
  '    enabled: true',
  '    allowRisk: [admin, credential, raw-query, bulk-export]',
  '    reason: benchmark of the largest possible tools/list',
]);

// `toolset`: the one served in the "one toolset" row (absent: the spec's largest by exposed tools).
const SPECS = [
  { name: 'github', file: 'github-rest.json', toolset: 'pulls', search: 'list open pull requests' },
  { name: 'stripe', file: 'stripe.yaml', toolset: 'customers', search: 'create a customer' },
  { name: 'kubernetes', file: 'kubernetes-swagger2.json', search: 'list pods' },
  {
    name: 'digitalocean',
    file: 'digitalocean/specification/DigitalOcean-public.v2.yaml',
    toolset: 'droplets',
    search: 'list my servers',
  },
  { name: 'openai', file: 'openai.yaml', search: 'list models' },
  { name: 'slack', file: 'slack-web.json', search: 'send a message' },
  { name: 'asana', file: 'asana.yaml', toolset: 'tasks', search: 'list my tasks' },
  {
    name: 'azure-storage',
    file: 'azure-storage-arm-2015-05-01-preview.json',
    search: 'list storage accounts',
  },
  { name: 'petstore-swagger-api', file: 'petstore-v3-swagger-api.yaml', search: 'find pets by status' },
  { name: 'petstore-v3', file: 'petstore-v3.yaml', search: 'list pets' },
  { name: 'petstore-expanded', file: 'petstore-expanded-v3.yaml', search: 'list pets' },
  { name: 'uspto', file: 'uspto-v3.yaml', search: 'search data sets' },
  { name: 'callback', file: 'callback-example-v3.yaml', search: 'subscribe' },
  { name: 'link', file: 'link-example-v3.yaml', search: 'get a user' },
  { name: 'petstore-swagger2', file: 'petstore-swagger2.json', search: 'list pets' },
  {
    name: 'petstore-separate',
    file: 'petstore-separate-swagger2/spec/swagger.yaml',
    refRoot: 'petstore-separate-swagger2',
    search: 'list pets',
  },
].filter((s) => !only || only.includes(s.name));

/** The spec's catalogue: its largest toolset (by default-exposed tools), and a placeholder credential for each of its schemes. */
async function survey(s) {
  const spec = await loadSpec(join(shared, s.file), s.refRoot ? { refRoot: join(shared, s.refRoot) } : {});
  const catalog = buildCatalog(spec);
  const sets = listToolsets(catalog, DEFAULT_POLICY);
  // The largest by what the default policy exposes of it (an admin tag of writes lists nothing).
  const exposed = new Set(catalog.tools.filter((t) => t.exposure.exposed).map((t) => t.name));
  const size = (set) => set.tools.filter((n) => exposed.has(n)).length;
  sets.sort((a, b) => size(b) - size(a) || (a.name < b.name ? -1 : 1));
  // Operations with a security scheme need a credential to be exposed at all (values never leave:
  // there is no upstream).
  const env = {};
  for (const t of catalog.tools)
    for (const alt of t.auth.alternatives)
      for (const r of alt) env[credentialEnvVar(r.scheme)] = 'bench:placeholder';
  return { largest: sets[0]?.name, env };
}

const modes = (toolset) => [
  { key: 'default', mode: 'default (reads exposed)', opts: {} },
  { key: 'outputs', mode: 'default, output schemas listed', opts: { policy: WITH_OUTPUT } },
  { key: 'all', mode: 'every tool allowed', opts: { policy: ALL } },
  ...(toolset ? [{ key: 'toolset', mode: `--toolsets ${toolset}`, opts: { toolsets: [toolset] } }] : []),
  { key: 'dynamic', mode: '--dynamic, every tool allowed', opts: { dynamic: true, policy: ALL } },
];

const rows = [];
for (const s of SPECS) {
  const { largest, env } = await survey(s);
  const toolset = s.toolset ?? largest;
  for (const m of modes(toolset)) {
    const gw = await startGateway({
      spec: join(shared, s.file),
      baseUrl: 'http://127.0.0.1:9',
      auditFile: join(tmpdir(), `warden-bench-toolsets-${process.pid}.jsonl`),
      transport: { kind: 'http', port: 0 },
      logLevel: 'error',
      watchPolicy: false,
      env,
      ...(s.refRoot ? { load: { refRoot: join(shared, s.refRoot) } } : {}),
      ...m.opts,
    });
    const client = new Client({ name: 'bench', version: '1' }, { versionNegotiation: { mode: 'legacy' } });
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.url)));
    const { tools } = await client.listTools();
    const text = JSON.stringify(tools);
    const row = {
      spec: s.name,
      key: m.key,
      mode: m.mode,
      tools: tools.length,
      bytes: Buffer.byteLength(text),
      tokens: countTokens(text),
    };
    if (m.opts.dynamic) {
      const t0 = performance.now();
      const found = await client.callTool({
        name: 'search_tools',
        arguments: { query: s.search, limit: 20 },
      });
      row.searchMs = Math.round((performance.now() - t0) * 10) / 10;
      row.search20Tokens = countTokens(JSON.stringify(found.content));
      if (sweepDescribe) {
        // The largest describe_tool answer over every tool this caller may see.
        let worst = { name: '', tokens: 0 };
        for (const e of gw.controller
          .view()
          .listFor(['tools:read', 'tools:write', 'tools:delete', 'tools:admin'])) {
          const d = await client.callTool({ name: 'describe_tool', arguments: { name: e.name } });
          const n = countTokens(JSON.stringify(d.content));
          if (n > worst.tokens) worst = { name: e.name, tokens: n };
        }
        row.largestDescribe = `${worst.name} (${worst.tokens} tokens)`;
      }
    }
    rows.push(row);
    console.log(JSON.stringify(row));
    await client.close();
    await gw.close();
  }
}

const perTool = (r) => (r.tools ? Math.round(r.tokens / r.tools) : 0);
const fmt = (n) => n.toLocaleString('en');
console.log(
  `\nnode ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
);
console.log(
  '| spec | default: tools | tokens | per tool | output schemas listed: per tool | every tool: tools | tokens | per tool | one toolset | tools | tokens | dynamic: tools/list | largest describe_tool |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|');
const total = { tools: 0, tokens: 0, allTools: 0, allTokens: 0, outTokens: 0 };
for (const s of SPECS) {
  const r = Object.fromEntries(rows.filter((x) => x.spec === s.name).map((x) => [x.key, x]));
  const d = r.default;
  const t = r.toolset;
  total.tools += d.tools;
  total.tokens += d.tokens;
  total.outTokens += r.outputs.tokens;
  total.allTools += r.all.tools;
  total.allTokens += r.all.tokens;
  console.log(
    `| ${s.name} | ${fmt(d.tools)} | ${fmt(d.tokens)} | ${perTool(d)} | ${perTool(r.outputs)} | ${fmt(r.all.tools)} | ${fmt(r.all.tokens)} | ${perTool(r.all)} | ${t ? t.mode.replace('--toolsets ', '') : '—'} | ${t ? fmt(t.tools) : '—'} | ${t ? fmt(t.tokens) : '—'} | ${fmt(r.dynamic.tokens)} | ${r.dynamic.largestDescribe ?? '—'} |`,
  );
}
console.log(
  `\nDefault mode over ${SPECS.length} specs: ${fmt(total.tools)} tools, ${fmt(total.tokens)} tokens, ` +
    `${(total.tokens / total.tools).toFixed(0)} tokens per tool (output schemas listed: ` +
    `${(total.outTokens / total.tools).toFixed(0)}); every tool allowed: ${(total.allTokens / total.allTools).toFixed(0)} per tool.`,
);
