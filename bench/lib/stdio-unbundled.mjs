// mcp-warden's stdio server from a build's tsc output (dist/cli/serve.js), not the bundle: in a
// profile each function keeps its module's file name (bench/stdio-profile.mjs).
//
//   node bench/lib/stdio-unbundled.mjs <build dir> key=value…     (runServe's options, as strings)

const [at, ...rest] = process.argv.slice(2);
const { runServe } = await import(`${at}/dist/cli/serve.js`);
const options = Object.fromEntries(
  rest.map((kv) => {
    const i = kv.indexOf('=');
    return [kv.slice(0, i), kv.slice(i + 1)];
  }),
);
await runServe({ stdio: true, ...options }, { stderr: (s) => process.stderr.write(s) });
