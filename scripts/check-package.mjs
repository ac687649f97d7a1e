#!/usr/bin/env node
// The package as a user gets it: build, pack, check what the tarball holds and imports, install it into
// an empty prefix, then run the INSTALLED `mcp-warden` (version, scan, stdio from `/` as an unprivileged
// user, the clear error when no state directory is writable, Streamable HTTP) and `npx -y <tarball>`.
// Run by `npm run check:package` and by CI after `npm test`. `--static`: only the contents and imports
// of the package as built now (no build, no install). `--keep`: keep the temp directory for a post-mortem.
// test/e2e/package.test.ts imports checkContents and checkImports.
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { startShop } from '../examples/shop/server.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const argv = process.argv.slice(2);
const staticOnly = argv.includes('--static');
const keep = argv.includes('--keep');
const t0 = performance.now();
const secs = (t) => `${((performance.now() - t) / 1000).toFixed(1)} s`;

// Released in `finish`, whatever happened: the temp dir, the shop, clients and children.
let tmp;
const children = new Set();
const closers = [];
let currentStep = '(setup)';

class StepError extends Error {}
const fail = (msg) => {
  throw new StepError(msg);
};
const check = (cond, msg) => {
  if (!cond) fail(msg);
};

async function step(name, fn) {
  currentStep = name;
  process.stdout.write(`-- ${name}\n`);
  const t = performance.now();
  const detail = await fn();
  process.stdout.write(`   ok (${secs(t)})${detail ? `: ${detail}` : ''}\n`);
}

/** Rejects with `what` after `ms` unless `p` settles first. */
function within(ms, what, p) {
  let timer;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new StepError(`timed out after ${ms / 1000} s: ${what}`)), ms);
    }),
  ]);
}

/** Waits until `probe()` returns a truthy value (checked every 50 ms) or `ms` pass. */
async function until(ms, what, probe) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) fail(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Spawns a tracked child (killed on failure); `wait()` resolves with its exit code and output. */
function start(cmd, args, o = {}) {
  const child = spawn(cmd, args, {
    cwd: o.cwd ?? tmp,
    env: o.env ?? cleanEnv(),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise((resolve) => {
    child.on('error', (e) => {
      stderr += `spawn ${cmd}: ${e.message}\n`;
      children.delete(child);
      resolve({ code: null, signal: null });
    });
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  if (o.input === undefined) child.stdin.end();
  else child.stdin.write(o.input);
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    wait: async () => ({ ...(await exited), stdout, stderr }),
  };
}

/** Runs a command to its end (at most `timeoutMs`); non-zero exit is a failure unless `allowFail`. */
async function run(cmd, args, o = {}) {
  const p = start(cmd, args, o);
  const r = await within(o.timeoutMs ?? 60_000, `${cmd} ${args.join(' ')}`, p.wait());
  if (!o.allowFail && r.code !== 0)
    fail(`\`${cmd} ${args.join(' ')}\` exited with ${r.code ?? r.signal}\n${tail(r.stderr || r.stdout)}`);
  return r;
}

const tail = (s, n = 30) => s.trimEnd().split('\n').slice(-n).join('\n');

// `npm run` describes itself to its children (the running script, this package, its prefix); npm and npx
// started from here must act as in a user's shell, so those go. Config (registry, cafile…) stays.
const NPM_RUN_VARS =
  /^npm_(lifecycle_|package_|command$|execpath$|node_execpath$|config_(local_prefix|prefix|global_prefix|user_agent|npm_version)$)/i;
function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!NPM_RUN_VARS.test(k)) env[k] = v;
  return { ...env, ...extra };
}

// The bare environment an MCP client gives a stdio server: a PATH that finds `node`, HOME, and what is asked.
const nodeDir = dirname(process.execPath);
const bareEnv = (extra) => ({ PATH: `${nodeDir}:/usr/local/bin:/usr/bin:/bin`, ...extra });

// ---------------------------------------------------------------------------------------------------
// Contents and imports: what the tarball holds, and that it loads nothing it does not bring.

const FORBIDDEN = [
  [/^(src|test|bench|scripts|examples|ui|deploy|docs|coverage|node_modules)\//, 'a development folder'],
  [/^\.(demo|audit|ci|git|github)\b/, 'a local or CI folder'],
  [/\.(ts|mts|cts|tsx|map)$/, 'TypeScript source, declarations or a source map'],
  [/\.jsonl(\.\d+)?(\.gz)?$|\.head$/, 'an audit file'],
  [
    /(^|\/)\.env|(^|\/)\.npmrc$|\.(pem|key|p12|pfx|crt)$|(^|\/)id_(rsa|ecdsa|ed25519)/,
    'a secret or key file',
  ],
  [/\.(tgz|sarif|log)$/, 'a build or run artefact'],
];
// Shipped text must not carry key material (the detectors name these shapes only as regexes).
const SECRET_CONTENT = /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----|\bAKIA[0-9A-Z]{16}\b|\bghp_[A-Za-z0-9]{36}\b/;

const listDir = (root, dir) =>
  existsSync(join(root, dir)) ? readdirSync(join(root, dir)).map((f) => `${dir}/${f}`) : [];

/** Problems with the packed file list `files` (paths relative to `root`, whose package.json is `pkg`). */
export function checkContents(root, pkg, files) {
  const have = new Set(files);
  const problems = [];
  for (const f of files)
    for (const [re, what] of FORBIDDEN) if (re.test(f)) problems.push(`${f}: ${what} must not be packed`);
  const required = [
    'package.json',
    'README.md',
    'LICENSE',
    pkg.bin['mcp-warden'],
    'dist/ui/index.html',
    'dist/ui/app.js',
    'dist/ui/app.css',
    'schema/policy.schema.json',
    ...listDir(root, 'generated'),
    ...listDir(root, 'migrations'),
    ...(existsSync(join(root, 'server.json')) ? ['server.json'] : []),
  ];
  for (const f of required) if (!have.has(f)) problems.push(`${f} is missing from the package`);
  const main = join(root, pkg.bin['mcp-warden']);
  if (existsSync(main) && !readFileSync(main, 'utf8').startsWith('#!/usr/bin/env node\n'))
    problems.push(`${pkg.bin['mcp-warden']} does not start with #!/usr/bin/env node`);
  // The CLI bundle's chunks (scripts/bundle-cli.mjs) have no source file of their own: its manifest names them.
  const bundled = new Set(readBundle(root).chunks ?? []);
  for (const f of files) {
    // A .js left in dist/ by a module since deleted from src/ would ship dead (or worse) code.
    const m = /^dist\/(?!ui\/)(.+)\.js$/.exec(f);
    if (m && !bundled.has(f) && !existsSync(join(root, 'src', `${m[1]}.ts`)))
      problems.push(`${f}: stale build output (no src/${m[1]}.ts); delete dist/ and rebuild`);
    if (
      /\.(js|mjs|cjs|json|sql|html|css|md)$/.test(f) &&
      SECRET_CONTENT.test(readFileSync(join(root, f), 'utf8'))
    )
      problems.push(`${f}: contains what looks like key material`);
  }
  return problems;
}

/** What the last `scripts/bundle-cli.mjs` wrote (dist/bundle.json: entries, chunks, imports), or nothing. */
function readBundle(root) {
  try {
    return JSON.parse(readFileSync(join(root, 'dist/bundle.json'), 'utf8'));
  } catch {
    return {};
  }
}

/** Imports of the packed JS files in `files` that an installed package could not resolve. */
export function checkImports(root, pkg, files) {
  const ts = createRequire(import.meta.url)('typescript');
  const have = new Set(files);
  const runtime = new Set(Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies }));
  const dev = new Set(Object.keys(pkg.devDependencies ?? {}));
  const problems = [];
  const used = new Set();
  let count = 0;
  const bundled = readBundle(root).imports ?? {};
  for (const f of files.filter((x) => /\.(js|mjs|cjs)$/.test(x) && !x.startsWith('dist/ui/'))) {
    // TypeScript's pre-processor finds static, re-export and literal dynamic imports (and require) in
    // JS; the bundle's minified files come with their imports listed by the bundler.
    const specs = Object.hasOwn(bundled, f)
      ? bundled[f]
      : ts
          .preProcessFile(readFileSync(join(root, f), 'utf8'), true, true)
          .importedFiles.map((i) => i.fileName);
    for (const spec of specs) {
      count++;
      if (spec.startsWith('.')) {
        const target = posix.normalize(posix.join(posix.dirname(f), spec));
        if (!have.has(target)) problems.push(`${f} imports ${spec}, which is not in the package`);
        continue;
      }
      if (spec.startsWith('node:') || isBuiltin(spec)) continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
      used.add(name);
      if (runtime.has(name)) continue;
      problems.push(
        dev.has(name)
          ? `${f} imports ${spec}: ${name} is a devDependency, absent from an installed package`
          : `${f} imports ${spec}: ${name} is not in dependencies`,
      );
    }
  }
  return { problems, count, used };
}

// ---------------------------------------------------------------------------------------------------

let tarball;
let files;
const home = (name, owner) => {
  const dir = join(tmp, name);
  mkdirSync(dir, { mode: 0o700 });
  if (owner) chownSync(dir, owner.uid, owner.gid);
  return dir;
};

async function main() {
  tmp = mkdtempSync(join(tmpdir(), 'mcp-warden-pkg-'));
  chmodSync(tmp, 0o755); // the unprivileged user must reach the prefix and the spec copies
  process.stdout.write(`mcp-warden ${pkg.version}: package check (temp ${tmp})\n`);

  if (!staticOnly)
    await step('build (npm run build)', async () => {
      await run('npm', ['run', 'build'], { cwd: root, timeoutMs: 180_000 });
    });

  await step('pack (npm pack)', async () => {
    const packDir = join(tmp, 'pack');
    mkdirSync(packDir);
    // Scripts off: the build just ran, and a script's output on stdout would corrupt --json.
    const r = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], {
      cwd: root,
      env: cleanEnv(),
    });
    const [info] = JSON.parse(r.stdout);
    tarball = join(packDir, info.filename);
    files = info.files.map((x) => x.path).sort();
    chmodSync(tarball, 0o644);
    return `${info.filename}, ${files.length} files, ${(info.size / 1024).toFixed(0)} KiB`;
  });

  await step('contents: no tests, sources, maps, secrets or audit files; everything the CLI reads', () => {
    const problems = checkContents(root, pkg, files);
    check(problems.length === 0, problems.join('\n'));
  });

  await step('imports: every runtime import is a dependency (nothing dev-only)', () => {
    const { problems, count, used } = checkImports(root, pkg, files);
    check(problems.length === 0, problems.join('\n'));
    return `${count} imports, ${used.size} packages`;
  });

  if (staticOnly) return;

  const prefix = join(tmp, 'prefix');
  const bin = join(prefix, 'node_modules', '.bin', 'mcp-warden');
  await step('install the tarball into an empty prefix', async () => {
    mkdirSync(prefix);
    await run(
      'npm',
      [
        'install',
        '--prefix',
        prefix,
        tarball,
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
      ],
      { timeoutMs: 180_000 },
    );
    check(existsSync(bin), `${bin} was not installed`);
    // A strict umask (077) would hide the install from the unprivileged user below; users install 0755.
    await run('chmod', ['-R', 'a+rX', prefix]);
  });

  const work = join(tmp, 'work');
  mkdirSync(work);
  await step('mcp-warden --version', async () => {
    const r = await run(bin, ['--version'], { cwd: work });
    check(r.stdout.trim() === pkg.version, `printed ${JSON.stringify(r.stdout.trim())}, want ${pkg.version}`);
    return r.stdout.trim();
  });

  // Copies readable by anyone: the unprivileged user below must read them.
  const specs = join(tmp, 'specs');
  mkdirSync(specs, { mode: 0o755 });
  const petstoreSrc = join(root, '..', 'shared', 'specs', 'petstore-v3.yaml');
  const scanSpec = join(specs, existsSync(petstoreSrc) ? 'petstore-v3.yaml' : 'shop.yaml');
  copyFileSync(existsSync(petstoreSrc) ? petstoreSrc : join(root, 'examples/shop/openapi.yaml'), scanSpec);
  const shopSpec = join(specs, 'shop.yaml');
  copyFileSync(join(root, 'examples/shop/openapi.yaml'), shopSpec);
  for (const f of [scanSpec, shopSpec]) chmodSync(f, 0o644);

  await step(`mcp-warden scan ${scanSpec}`, async () => {
    const r = await run(bin, ['scan', scanSpec, '--format', 'json', '-q'], { cwd: work });
    const report = JSON.parse(r.stdout);
    check(report.summary?.operations > 0, `the report lists no operations:\n${tail(r.stdout)}`);
    return `${report.summary.operations} operations, ${report.summary.exposed} exposed`;
  });

  const shop = await startShop();
  closers.push(() => shop.close());

  // As root, the stdio server runs as `nobody`: what an MCP client started by an ordinary user looks like.
  const isRoot = process.getuid?.() === 0;
  const nobody = isRoot ? await nobodyIds() : undefined;
  const asUser = (cmd, args) =>
    !isRoot
      ? [cmd, args]
      : nobody.via === 'setpriv'
        ? ['setpriv', [`--reuid=${nobody.uid}`, `--regid=${nobody.gid}`, '--clear-groups', cmd, ...args]]
        : ['runuser', ['-u', 'nobody', '--', cmd, ...args]];
  const who = isRoot ? 'nobody' : `uid ${process.getuid?.()} (not root: cannot switch user)`;

  await step(
    `stdio session from / as ${who}: initialize, tools/list, tools/call, audit in ~/.local/state`,
    async () => {
      const userHome = home('home-user', nobody);
      const [cmd, args] = asUser(bin, ['serve', '--stdio', '--spec', shopSpec, '--base-url', shop.url]);
      const transport = new StdioClientTransport({
        command: cmd,
        args,
        cwd: '/',
        env: bareEnv({
          HOME: userHome,
          MCP_WARDEN_CRED_SHOPKEY: shop.key,
          ...(isRoot ? { USER: 'nobody', LOGNAME: 'nobody' } : {}),
        }),
        stderr: 'pipe',
      });
      let logs = '';
      transport.stderr?.on('data', (d) => {
        logs += d;
      });
      const client = new Client({ name: 'check-package', version: pkg.version });
      closers.push(
        () => client.close(),
        () => transport.close(),
      );
      try {
        await within(30_000, 'initialize', client.connect(transport));
      } catch (e) {
        fail(`initialize failed: ${e.message}\n${tail(logs)}`);
      }
      const { tools } = await within(15_000, 'tools/list', client.listTools());
      check(
        tools.some((t) => t.name === 'searchProducts'),
        `searchProducts not listed: ${tools.map((t) => t.name).join(', ')}`,
      );
      await callSearch(client, shop);
      const auditFile = await until(10_000, 'the "audit file" start-up line on stderr', () =>
        /audit file (\S+)/.exec(logs)?.at(1),
      );
      const stateRoot = join(userHome, '.local', 'state', 'mcp-warden');
      check(auditFile.startsWith(`${stateRoot}/`), `audit file ${auditFile} is not under ${stateRoot}/`);
      await until(10_000, `the call's record in ${auditFile}`, () => auditHolds(auditFile, 'searchProducts'));
      await client.close();
      return `audit ${auditFile}`;
    },
  );

  await step(`stdio start as ${who} with HOME=/nonexistent: a clear error naming --audit-file`, async () => {
    const [cmd, args] = asUser(bin, ['serve', '--stdio', '--spec', shopSpec, '--base-url', shop.url]);
    const initialize = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'check', version: '1' },
      },
    };
    const p = start(cmd, args, {
      cwd: '/',
      env: bareEnv({ HOME: '/nonexistent', MCP_WARDEN_CRED_SHOPKEY: shop.key }),
      input: `${JSON.stringify(initialize)}\n`,
    });
    const r = await within(30_000, 'the server to exit', p.wait());
    p.child.stdin.destroy();
    const why = `exit ${r.code ?? r.signal}; stderr:\n${tail(r.stderr)}\nstdout:\n${tail(r.stdout)}`;
    check(r.code === 2, `want exit code 2 (CONFIG_INVALID), got ${why}`);
    check(r.stderr.includes('--audit-file'), `stderr does not name --audit-file: ${why}`);
    check(!/^\s+at\s.+:\d+:\d+\)?$/m.test(r.stderr), `stderr holds a stack trace: ${why}`);
    const answer = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((m) => m.id === 1);
    check(
      answer?.error?.message?.includes('--audit-file'),
      `the answer to initialize does not name --audit-file: ${why}`,
    );
    return tail(r.stderr, 1);
  });

  await step('HTTP session (serve --port 0): tools/call, audit in $XDG_STATE_HOME', async () => {
    const state = home('xdg-state');
    const p = start(bin, ['serve', '--spec', shopSpec, '--base-url', shop.url, '--port', '0'], {
      cwd: work,
      env: bareEnv({ HOME: home('home-http'), XDG_STATE_HOME: state, MCP_WARDEN_CRED_SHOPKEY: shop.key }),
    });
    const exited = p.wait();
    let gone = false;
    exited.then(() => {
      gone = true;
    });
    const url = await until(30_000, 'the "MCP endpoint" line on stderr', () => {
      if (gone) fail(`serve exited early:\n${tail(p.stderr())}`);
      return /MCP endpoint (\S+)/.exec(p.stderr())?.at(1);
    });
    const client = new Client({ name: 'check-package', version: pkg.version });
    closers.push(() => client.close());
    await within(
      15_000,
      'initialize over HTTP',
      client.connect(new StreamableHTTPClientTransport(new URL(url))),
    );
    await callSearch(client, shop);
    const auditFile = /audit file (\S+)/.exec(p.stderr())?.at(1) ?? '(none printed)';
    check(
      auditFile.startsWith(`${state}/mcp-warden/`),
      `audit file ${auditFile} is not under ${state}/mcp-warden/`,
    );
    await until(10_000, `the call's record in ${auditFile}`, () => auditHolds(auditFile, 'searchProducts'));
    await client.close();
    p.child.kill('SIGTERM');
    const r = await within(15_000, 'serve to stop on SIGTERM', exited);
    check(r.code === 0, `serve exited with ${r.code ?? r.signal} on SIGTERM:\n${tail(r.stderr)}`);
    return url;
  });

  // npx keeps its installs beside the cache (<cache>/_npx): a private cache folder whose _cacache is the
  // user's keeps them out of ~/.npm while still using the packages npm ci cached.
  const npmCache = join(tmp, 'npm-cache');
  mkdirSync(npmCache);
  const userCache = join((await run('npm', ['config', 'get', 'cache'])).stdout.trim(), '_cacache');
  mkdirSync(userCache, { recursive: true });
  symlinkSync(userCache, join(npmCache, '_cacache'));
  const npx = (args) =>
    run('npx', ['-y', '--prefer-offline', `./${posix.basename(tarball)}`, ...args], {
      cwd: dirname(tarball),
      env: cleanEnv({ npm_config_cache: npmCache, npm_config_update_notifier: 'false' }),
      timeoutMs: 180_000,
    });

  await step(`npx -y ./${posix.basename(tarball)} --version`, async () => {
    const r = await npx(['--version']);
    check(r.stdout.trim() === pkg.version, `printed ${JSON.stringify(r.stdout.trim())}, want ${pkg.version}`);
  });

  await step(`npx -y ./${posix.basename(tarball)} scan ${scanSpec}`, async () => {
    const r = await npx(['scan', scanSpec, '-q']);
    check(/operations: \d+ exposed by default/.test(r.stdout), `no scan summary in:\n${tail(r.stdout)}`);
    return r.stdout.split('\n')[1];
  });
}

/** `nobody`'s ids and the tool that switches to it (setpriv, else runuser). */
async function nobodyIds() {
  const uid = Number((await run('id', ['-u', 'nobody'])).stdout);
  const gid = Number((await run('id', ['-g', 'nobody'])).stdout);
  const has = async (t) => (await run('sh', ['-c', `command -v ${t}`], { allowFail: true })).code === 0;
  const via = (await has('setpriv')) ? 'setpriv' : (await has('runuser')) ? 'runuser' : undefined;
  check(via, 'running as root, but neither setpriv nor runuser is installed to run as nobody');
  return { uid, gid, via };
}

/** Calls searchProducts and checks the answer came from the shop. */
async function callSearch(client, shop) {
  const before = shop.requests.length;
  const res = await within(
    15_000,
    'tools/call searchProducts',
    client.callTool({ name: 'searchProducts', arguments: { q: 'mouse' } }),
  );
  check(!res.isError, `searchProducts failed: ${JSON.stringify(res.content).slice(0, 500)}`);
  check(
    shop.requests.slice(before).some((r) => r.url.startsWith('/v1/products/search')),
    'the call did not reach the upstream',
  );
}

function auditHolds(file, tool) {
  if (!existsSync(file)) return false;
  return readFileSync(file, 'utf8')
    .split('\n')
    .some((l) => l.includes(`"tool":"${tool}"`) && l.includes('"kind":"call"'));
}

async function finish(code) {
  for (const c of closers.reverse())
    await Promise.resolve()
      .then(c)
      .catch(() => {});
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  if (tmp && keep) process.stdout.write(`kept ${tmp}\n`);
  else if (tmp) rmSync(tmp, { recursive: true, force: true });
  process.exit(code);
}

// Imported (by the test) for its checks; run as a script for the whole check.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.once('SIGINT', () => {
    process.stderr.write(`\ninterrupted during: ${currentStep}\n`);
    void finish(130);
  });
  try {
    await main();
    process.stdout.write(`package check passed in ${secs(t0)}\n`);
    await finish(0);
  } catch (e) {
    const msg = e instanceof StepError ? e.message : (e?.stack ?? String(e));
    process.stderr.write(
      `\nFAILED at step: ${currentStep}\n${msg}\n(package check failed after ${secs(t0)})\n`,
    );
    await finish(1);
  }
}
