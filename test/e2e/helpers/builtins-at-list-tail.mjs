// Preloaded (NODE_OPTIONS=--import) into a gateway by test/e2e/startup.test.ts: writes the Node
// built-in modules loaded so far, one a line, to WARDEN_TEST_TAIL once the first `tools/list` answer
// has been taken whole by stdout (its write's callback), and `started` to WARDEN_TEST_STARTED when its
// write begins; and `loaded` to WARDEN_TEST_LOADED as soon as the built-in named by WARDEN_TEST_WATCH
// is loaded. WARDEN_TEST_AFTER_CALL: the built-ins loaded, written there as each tool result is
// written to stdout (just before).
import { writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

const builtins = () =>
  process.moduleLoadList
    .filter((m) => m.startsWith('NativeModule '))
    .map((m) => m.slice('NativeModule '.length));

const tail = process.env.WARDEN_TEST_TAIL;
const started = process.env.WARDEN_TEST_STARTED;
const loaded = process.env.WARDEN_TEST_LOADED;
const watch = process.env.WARDEN_TEST_WATCH;
if (isMainThread && tail) {
  const write = process.stdout.write;
  let done = false;
  process.stdout.write = function (chunk, ...rest) {
    if (done || !String(chunk).includes('"tools":[')) return write.call(this, chunk, ...rest);
    done = true;
    if (started) writeFileSync(started, 'started');
    const i = rest.findIndex((a) => typeof a === 'function');
    const cb = i >= 0 ? rest[i] : undefined;
    const args = i >= 0 ? rest.slice(0, i) : rest;
    return write.call(this, chunk, ...args, (e) => {
      writeFileSync(tail, builtins().join('\n'));
      cb?.(e);
    });
  };
}
const afterCall = process.env.WARDEN_TEST_AFTER_CALL;
if (isMainThread && afterCall) {
  const write = process.stdout.write;
  process.stdout.write = function (chunk, ...rest) {
    // Before the result leaves: a client that has it may read the file at once.
    if (String(chunk).includes('"content":[')) writeFileSync(afterCall, builtins().join('\n'));
    return write.call(this, chunk, ...rest);
  };
}
if (isMainThread && loaded && watch) {
  const timer = setInterval(() => {
    if (!builtins().includes(watch)) return;
    clearInterval(timer);
    writeFileSync(loaded, 'loaded');
  }, 10);
  timer.unref();
}
