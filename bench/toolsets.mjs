// How much of a model's context `tools/list` costs, per serving mode, on large real specs (GitHub,
// Stripe): every tool the default policy exposes, the same with every tool allowed, one or two
// toolsets, and dynamic mode. Sizes are of the JSON `tools` array a real MCP client receives;
// tokens are counted with the o200k_base tokenizer (gpt-tokenizer), an estimate for other models.
// In dynamic mode it also reports the largest search_tools and describe_tool answers, since those
// reach the context too.
//
//   node bench/toolsets.mjs            (after npm run build)

import { writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';

const root = new URL('..', import.meta.url).pathname;
const { startGateway } = await import(`${root}dist/server/serve.js`);
const shared = new URL('../../shared/specs/', import.meta.url).pathname;

// Every tool the defaults allow, plus every write and every restricted risk: the worst case.
const ALL = join(tmpdir(), 'warden-bench-all.yaml');
writeFileSync(
  ALL,
  [
    'version: 1',
    'mode: read-write',
    'callers:',
    '  anonymous: { scopes: [tools:read, tools:write, tools:delete, tools:admin], reason: benchmark }',
    'rules:',
    '  - match: { name: "*" }',
    '    enabled: true',
    '    allowRisk: [admin, credential, raw-query, bulk-export]',
    '    reason: benchmark of the largest possible tools/list',
    '',
  ].join('\n'),
);

const SPECS = [
  {
    name: 'GitHub',
    file: `${shared}github-rest.json`,
    toolsets: ['pulls', 'pulls,issues'],
    search: 'list open pull requests',
  },
  {
    name: 'Stripe',
    file: `${shared}stripe.yaml`,
    toolsets: ['customers', 'customers,invoices'],
    search: 'create a customer',
  },
];

const modes = (s) => [
  { mode: 'all exposed by default (reads)', opts: {} },
  { mode: 'every tool allowed', opts: { policy: ALL } },
  ...s.toolsets.map((t) => ({ mode: `--toolsets ${t}`, opts: { toolsets: t.split(',') } })),
  { mode: '--dynamic', opts: { dynamic: true } },
  { mode: '--dynamic, every tool allowed', opts: { dynamic: true, policy: ALL } },
];

const rows = [];
for (const s of SPECS) {
  for (const m of modes(s)) {
    const gw = await startGateway({
      spec: s.file,
      baseUrl: 'http://127.0.0.1:9',
      auditFile: join(tmpdir(), `warden-bench-toolsets-${process.pid}.jsonl`),
      transport: { kind: 'http', port: 0 },
      logLevel: 'error',
      watchPolicy: false,
      // Stripe's operations need a credential to be exposed at all (values never leave: no upstream).
      env: { MCP_WARDEN_CRED_BASICAUTH: 'sk_test_bench:', MCP_WARDEN_CRED_BEARERAUTH: 'sk_test_bench' },
      ...m.opts,
    });
    const client = new Client({ name: 'bench', version: '1' }, { versionNegotiation: { mode: 'legacy' } });
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.url)));
    const { tools } = await client.listTools();
    const text = JSON.stringify(tools);
    const row = {
      spec: s.name,
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
    rows.push(row);
    console.log(JSON.stringify(row));
    await client.close();
    await gw.close();
  }
}

console.log(
  `\nnode ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
);
console.log('| spec | mode | tools | bytes | tokens (o200k) |');
console.log('|---|---|---:|---:|---:|');
for (const r of rows)
  console.log(
    `| ${r.spec} | ${r.mode} | ${r.tools} | ${r.bytes.toLocaleString('en')} | ${r.tokens.toLocaleString('en')} |`,
  );
