import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleOf } from '../../src/catalog/example.js';
import type { JsonSchemaObject } from '../../src/model/json-schema.js';
import { type Era, startTestGateway, textOf } from '../support/gateway.js';
import { SHARED_SPECS, startUpstream } from '../support/helpers.js';

/**
 * Issue 23: every tool stays callable from what `tools/list` shows of it. For every shared spec, a
 * real MCP client lists the tools, builds minimal valid arguments from each LISTED input schema
 * (the trimmed one a model reads, not the gateway's full one) and calls the tool; the call must
 * reach a local echo upstream, not stop at validation. Writes are enabled; a confirmed tool goes
 * through its confirmed path (the agent's two-step token). A deterministic sample keeps it quick.
 */
const SAMPLE = 24;

const SPECS: Array<{ file: string; refRoot?: string; era: Era }> = [
  { file: 'github-rest.json', era: 'legacy' },
  { file: 'stripe.yaml', era: { pin: '2026-07-28' } },
  { file: 'kubernetes-swagger2.json', era: 'legacy' },
  { file: 'digitalocean/specification/DigitalOcean-public.v2.yaml', era: { pin: '2026-07-28' } },
  { file: 'openai.yaml', era: 'legacy' },
  { file: 'slack-web.json', era: { pin: '2026-07-28' } },
  { file: 'asana.yaml', era: 'legacy' },
  { file: 'azure-storage-arm-2015-05-01-preview.json', era: { pin: '2026-07-28' } },
  { file: 'petstore-v3-swagger-api.yaml', era: 'legacy' },
  { file: 'petstore-v3.yaml', era: { pin: '2026-07-28' } },
  { file: 'petstore-expanded-v3.yaml', era: 'legacy' },
  { file: 'uspto-v3.yaml', era: { pin: '2026-07-28' } },
  { file: 'callback-example-v3.yaml', era: 'legacy' },
  { file: 'link-example-v3.yaml', era: { pin: '2026-07-28' } },
  { file: 'petstore-swagger2.json', era: 'legacy' },
  {
    file: 'petstore-separate-swagger2/spec/swagger.yaml',
    refRoot: 'petstore-separate-swagger2',
    era: { pin: '2026-07-28' },
  },
];

// Every tool exposed, writes and restricted risks included; a confirmed call uses the agent's token.
const POLICY = `version: 1
mode: read-write
callers:
  anonymous: { scopes: [tools:read, tools:write, tools:delete, tools:admin], reason: a local test of every tool }
rules:
  - match: { name: "*" }
    enabled: true
    allowRisk: [admin, credential, raw-query, bulk-export]
    approval: agent
    reason: every tool must be callable from its listed schema
`;

/**
 * A placeholder credential for whatever scheme a spec declares (a secured tool is exposed only with
 * one); HTTP basic schemes need the user:password form. Nothing leaves but to the local echo.
 */
const PLACEHOLDER_CREDENTIALS: NodeJS.ProcessEnv = new Proxy(
  {},
  {
    get: (_t, k) =>
      typeof k === 'string' && k.startsWith('MCP_WARDEN_CRED_') ? 'test:placeholder' : undefined,
  },
);

/** `n` names spread evenly over the sorted list: the same sample on every run. */
function sample<T>(items: T[], n: number): T[] {
  if (items.length <= n) return items;
  return Array.from({ length: n }, (_, i) => items[Math.floor((i * items.length) / n)]!);
}

let confirmedCalls = 0;
let specsDone = 0;

describe('every listed tool is callable from its listed input schema (shared specs)', () => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  beforeAll(async () => {
    upstream = await startUpstream((_r, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  afterAll(() => upstream?.close());

  for (const s of SPECS) {
    it(`${s.file}: the sampled tools reach the upstream`, { timeout: 400_000 }, async () => {
      const load = s.refRoot ? { refRoot: join(SHARED_SPECS, s.refRoot) } : {};
      const fx = await startTestGateway({
        spec: join(SHARED_SPECS, s.file),
        baseUrl: upstream.origin,
        policy: POLICY,
        env: PLACEHOLDER_CREDENTIALS,
        serve: { load, watchPolicy: false, timeoutMs: 30_000 },
      });
      try {
        const client = await fx.connect({ era: s.era });
        const { tools } = await client.listTools();
        expect(tools.length).toBeGreaterThan(0);
        const names = tools.map((t) => t.name).sort();
        const picked = sample(names, SAMPLE);
        expect(picked).toHaveLength(Math.min(SAMPLE, tools.length));
        const byName = new Map(tools.map((t) => [t.name, t]));
        const failures: string[] = [];
        let confirmed = 0;
        for (const name of picked) {
          const schema = byName.get(name)!.inputSchema as JsonSchemaObject;
          const example = exampleOf(schema, schema);
          if (!example) {
            failures.push(`${name}: no example can be built from the listed schema`);
            continue;
          }
          const args = example.value as Record<string, unknown>;
          const before = upstream.requests.length;
          let r = await client.callTool({ name, arguments: args });
          const token = /mcp_warden_confirmation: (\S+)/.exec(textOf(r))?.[1];
          if (token && upstream.requests.length === before) {
            confirmed++;
            r = await client.callTool({ name, arguments: { ...args, mcp_warden_confirmation: token } });
          }
          if (upstream.requests.length !== before + 1)
            failures.push(`${name} ${JSON.stringify(args).slice(0, 200)}: ${textOf(r).slice(0, 300)}`);
        }
        expect(failures).toEqual([]);
        confirmedCalls += confirmed;
        specsDone++;
      } finally {
        await fx.close();
      }
    });
  }

  it('sampled every spec, destructive tools through their confirmed path', () => {
    expect(specsDone).toBe(SPECS.length);
    expect(confirmedCalls).toBeGreaterThan(0);
  });
});
