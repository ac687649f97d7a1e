// A child process that appends audit records through the real writer, one per `write <n>` line on
// stdin, and answers each with `{"n":…,"ok":true}` or `{"n":…,"ok":false,"code":…}` on stdout.
// full-disk.test.ts runs it under a file-size limit (prlimit --fsize), which applies to a process.
import { createInterface } from 'node:readline';
import { openJsonlAudit } from '../../../src/audit/jsonl.js';
import { WardenError } from '../../../src/errors/index.js';

const [file, key] = process.argv.slice(2);
const sink = openJsonlAudit(file!, {
  checkpointEvery: 7,
  fsync: 'always',
  ...(key ? { signingKey: Buffer.from(key) } : {}),
});
const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, arg] = line.split(' ');
  if (cmd === 'close') break;
  const n = Number(arg);
  try {
    sink.write({
      kind: 'call',
      time: new Date().toISOString(),
      id: `fsize-${n}`,
      tool: 'getOrder',
      decision: 'allowed',
      outcome: 'ok',
      principal: 'alice',
      args: { pad: 'x'.repeat(150) },
      ms: 1,
    });
    say({ n, ok: true });
  } catch (e) {
    say({ n, ok: false, code: e instanceof WardenError ? e.code : String(e) });
  }
}
await sink.close();
say({ closed: true });
process.stdin.destroy(); // nothing more to read: let the process end
