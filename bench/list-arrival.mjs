// How a big first `tools/list` reaches a stdio client (issue 22, target 1): a pipe takes 64 KiB at a
// time, so a 0.8 MB answer leaves in pieces as the client reads them, and whatever holds the server's
// event loop meanwhile (loading the guard stages, starting workers) holds the answer's tail. A raw
// client (initialize, then tools/list; reading as fast as the data comes) times, from the spawn, the
// answer's first byte and its last. Warm starts (one untimed start first fills the spec cache), this
// checkout and the build before alternating, each sample a fresh process.
//
//   node bench/list-arrival.mjs [reps=5] [--spec <file>] [--base <dir with dist/>]
//
// Default spec: Kubernetes (549 tools listed, 0.8 MB). A dummy credential for every security scheme
// is set, as bench/startup.mjs does, so that the list is the API's.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { takeFlag } from './lib/args.mjs';
import { serveArgs } from './lib/serve-args.mjs';
import { credentialEnv } from './lib/spec-credentials.mjs';

const argv = process.argv.slice(2);
const spec =
  takeFlag(argv, '--spec') ??
  fileURLToPath(new URL('../../shared/specs/kubernetes-swagger2.json', import.meta.url));
const base = takeFlag(argv, '--base') ?? '/tmp/base';
const REPS = Number(argv[0] ?? 5);
const builds = [
  { name: 'mcp-warden', main: fileURLToPath(new URL('../dist/cli/main.js', import.meta.url)) },
  ...(existsSync(join(base, 'dist/cli/main.js'))
    ? [{ name: 'before', main: join(base, 'dist/cli/main.js') }]
    : []),
];

/** One start: ms from spawn to the list's first byte and to its last, its size and tool count. */
function once(b, env) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, serveArgs(b.main, spec), {
      stdio: ['pipe', 'pipe', 'ignore'],
      env,
    });
    const send = (m) => child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...m })}\n`);
    let buf = '';
    let first;
    let listing = false;
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`${b.name} exited (${code}) before the list`)));
    child.stdout.on('data', (d) => {
      if (listing && first === undefined) first = performance.now() - t0;
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const m = JSON.parse(line);
        if (m.id === 1) {
          send({ method: 'notifications/initialized' });
          listing = true;
          send({ id: 2, method: 'tools/list', params: {} });
        } else if (m.id === 2) {
          const done = performance.now() - t0;
          child.removeAllListeners('exit');
          child.kill();
          resolve({ first, done, bytes: line.length, tools: m.result?.tools?.length ?? 0 });
        }
      }
    });
    send({
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 'bench', version: '1' },
      },
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cache = mkdtempSync(join(tmpdir(), 'list-arrival-'));
const env = { ...process.env, ...credentialEnv(spec), XDG_CACHE_HOME: cache, XDG_STATE_HOME: cache };
const samples = new Map(builds.map((b) => [b.name, []]));
for (const b of builds) await once(b, env); // fills each build's cache entry (and its snapshot)
await new Promise((r) => setTimeout(r, 3000)); // the snapshot workers store after the list
for (let r = 0; r < REPS; r++)
  for (const b of r % 2 ? [...builds].reverse() : builds) samples.get(b.name).push(await once(b, env));

console.log(
  `# node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.split(' ').slice(0, 2).join(' ')}, ${Math.round(totalmem() / 2 ** 30)} GiB`,
);
console.log(`# ${spec}: warm starts, ${REPS} per build, alternating; ms from spawn`);
console.log(
  '| build | tools | answer bytes | first byte ms | last byte ms | first → last ms (median, min–max) |',
);
console.log('|---|---:|---:|---:|---:|---:|');
for (const b of builds) {
  const s = samples.get(b.name);
  const gap = s.map((x) => x.done - x.first);
  console.log(
    `| ${b.name} | ${s[0].tools} | ${s[0].bytes} | ${median(s.map((x) => x.first)).toFixed(0)} | ${median(s.map((x) => x.done)).toFixed(0)} | ${median(gap).toFixed(0)} (${Math.min(...gap).toFixed(0)}–${Math.max(...gap).toFixed(0)}) |`,
  );
}
