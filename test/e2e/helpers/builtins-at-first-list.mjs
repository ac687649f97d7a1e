// Preloaded (NODE_OPTIONS=--import) into a gateway by test/e2e/startup.test.ts: when the first
// `tools/list` answer is written on stdout, writes the Node built-in modules loaded so far, one a
// line, to the file named by WARDEN_TEST_BUILTINS.
import { writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

const file = process.env.WARDEN_TEST_BUILTINS;
if (isMainThread && file) {
  const write = process.stdout.write;
  let done = false;
  process.stdout.write = function (chunk, ...rest) {
    if (!done && String(chunk).includes('"tools":[')) {
      done = true;
      const builtins = process.moduleLoadList
        .filter((m) => m.startsWith('NativeModule '))
        .map((m) => m.slice('NativeModule '.length));
      writeFileSync(file, builtins.join('\n'));
    }
    return write.call(this, chunk, ...rest);
  };
}
