// What a client pinned to protocol 2026-07-28 waits for on a first start: the v2 SDK client runs its
// version probe (`server/discover`) on a disposable sibling process spawned with the same parameters,
// then spawns the server it keeps. Prints the time connect() took (the probe's process included), when
// the kept server was spawned, and the first tools/list from that spawn and from connect(). A fresh
// spec cache per run unless one is given (so both processes of a run load the spec cold, or the kept
// one hits what the probe's stored).
//
//   node bench/probe-start.mjs <dist/cli/main.js> <spec> [cacheDir]
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

const [main, spec, cacheDir] = process.argv.slice(2);
const transport = new StdioClientTransport({
  command: process.execPath,
  args: [
    main,
    'serve',
    '--stdio',
    '--spec',
    spec,
    '--base-url',
    'http://127.0.0.1:9',
    '--log-level',
    'error',
  ],
  env: { ...process.env, MCP_WARDEN_CACHE_DIR: cacheDir ?? mkdtempSync(join(tmpdir(), 'warden-probe-')) },
  stderr: 'pipe',
});
const client = new Client(
  { name: 'p', version: '1' },
  { versionNegotiation: { mode: { pin: '2026-07-28' } } },
);
let tSpawn;
const start = transport.start.bind(transport);
transport.start = () => {
  tSpawn = performance.now();
  return start();
};
const t0 = performance.now();
await client.connect(transport, { timeout: 600000 });
const tc = performance.now();
const r = await client.listTools({}, { timeout: 600000 }).catch((e) => ({ tools: [], e }));
const t1 = performance.now();
console.log(
  JSON.stringify({
    connectMs: Math.round(tc - t0),
    spawnAt: Math.round(tSpawn - t0),
    listFromSpawn: Math.round(t1 - tSpawn),
    listFromConnect: Math.round(t1 - t0),
    tools: r.tools.length,
  }),
);
await client.close();
