// Large responses (issue 22, target 4): what masking and redaction cost per KiB of a PII-dense
// ~900 KiB JSON page, end to end, against the bare floor and the peer in the same run.
//
//   node bench/large-response.mjs [rounds=6] [callsPerRound=10] [--items 2000] [--base /tmp/base]
//                                 [--profile <dir>] [--only <name,…>] [--json <file>]
//
// One upstream (node:http, in its own process) answers GET /v1/products/search with the same page
// every time: `items` customers (2,200 ≈ 900 KiB), each with a name, an e-mail address, a phone
// number, a date of birth, a postal address, an IP address and free-text notes that carry more
// e-mail addresses and phone numbers (found by value, not by field name). Every server is called
// through its own stdio SDK client, sequentially; rounds interleave the servers so drift on a shared
// machine hits them all alike. Per server: p50 wall time of a call, and the server process's CPU per
// call (utime+stime from /proc/<pid>/stat). "µs/KiB over floor" = (server − floor) / page KiB.
//
// mcp-warden runs twice: with the default result limits (100 items, 128 KiB: the page is cut, and
// what is cut need not be masked) and with the limits lifted (maxItems 100000, maxResultBytes 16 MiB:
// the whole page is masked, redacted and returned, like the floor and the peer return it). `--base
// <dir>` adds the same two rows for another build (a checkout with dist/, e.g. /tmp/base) as "before".
// `--profile <dir>` runs the mcp-warden processes under `node --cpu-prof` (profiles land in <dir>).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus, totalmem } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { Pool } from 'undici';

const root = new URL('..', import.meta.url).pathname;
const KEY = 'bench-large-key-0123456789';
const TICK_US = 10_000; // USER_HZ = 100 on Linux

// --- upstream mode: `node bench/large-response.mjs --upstream <items>` --------------------------------
if (process.argv[2] === '--upstream') {
  const body = Buffer.from(JSON.stringify(page(Number(process.argv[3]))));
  const server = createServer((req, res) => {
    req.resume();
    if (req.headers['x-shop-key'] !== KEY) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"key"}');
      return;
    }
    if (!req.url?.startsWith('/v1/products/search')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () =>
    process.stderr.write(`upstream at ${server.address().port} bytes ${body.length}\n`),
  );
} else if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await main();
}

/** The page: `n` PII-dense customers (exported for in-process measurements). */
export function page(n) {
  const FIRST = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Radia', 'Tim'];
  const LAST = [
    'Lovelace',
    'Hopper',
    'Turing',
    'Dijkstra',
    'Liskov',
    'Knuth',
    'Allen',
    'Thompson',
    'Perlman',
  ];
  const CITIES = ['London', 'Paris', 'Berlin', 'Madrid', 'Rome', 'Lisbon', 'Dublin', 'Vienna'];
  const data = [];
  for (let i = 0; i < n; i++) {
    const first = FIRST[i % FIRST.length];
    const last = LAST[(i * 7) % LAST.length];
    const mail = `${first}.${last}${i}`.toLowerCase();
    data.push({
      id: `cus_${String(100000 + i)}`,
      name: `${first} ${last}`,
      email: `${mail}@example.org`,
      phone: `+1-415-555-${String(1000 + (i % 9000)).padStart(4, '0')}`,
      dateOfBirth: `19${50 + (i % 50)}-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')}`,
      address: {
        line1: `${1 + (i % 200)} ${LAST[i % LAST.length]} Street`,
        city: CITIES[i % CITIES.length],
        postalCode: `${10000 + ((i * 37) % 89999)}`,
        country: 'GB',
      },
      ipAddress: `203.0.${i % 256}.${(i * 13) % 256}`,
      tier: ['bronze', 'silver', 'gold'][i % 3],
      notes: `Asked to be reached at ${mail}@mail.example.net or +1 415 555 ${String(2000 + (i % 7000)).padStart(4, '0')}; prefers e-mail after 5pm.`,
      createdAt: new Date(Date.UTC(2025, i % 12, 1 + (i % 28))).toISOString(),
    });
  }
  return { data, has_more: true };
}

/** The upstream's OpenAPI document. */
export function spec() {
  return {
    openapi: '3.0.3',
    info: { title: 'Large page bench', version: '1.0.0' },
    servers: [{ url: 'http://127.0.0.1/v1' }],
    security: [{ shopKey: [] }],
    paths: {
      '/products/search': {
        get: {
          operationId: 'searchProducts',
          summary: 'Search customers (a large page)',
          parameters: [{ name: 'q', in: 'query', required: true, schema: { type: 'string' } }],
          responses: {
            200: {
              description: 'A page of customers.',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    properties: {
                      data: { type: 'array', items: { $ref: '#/components/schemas/Customer' } },
                      has_more: { type: 'boolean' },
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
    components: {
      securitySchemes: { shopKey: { type: 'apiKey', in: 'header', name: 'X-Shop-Key' } },
      schemas: {
        Customer: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            name: { type: 'string' },
            email: { type: 'string', format: 'email' },
            phone: { type: 'string' },
            dateOfBirth: { type: 'string', format: 'date' },
            address: {
              type: 'object',
              properties: {
                line1: { type: 'string' },
                city: { type: 'string' },
                postalCode: { type: 'string' },
                country: { type: 'string' },
              },
            },
            ipAddress: { type: 'string' },
            tier: { type: 'string', enum: ['bronze', 'silver', 'gold'] },
            notes: { type: 'string' },
            createdAt: { type: 'string', format: 'date-time' },
          },
        },
      },
    },
  };
}

function cpuTicks(pid) {
  // Fields 14 and 15 (utime, stime) of /proc/<pid>/stat, after the ")" that ends the command name.
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

async function main() {
  const args = process.argv.slice(2);
  const opt = (name) => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const v = args[i + 1];
    args.splice(i, 2);
    return v;
  };
  const ITEMS = Number(opt('--items') ?? 2200);
  const BASE = opt('--base');
  const PROFILE = opt('--profile');
  const ONLY = opt('--only')?.split(',');
  const JSON_OUT = opt('--json');
  const ROUNDS = Number(args[0] ?? 6);
  const CALLS = Number(args[1] ?? 10);
  const children = [];

  try {
    const up = spawn(process.execPath, [new URL(import.meta.url).pathname, '--upstream', String(ITEMS)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(up);
    const [upPort, pageBytes] = await new Promise((resolve, reject) => {
      let err = '';
      up.stderr.on('data', (d) => {
        err += d;
        const m = /upstream at (\d+) bytes (\d+)/.exec(err);
        if (m) resolve([Number(m[1]), Number(m[2])]);
      });
      up.on('exit', (c) => reject(new Error(`upstream exited ${c}: ${err}`)));
    });
    const KIB = pageBytes / 1024;
    const upstream = `http://127.0.0.1:${upPort}/v1`;
    const dir = `/tmp/warden-bench-large-${process.pid}`;
    mkdirSync(dir, { recursive: true });
    const SPEC = `${dir}/spec.json`;
    writeFileSync(SPEC, JSON.stringify(spec()));
    const rate =
      'rateLimit: { perToolPrincipal: { calls: 1000000, perSeconds: 60 }, perPrincipal: { calls: 1000000, perSeconds: 60 } }\n';
    writeFileSync(`${dir}/default.yaml`, `version: 1\n${rate}defaults: { concurrency: 1000 }\n`);
    writeFileSync(
      `${dir}/lifted.yaml`,
      `version: 1\n${rate}defaults: { concurrency: 1000, maxItems: 100000, maxResultBytes: 16777216 }\n`,
    );
    if (PROFILE) mkdirSync(PROFILE, { recursive: true });

    const warden = (label, dist, policy) => ({
      label,
      era: { pin: '2026-07-28' },
      env: { MCP_WARDEN_CRED_SHOPKEY: KEY },
      node: PROFILE
        ? [
            '--cpu-prof',
            `--cpu-prof-dir=${PROFILE}`,
            `--cpu-prof-name=${label.replace(/\W+/g, '_')}.cpuprofile`,
          ]
        : [],
      cmd: `${dist}/dist/cli/main.js`,
      args: [
        'serve',
        '--stdio',
        '--spec',
        SPEC,
        '--base-url',
        upstream,
        '--audit-file',
        `${dir}/${label.replace(/\W+/g, '_')}.jsonl`,
        '--policy',
        `${dir}/${policy}.yaml`,
        '--log-level',
        'warn',
      ],
    });
    let servers = [
      {
        label: 'floor (bare SDK)',
        era: { pin: '2026-07-28' },
        cmd: `${root}bench/floor-server.mjs`,
        args: ['stdio', upstream, KEY],
      },
      warden('mcp-warden, default limits', root, 'default'),
      warden('mcp-warden, limits lifted', root, 'lifted'),
      ...(BASE
        ? [warden('before: default limits', BASE, 'default'), warden('before: limits lifted', BASE, 'lifted')]
        : []),
      {
        label: '@ivotoby/openapi-mcp-server',
        era: 'legacy',
        cmd: `${root}node_modules/@ivotoby/openapi-mcp-server/bin/mcp-server.js`,
        args: [
          '--transport',
          'stdio',
          '--api-base-url',
          upstream,
          '--openapi-spec',
          SPEC,
          '--headers',
          `X-Shop-Key:${KEY}`,
        ],
      },
    ];
    if (ONLY)
      servers = servers.filter(
        (s) => s.label === 'floor (bare SDK)' || ONLY.some((o) => s.label.includes(o)),
      );

    // Direct: the upstream alone, for reference.
    const pool = new Pool(`http://127.0.0.1:${upPort}`, { connections: 1 });
    const direct = async () => {
      const r = await pool.request({
        path: '/v1/products/search?q=a',
        method: 'GET',
        headers: { 'x-shop-key': KEY },
      });
      await r.body.arrayBuffer();
    };

    for (const s of servers) {
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: [...(s.node ?? []), s.cmd, ...s.args],
        env: { ...process.env, ...(s.env ?? {}) },
        stderr: 'ignore',
        maxBufferSize: 64 * 1024 * 1024,
      });
      const c = new Client({ name: 'bench', version: '1' }, { versionNegotiation: { mode: s.era } });
      await c.connect(transport);
      const tools = (await c.listTools()).tools;
      const tool = tools.find((t) => /search/i.test(t.name))?.name;
      if (!tool) throw new Error(`${s.label}: no search tool in ${tools.map((t) => t.name)}`);
      s.client = c;
      s.pid = transport.pid;
      s.call = async () => {
        const r = await c.callTool({ name: tool, arguments: { q: 'a' } }, { timeout: 120_000 });
        if (r.isError) throw new Error(`${s.label}: ${JSON.stringify(r).slice(0, 300)}`);
        return r;
      };
      // Warm-up, and one look at the answer: masked where it should be.
      const first = await s.call();
      const text = first.content.map((x) => x.text ?? '').join('\n');
      s.answerKiB = Buffer.byteLength(JSON.stringify(first)) / 1024;
      s.leaks = text.includes('ada.lovelace0@example.org') || text.includes('@mail.example.net');
      for (let i = 0; i < 2; i++) await s.call();
      s.ms = [];
      s.cpuUs = 0;
      s.calls = 0;
    }
    for (let i = 0; i < 5; i++) await direct();
    const directMs = [];

    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < CALLS; i++) {
        const t0 = performance.now();
        await direct();
        directMs.push(performance.now() - t0);
      }
      for (const s of r % 2 ? [...servers].reverse() : servers) {
        const c0 = cpuTicks(s.pid);
        for (let i = 0; i < CALLS; i++) {
          const t0 = performance.now();
          await s.call();
          s.ms.push(performance.now() - t0);
        }
        s.cpuUs += (cpuTicks(s.pid) - c0) * TICK_US;
        s.calls += CALLS;
      }
      process.stderr.write(`round ${r + 1}/${ROUNDS}\n`);
    }
    const p50 = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
    const floor = servers[0];
    const floorP50 = p50(floor.ms);
    const floorCpu = floor.cpuUs / floor.calls;
    const rows = servers.map((s) => {
      const ms = p50(s.ms);
      const cpu = s.cpuUs / s.calls;
      return {
        server: s.label,
        p50ms: ms,
        cpuUsPerCall: cpu,
        overFloorUsPerKiB: ((ms - floorP50) * 1000) / KIB,
        cpuOverFloorUsPerKiB: (cpu - floorCpu) / KIB,
        answerKiB: s.answerKiB,
        plaintextPII: s.leaks,
      };
    });
    console.log(
      `# node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB; page ${KIB.toFixed(0)} KiB (${ITEMS} customers), stdio, ${ROUNDS} rounds × ${CALLS} calls, direct upstream p50 ${p50(directMs).toFixed(2)} ms`,
    );
    console.log(
      '| server | p50 ms | µs/KiB over floor (wall) | server CPU ms/call | µs/KiB over floor (CPU) | answer KiB | plain-text PII in answer |',
    );
    console.log('|---|---:|---:|---:|---:|---:|---|');
    for (const r of rows)
      console.log(
        `| ${r.server} | ${r.p50ms.toFixed(1)} | ${r === rows[0] ? '—' : r.overFloorUsPerKiB.toFixed(1)} | ${(r.cpuUsPerCall / 1000).toFixed(1)} | ${r === rows[0] ? '—' : r.cpuOverFloorUsPerKiB.toFixed(1)} | ${r.answerKiB.toFixed(0)} | ${r.plaintextPII ? 'yes' : 'no'} |`,
      );
    if (JSON_OUT) {
      mkdirSync(new URL('.', `file://${JSON_OUT}`).pathname, { recursive: true });
      writeFileSync(
        JSON_OUT,
        JSON.stringify({ date: new Date().toISOString(), pageKiB: KIB, items: ITEMS, rows }, null, 2),
      );
    }
    await pool.close();
    for (const s of servers) await s.client.close();
  } finally {
    for (const c of children) c.kill();
  }
  process.exit(0);
}
