// Child of test/server/serve-lazy.test.ts: records every module loaded (an ES module loader hook
// appending each URL to a file), starts a gateway on the shop spec with the options given as JSON in
// argv[3] (and, with `call: true`, makes one call), closes it, and prints the npm packages loaded as
// JSON on stdout (and the gateway's own modules loaded, as `src:<path>`).
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { register } from 'node:module';

const [record, optionsJson] = process.argv.slice(2) as [string, string];
writeFileSync(record, '');
const hook = `
import { appendFileSync } from 'node:fs';
let file;
export function initialize(data) { file = data.file; }
export async function load(url, context, next) {
  appendFileSync(file, url + '\\n');
  return next(url, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`, { data: { file: record } });
// Anything loaded before the hook (this file, tsx) is not the gateway's.
appendFileSync(record, '--start\n');

const { startGateway } = await import('../../../src/server/serve.js');
const { call, ...options } = JSON.parse(optionsJson);
const gw = await startGateway({ transport: { kind: 'http', port: 0 }, ...options });
// `call: true`: one tools/call (of a tool the API does not have: refused by the first stage, no network).
if (call)
  await gw.pipeline
    .call({ name: 'noSuchTool', arguments: {}, principal: { id: 'stdio:local', scopes: [], via: 'stdio' } })
    .catch(() => undefined);
await gw.close();

const packages = new Set<string>();
const lines = readFileSync(record, 'utf8').split('\n');
for (const url of lines.slice(lines.indexOf('--start') + 1)) {
  const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (m) packages.add(m[1]!);
  // The gateway's own modules too, as `src:<path below src/>`.
  const own = /\/src\/(.+\.ts)$/.exec(url);
  if (own && !url.includes('/node_modules/')) packages.add(`src:${own[1]}`);
}
process.stdout.write(`${JSON.stringify([...packages].sort())}\n`);
process.exit(0);
