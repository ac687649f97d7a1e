// Bundles the CLI with esbuild after `tsc` (issue 22: start-up). Node spent about half a second of a
// start resolving, reading and compiling some 900 modules (the project's and its dependencies'); one
// bundle loads in a fraction of that, and V8's code cache (src/lib/code-cache.ts) takes the compiling
// away too. Node 20 has a code cache for scripts only (not for ES modules), so each bundle is one
// CommonJS script whose value is its module function; the sources' lazy `import()`s stay lazy inside
// it (esbuild evaluates such a module on first import, and V8 compiles a function on first call).
//
// Two bundles, each run by a small ES module entry that overwrites what tsc wrote there:
// dist/cli/main.js (the `bin`, src/cli/launch.ts) runs dist/cli/cli.bundle.cjs (src/cli/main.ts and all
// it loads), and dist/openapi/load-worker.js (the spec prefetch's worker thread, found by prefetch.ts
// as `../openapi/load-worker.js` from wherever it runs; src/catalog/launch-worker.ts) runs
// dist/openapi/load-worker.bundle.cjs. Both bundles sit at the same depth below the package root as
// every tsc module, so each `new URL('../../…', import.meta.url)` (generated/, schema/, migrations/,
// dist/ui/) resolves as before. The outputs are listed in dist/bundle.json, which `npm run
// check:package` reads to tell them from stale output, with the build's id (the spec cache's key) and
// each bundle's hash (the code cache's). The rest of tsc's output stays (tests import
// dist/server/serve.js), unused by the CLI. No source maps.
//
//   node scripts/bundle-cli.mjs          (run by `npm run build`, after tsc)
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { posix } from 'node:path';
import { build } from 'esbuild';

const root = new URL('../', import.meta.url);
const dist = new URL('dist/', root);
const manifest = new URL('bundle.json', dist);

// The previous build's chunks (their names carry a content hash): gone before the new ones land.
try {
  const old = JSON.parse(readFileSync(manifest, 'utf8')).chunks ?? [];
  // Their maps too (a profiling build's): a later build without maps would leave them wrong beside
  // chunks of the same names.
  for (const f of old) for (const g of [f, `${f}.map`]) rmSync(new URL(g, root), { force: true });
} catch {
  // No previous bundle.
}

const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));

// The HTTP/2 protocol constants undici's h2 client reads (patch 'undici-lazy-http2'), as node:http2
// defines them: a Node whose values differ stops the build rather than bundle wrong ones.
const H2_CONSTANTS = {
  HTTP2_HEADER_AUTHORITY: ':authority',
  HTTP2_HEADER_METHOD: ':method',
  HTTP2_HEADER_PATH: ':path',
  HTTP2_HEADER_SCHEME: ':scheme',
  HTTP2_HEADER_CONTENT_LENGTH: 'content-length',
  HTTP2_HEADER_EXPECT: 'expect',
  HTTP2_HEADER_STATUS: ':status',
  HTTP2_HEADER_PROTOCOL: ':protocol',
  NGHTTP2_REFUSED_STREAM: 7,
  NGHTTP2_CANCEL: 8,
};
{
  const { constants } = await import('node:http2');
  for (const [k, v] of Object.entries(H2_CONSTANTS))
    if (constants[k] !== v) throw new Error(`bundle: node:http2 ${k} is ${constants[k]}, not ${v}`);
}

// See the plugin 'dependency-hot-spots' below. Each replacement keeps the function's contract.
const PATCHES = [
  {
    // json-schema-ref-parser's bundle() looks each $ref up in its inventory with a linear scan, once
    // per $ref: quadratic, ~0.4 s CPU for DigitalOcean's 10,000 $refs (2,850 files). The same lookup
    // through an index of the entries by parent and key, kept in step with the array: entries are only
    // appended (indexed on the next lookup) or removed through removeFromInventory, and the bundler
    // keeps at most one per parent and key, the one the scan would have found.
    name: 'ref-parser-inventory-index',
    file: /[\\/]json-schema-ref-parser[\\/]dist[\\/]lib[\\/]bundle\.js$/,
    from: `function findInInventory(inventory, $refParent, $refKey) {
    for (const existingEntry of inventory) {
        if (existingEntry && existingEntry.parent === $refParent && existingEntry.key === $refKey) {
            return existingEntry;
        }
    }
    return undefined;
}
function removeFromInventory(inventory, entry) {
    const index = inventory.indexOf(entry);
    inventory.splice(index, 1);
}`,
    to: `const wardenInventoryIndex = new WeakMap();
function findInInventory(inventory, $refParent, $refKey) {
    let ix = wardenInventoryIndex.get(inventory);
    if (!ix) wardenInventoryIndex.set(inventory, (ix = { done: 0, byParent: new Map() }));
    for (; ix.done < inventory.length; ix.done++) {
        const e = inventory[ix.done];
        if (!e) continue;
        let keys = ix.byParent.get(e.parent);
        if (!keys) ix.byParent.set(e.parent, (keys = new Map()));
        if (!keys.has(e.key)) keys.set(e.key, e);
    }
    return ix.byParent.get($refParent)?.get($refKey);
}
function removeFromInventory(inventory, entry) {
    const index = inventory.indexOf(entry);
    inventory.splice(index, 1);
    const ix = wardenInventoryIndex.get(inventory);
    if (ix) {
        if (index < ix.done) ix.done--;
        ix.byParent.get(entry.parent)?.delete(entry.key);
    }
}`,
  },
  {
    // reftools' circularClone (swagger2openapi clones the whole Swagger 2.0 document with it) builds a
    // one-property object per property and spreads them all into Object.assign: ~0.2 s CPU and its
    // garbage for Kubernetes' 4 MB. The same clone (children cloned first, then set in key order, on
    // the same constructed result) with two arrays per object instead.
    name: 'reftools-circular-clone',
    file: /[\\/]reftools[\\/]lib[\\/]clone\.js$/,
    from: `    // Register in hash
    hash.set(obj, result);
    // Clone and assign enumerable own properties recursively
    return Object.assign(result, ...Object.keys(obj).map (
        key => ({ [key]: circularClone(obj[key], hash) }) ));
}`,
    to: `    // Register in hash
    hash.set(obj, result);
    const keys = Object.keys(obj);
    const values = new Array(keys.length);
    for (let i = 0; i < keys.length; i++) values[i] = circularClone(obj[keys[i]], hash);
    for (let i = 0; i < keys.length; i++) result[keys[i]] = values[i];
    return result;
}`,
  },
  {
    // undici's HTTP/2 client requires node:http2 when its module is evaluated, only to read ten
    // protocol constants and, on an h2 connection, call `connect`. The gateway never enables h2
    // (`allowH2` is off), yet every first call loaded http2 and tls (~12 ms of a first call's CPU
    // profile on a slow VM; bench/first-call.mjs does not resolve it from the run-to-run spread).
    // The constants are written out (checked against
    // node:http2's own below, so a Node that changed them stops the build) and the module is
    // required by `connect`, the one place that needs it.
    name: 'undici-lazy-http2',
    file: /[\\/]undici[\\/]lib[\\/]dispatcher[\\/]client-h2\.js$/,
    from: `/** @type {import('http2')} */
let http2
try {
  http2 = require('node:http2')
} catch {
  // @ts-ignore
  http2 = { constants: {} }
}

const {
  constants: {
    HTTP2_HEADER_AUTHORITY,
    HTTP2_HEADER_METHOD,
    HTTP2_HEADER_PATH,
    HTTP2_HEADER_SCHEME,
    HTTP2_HEADER_CONTENT_LENGTH,
    HTTP2_HEADER_EXPECT,
    HTTP2_HEADER_STATUS,
    HTTP2_HEADER_PROTOCOL,
    NGHTTP2_REFUSED_STREAM,
    NGHTTP2_CANCEL
  }
} = http2`,
    to: `let wardenHttp2
const http2 = { connect: (...args) => (wardenHttp2 ??= require('node:http2')).connect(...args) }
${Object.entries(H2_CONSTANTS)
  .map(([k, v]) => `const ${k} = ${JSON.stringify(v)}`)
  .join('\n')}`,
  },
  {
    // js-yaml's CommonJS build (the one the bundle evaluates lazily; its ES build parses 2× slower in
    // a fresh process) spreads options with a transpiled helper, key by key through
    // Object.defineProperty, several times per document: ~30 µs of every parse, 60–90 ms of a cold
    // DigitalOcean load (2,850 files). Object.assign for the odd arguments, the helper's own
    // descriptor copy for the even ones: the same own properties on the same fresh object. Two
    // cases differ, neither reachable here: an own `__proto__` key (assign sets the prototype; every
    // caller spreads js-yaml's defaults first, so each option it reads is an own property anyway)
    // and a getter that deletes a later key of its object (options hold no getters).
    name: 'js-yaml-object-spread',
    file: /[\\/]js-yaml[\\/]dist[\\/]js-yaml\.cjs\.js$/,
    from: `function _objectSpread2(e) {
	for (var r = 1; r < arguments.length; r++) {
		var t = null != arguments[r] ? arguments[r] : {};
		r % 2 ? ownKeys(Object(t), !0).forEach(function(r) {
			_defineProperty(e, r, t[r]);
		}) : Object.getOwnPropertyDescriptors ? Object.defineProperties(e, Object.getOwnPropertyDescriptors(t)) : ownKeys(Object(t)).forEach(function(r) {
			Object.defineProperty(e, r, Object.getOwnPropertyDescriptor(t, r));
		});
	}
	return e;
}`,
    to: `function _objectSpread2(e) {
	for (var r = 1; r < arguments.length; r++) {
		var t = arguments[r];
		if (t == null) continue;
		if (r % 2) Object.assign(e, t);
		else Object.defineProperties(e, Object.getOwnPropertyDescriptors(t));
	}
	return e;
}`,
  },
];
const patched = new Set();
// Each lazy package and the file a stand-in of it loads (see 'lazy-evaluated-packages').
const lazyCopies = new Set();

// See the plugin 'lazy-evaluated-packages' below.
// undici's FormData file: the pipeline makes a multipart body with it, and undici's encoder requires
// it lazily too (src/lib/undici-parts.ts).
const LAZY_PACKAGES = ['yaml', 're2js', 'js-yaml', 'undici/lib/web/fetch/formdata.js'];

// BUNDLE_SOURCEMAP=1: maps beside the bundles, for bench/http-profile-layers.mjs (a profiling build only).
const SOURCEMAP = process.env.BUNDLE_SOURCEMAP === '1';

// version.ts reads ../package.json beside dist/; a bundle in dist/cli/ would look in dist/.
const VERSION_PLUGIN = {
  name: 'version',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]version\.ts$/ }, () => ({
      contents: `export const VERSION = ${JSON.stringify(pkg.version ?? '0.0.0')};`,
      loader: 'ts',
    }));
  },
};

// What each bundle's `import.meta.url` becomes: its own file's URL, as an ES module's was.
const IMPORT_META = new URL('scripts/bundle-import-meta.js', root).pathname;

// What both builds below share: files laid out as tsc lays out the sources, for Node 20.
const COMMON = {
  absWorkingDir: new URL('.', root).pathname,
  outbase: new URL('src/', root).pathname,
  outdir: dist.pathname,
  entryNames: '[dir]/[name]',
  bundle: true,
  platform: 'node',
  target: 'node20',
  // Less text to read and parse (and 10 MB less RSS); identifiers and function names stay (stack
  // traces, stage names).
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: false, // esbuild's __name() ran at each closure's creation (1–2 % of a call's CPU); nothing reads a renamed one's .name
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
};

const result = await build({
  ...COMMON,
  entryPoints: [
    { in: new URL('src/cli/main.ts', root).pathname, out: 'cli/cli.bundle' },
    // The worker's entry sits on the catalogue's floor (it adds the catalogue snapshot to the loader).
    { in: new URL('src/catalog/prefetch-worker.ts', root).pathname, out: 'openapi/load-worker.bundle' },
  ],
  outExtension: { '.js': '.cjs' },
  format: 'cjs',
  // ASCII (esbuild escapes the rest; checked below): read as latin1, V8 keeps it outside its heap.
  charset: 'ascii',
  ...(SOURCEMAP ? { sourcemap: 'external' } : {}),
  // The script's value is the module function src/lib/code-cache.ts calls, as Node's CommonJS
  // loader would (one line: a profiling build's mapped columns stay).
  banner: { js: '(function (exports, require, module, __filename, __dirname) {' },
  footer: { js: '\n})' },
  define: { 'import.meta.url': '__wardenImportMetaUrl' },
  // A script has no import() (vm's needs --experimental-vm-modules): the few of dependencies, of
  // built-ins and CommonJS packages, become require(); the generated ES modules are imported through
  // the entry (importModule, src/lib/code-cache.ts).
  supported: { 'dynamic-import': false },
  inject: [IMPORT_META],
  plugins: [
    VERSION_PLUGIN,
    {
      // The bundle is ASCII (see `charset`), but esbuild cannot escape a tagged template's raw text:
      // the injection patterns' non-ASCII letters (String.raw, src/protect/injection.ts) become
      // substitutions of the same characters, `${"\u{43e}"}`, which String.raw joins back into the
      // same string. The check after the build stops it if any other non-ASCII text appears.
      name: 'ascii-raw-templates',
      setup(b) {
        b.onLoad({ filter: /[\\/]src[\\/]protect[\\/]injection\.ts$/, namespace: 'file' }, (a) => ({
          contents: readFileSync(a.path, 'utf8').replace(/String\.raw`[^`]*`/g, (t) =>
            t.replace(/[^\0-\x7f]/gu, (c) => `\${"\\u{${c.codePointAt(0).toString(16)}}"}`),
          ),
          loader: 'ts',
        }));
      },
    },
    {
      // The SDK's `_shims` module imports its Ajv JSON Schema validator, whose module evaluates Ajv,
      // Ajv2019, Ajv2020 and ajv-formats at import: ~10 ms of every start (issue 22), for a validator
      // the server uses only to check an elicitation's answer. Here the same class is required on
      // first use instead (esbuild evaluates a require()d module when the call runs). Same
      // behaviour: the SDK constructs it with no argument and calls getValidator().
      name: 'sdk-lazy-ajv',
      setup(b) {
        b.onResolve({ filter: /^@modelcontextprotocol\/server\/_shims$/ }, () => ({
          path: 'sdk-shims',
          namespace: 'warden',
        }));
        b.onLoad({ filter: /^sdk-shims$/, namespace: 'warden' }, () => ({
          resolveDir: new URL('.', root).pathname,
          loader: 'js',
          contents: `import process from 'node:process';
class DefaultJsonSchemaValidator {
  #ajv;
  #real;
  constructor(ajv) { this.#ajv = ajv; }
  #get() {
    const { AjvJsonSchemaValidator } = require('@modelcontextprotocol/server/validators/ajv');
    return (this.#real ??= new AjvJsonSchemaValidator(this.#ajv));
  }
  get ajv() { return this.#get().ajv; }
  getValidator(schema) { return this.#get().getValidator(schema); }
}
export { DefaultJsonSchemaValidator, process };
`,
        }));
      },
    },
    {
      // Classes of CommonJS dependencies that mcp-warden never constructs, whose modules load Node
      // built-ins at require: prom-client's Pushgateway (http, https and with it tls, zlib: ~8 ms of
      // every start, for stdio a gateway that needs none of them before its first call). Each is
      // replaced by constructors that require the real module when first called, so the classes stay
      // exported and work. (rate-limiter-flexible's index, with its cluster limiters, is not
      // imported at all: src/lib/rate-limiters.ts takes the two limiters from their own files.)
      name: 'lazy-unused-classes',
      setup(b) {
        const lazy = [
          { importer: /[\\/]prom-client[\\/]index\.js$/, path: './lib/pushgateway' },
          // collectDefaultMetrics: the process metrics' modules (and the @opentelemetry/api one of
          // them requires) evaluated only once an admin port serves /metrics, not at every start
          // (~5 ms CPU, bench/import-cost.mjs on the serve chunk) — a function, not a class.
          {
            importer: /[\\/]prom-client[\\/]index\.js$/,
            path: './lib/defaultMetrics',
            fn: { props: ['metricsList'] },
          },
        ];
        b.onResolve({ filter: /^\.\/lib\/(pushgateway|defaultMetrics)$/ }, (a) => {
          const hit = lazy.find((l) => l.path === a.path && l.importer.test(a.importer));
          if (!hit) return undefined;
          const file = posix.join(a.resolveDir, `${a.path}.js`);
          return { path: a.path, namespace: 'warden-lazy', pluginData: { hit, file } };
        });
        b.onLoad({ filter: /.*/, namespace: 'warden-lazy' }, (a) => {
          const { hit, file } = a.pluginData;
          const real = `require(${JSON.stringify(file)})`;
          // `new` of a function that returns an object gives that object: the real instance.
          const ctor = (get) => `function (...args) { return new (${get})(...args); }`;
          // A function called as one; its own properties read through to the real one's.
          const fn = (props) =>
            [
              `module.exports = function (...args) { return ${real}.apply(this, args); };`,
              ...props.map(
                (k) =>
                  `Object.defineProperty(module.exports, ${JSON.stringify(k)}, { enumerable: true, get: () => ${real}[${JSON.stringify(k)}] });`,
              ),
            ].join('\n');
          return {
            resolveDir: posix.dirname(file),
            loader: 'js',
            contents: hit.fn ? fn(hit.fn.props) : `module.exports = ${ctor(real)};`,
          };
        });
      },
    },
    {
      // Quadratic or allocation-bound helpers of dependencies on a cold load's way (issue 22), each
      // replaced by the same function written to do the same in less CPU; the build stops if the
      // dependency's text changed (PATCHES below), so an update never applies a stale patch.
      name: 'dependency-hot-spots',
      setup(b) {
        // Files on disk only: a lazy package's stand-in (below) has its real file's path too.
        for (const p of PATCHES)
          b.onLoad({ filter: p.file, namespace: 'file' }, (a) => {
            const text = readFileSync(a.path, 'utf8');
            if (!text.includes(p.from))
              throw new Error(`bundle: ${p.name}: ${a.path} changed; review the patch`);
            patched.add(p.name);
            return { contents: text.replace(p.from, () => p.to), loader: 'js' };
          });
      },
    },
    {
      // Packages that modules of every start import, whose exports those modules use only inside
      // functions a start from the spec cache does not call: yaml (policy and API keys files, spec
      // locations: policy/load.ts, server/callers.ts, openapi/locate.ts), js-yaml (a YAML spec:
      // openapi/parse.ts, parsed on the worker) and re2js (spec `pattern`s: lib/linear-regexp.ts,
      // compiled while building a catalogue). Each import of them gets a CommonJS stand-in whose
      // exports are getters that require the real package on first read: esbuild reads a CommonJS
      // import's names at each use (`import_x.name`), so values and classes are the package's own,
      // evaluated at that first use instead of by every start (issue 22; in a fresh process the serve
      // chunk's import went from ~1,065 to ~1,042 M instructions under callgrind). Not jose: required
      // whole it is 99 KB in the start path against the 28 KB tree-shaking keeps, for no gain measured.
      // Only named imports: a default import would get the stand-in (picomatch's callable default
      // would break), so a package imported that way stays out of this list.
      // Each importer gets the copy its own resolution finds (by its CommonJS entry): a dependency
      // may pin another major than ours (npm nests that copy under it).
      name: 'lazy-evaluated-packages',
      setup(b) {
        const escaped = LAZY_PACKAGES.map((p) => p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'));
        b.onResolve({ filter: new RegExp(`^(${escaped.join('|')})$`) }, async (a) => {
          if (a.namespace === 'warden-lazy-eval' || a.pluginData?.lazyReal) return undefined;
          const real = await b.resolve(a.path, {
            kind: 'require-call',
            resolveDir: a.resolveDir,
            importer: a.importer,
            pluginData: { lazyReal: true },
          });
          if (real.errors.length) throw new Error(`bundle: cannot resolve ${a.path} from ${a.importer}`);
          lazyCopies.add(`${a.path} ${real.path}`);
          return { path: real.path, namespace: 'warden-lazy-eval' };
        });
        b.onLoad({ filter: /.*/, namespace: 'warden-lazy-eval' }, async (a) => {
          const names = Object.keys(await import(a.path)).filter((k) => k !== 'default');
          if (names.length === 0) throw new Error(`bundle: ${a.path} exports no names`);
          return {
            resolveDir: new URL('.', root).pathname,
            loader: 'js',
            contents: [
              `let real; const load = () => (real ??= require(${JSON.stringify(a.path)}));`,
              "Object.defineProperty(exports, '__esModule', { value: true });",
              `for (const k of ${JSON.stringify(names)}) Object.defineProperty(exports, k, { enumerable: true, get: () => load()[k] });`,
            ].join('\n'),
          };
        });
      },
    },
  ],
});

// BUNDLE_METAFILE=<file>: esbuild's metafile, to see which inputs each chunk holds (e.g. with
// bench/bundle-chunks.mjs or esbuild's analyzer) when looking for code a start loads without need.
if (process.env.BUNDLE_METAFILE) writeFileSync(process.env.BUNDLE_METAFILE, JSON.stringify(result.metafile));

// Output paths in the metafile are relative to absWorkingDir, the package root.
const outputs = Object.keys(result.metafile.outputs).filter((f) => !f.endsWith('.map'));

// The lazy replacements above match dependencies' file names and the SDK's use of its validator: a
// dependency update that renames a file would silently make them eager again, one that gives the
// validator a method the replacement lacks would break it. Both stop the build instead.
{
  const inputs = Object.keys(result.metafile.inputs);
  for (const want of [
    'warden:sdk-shims',
    'warden-lazy:./lib/pushgateway',
    'warden-lazy:./lib/defaultMetrics',
  ])
    if (!inputs.includes(want)) throw new Error(`bundle: ${want} was not used (a dependency changed?)`);
  for (const p of LAZY_PACKAGES)
    if (![...lazyCopies].some((c) => c.startsWith(`${p} `)))
      throw new Error(`bundle: the lazy ${p} was not used (a dependency changed?)`);
  for (const p of PATCHES) if (!patched.has(p.name)) throw new Error(`bundle: ${p.name} was not applied`);
  // collectDefaultMetrics is forwarded as a function with `metricsList`: anything else it gains stops the build.
  const promLib = posix.join(posix.dirname(createRequire(import.meta.url).resolve('prom-client')), 'lib');
  const defaultMetrics = createRequire(import.meta.url)(posix.join(promLib, 'defaultMetrics.js'));
  const extra = Object.keys(defaultMetrics).filter((k) => k !== 'metricsList');
  if (typeof defaultMetrics !== 'function' || extra.length)
    throw new Error(
      `bundle: the lazy collectDefaultMetrics does not forward ${extra.join(', ') || 'a non-function'}`,
    );
  const { AjvJsonSchemaValidator } = await import('@modelcontextprotocol/server/validators/ajv');
  const shimmed = ['constructor', 'ajv', 'getValidator'];
  const unshimmed = Object.getOwnPropertyNames(AjvJsonSchemaValidator.prototype).filter(
    (m) => !m.startsWith('_') && !shimmed.includes(m),
  );
  if (unshimmed.length) throw new Error(`bundle: sdk-lazy-ajv does not forward ${unshimmed.join(', ')}`);
}

// Each bundle: ASCII (read as latin1 by src/lib/code-cache.ts), and its hash, the name of its code
// cache: bytecode of another build is never offered to V8 (which checks only the source's length).
const bundles = {
  cli: 'dist/cli/cli.bundle.cjs',
  worker: 'dist/openapi/load-worker.bundle.cjs',
};
const bundleIds = {};
for (const [role, f] of Object.entries(bundles)) {
  if (!outputs.includes(f)) throw new Error(`the bundle has no ${f}: ${outputs}`);
  const bytes = readFileSync(new URL(f, root));
  if (bytes.some((c) => c > 0x7f)) throw new Error(`${f} is not ASCII`);
  bundleIds[role] = createHash('sha256').update(bytes).digest('hex');
}

// The entries that run them (ES modules: the bin keeps its shebang).
const entryResult = await build({
  ...COMMON,
  entryPoints: [
    { in: new URL('src/cli/launch.ts', root).pathname, out: 'cli/main' },
    { in: new URL('src/catalog/launch-worker.ts', root).pathname, out: 'openapi/load-worker' },
  ],
  format: 'esm',
  define: {
    WARDEN_CLI_BUNDLE_ID: JSON.stringify(bundleIds.cli),
    WARDEN_WORKER_BUNDLE_ID: JSON.stringify(bundleIds.worker),
  },
  plugins: [VERSION_PLUGIN],
});
const entryOutputs = Object.keys(entryResult.metafile.outputs).filter((f) => !f.endsWith('.map'));
outputs.push(...entryOutputs);
Object.assign(result.metafile.outputs, entryResult.metafile.outputs);

const entries = ['dist/cli/main.js', 'dist/openapi/load-worker.js'];
for (const e of entries) if (!outputs.includes(e)) throw new Error(`the bundle has no ${e}: ${outputs}`);
const chunks = outputs.filter((f) => !entries.includes(f)).sort();
// What each output imports, as written in it: `npm run check:package` reads this instead of scanning
// minified text (TypeScript's preProcessFile misreads some of it).
// pg's native binding, node-fetch's encoding, undici's SQLite cache store (Node 22's node:sqlite).
const OPTIONAL_REQUIRES = new Set(['pg-native', 'encoding', 'node:sqlite']);
const imports = Object.fromEntries(
  outputs.sort().map((f) => [
    f,
    [
      ...new Set(
        // A CommonJS bundle's every import is a require(); those of OPTIONAL_REQUIRES are inlined
        // packages' optional ones, each in a try: not imports an installed package must resolve.
        result.metafile.outputs[f].imports
          .filter((i) => !(i.kind === 'require-call' && OPTIONAL_REQUIRES.has(i.path)))
          .map((i) =>
            i.external
              ? i.path
              : `./${posix.relative(posix.dirname(f), i.path)}`.replace(/^\.\/\.\.\//, '../'),
          ),
      ),
    ].sort(),
  ]),
);
// The build's identity (the spec cache's key, src/openapi/cache.ts): a hash of every output's final
// text and of the generated modules the loader imports, so that any change to the code that loads a
// spec or builds its catalogue, in whichever chunk, makes cached specs and catalogues misses.
const buildHash = createHash('sha256');
const generated = new URL('generated/', root);
for (const f of [
  ...outputs.sort().map((o) => new URL(o, root)),
  ...readdirSync(generated)
    .filter((g) => g.endsWith('.mjs'))
    .sort()
    .map((g) => new URL(g, generated)),
])
  buildHash
    .update(`${f.pathname.slice(root.pathname.length)}\0`)
    .update(readFileSync(f))
    .update('\0');
const buildId = buildHash.digest('hex');
writeFileSync(manifest, `${JSON.stringify({ entries, chunks, imports, buildId, bundleIds }, null, 2)}\n`);

// The bin keeps its shebang (esbuild keeps the entry's first line) and nothing else named like a chunk lingers.
const main = readFileSync(new URL('dist/cli/main.js', root), 'utf8');
if (!main.startsWith('#!/usr/bin/env node\n')) throw new Error('dist/cli/main.js lost its shebang');
const known = new Set(chunks);
for (const f of readdirSync(new URL('dist/cli/', root)))
  if (/-[A-Z0-9]{8}\.js$/.test(f) && !known.has(`dist/cli/${f}`)) rmSync(new URL(`dist/cli/${f}`, root));
