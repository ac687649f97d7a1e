import { hash } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  type Stats,
} from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { Script } from 'node:vm';
import { writePrivateFile } from './private-file.js';
import { readAll } from './read-all.js';
import { codeCacheDir } from './state-dir.js';

/**
 * V8's code cache for the CLI's bundle (issue 22: compiling the program's code was a large share of
 * every start and of a first call). Node 20 gives ES modules no code cache (`module.enableCompileCache`
 * is Node 22's), so the build writes the CLI, and the spec loader's worker, each as one CommonJS
 * script (scripts/bundle-cli.mjs) that a small entry runs here through `vm.Script`: with the bytecode a
 * previous start left in the cache, V8 neither parses nor compiles what it holds.
 *
 * The cache is an optimisation only: any file that is absent, unreadable, not ours, of another build
 * or Node, or whose checksum does not match is ignored (V8 checks only its own version, flags and the
 * source's length, not the bytes), and a new one is written once this process has run the code worth
 * keeping. docs/files.md is the user's side of this.
 */

const HOOK = Symbol.for('mcp-warden.code-cache');
const IMPORT = Symbol.for('mcp-warden.import');
const MAGIC = Buffer.from('MWCODE01');
const HEADER = MAGIC.length + 32;
/** A cache bigger than this is not ours (the CLI's is a few MB). */
const MAX_BYTES = 128 * 1024 * 1024;

/** What the last runBundle did with the cache: none to use (or off), used, or refused by V8. */
export type CodeCacheState = 'off' | 'none' | 'used' | 'rejected';

interface Hook {
  readonly state: CodeCacheState;
  /** Writes the cache now if this process should (none was used); once. */
  save(): void;
  /** A V8 flag changed at run time and how to put it back for the cache's flag hash (see noteRuntimeFlag). */
  flag(reset: string, again: string): void;
}

export interface RunOptions {
  /** The bundle: a script whose value is `function (exports, require, module, __filename, __dirname)`. */
  file: string;
  /** The build's hash of that file (the cache's name): bytecode of another build is never offered to V8. */
  id: string;
  /** `serve`, `cli` (the other commands) or `worker`: each kind of run keeps its own cache. */
  role: string;
  /** Where the cache lives (default: codeCacheDir()); undefined: no cache. */
  dir?: string | undefined;
}

/** Runs the bundle `file` with V8's code cache and returns its `module.exports`. */
export function runBundle(o: RunOptions): unknown {
  const fd = openSync(o.file, 'r');
  let source: string;
  let st: Stats;
  try {
    st = fstatSync(fd);
    // The bundle is ASCII (the build checks): a latin1 string of it is V8's external one-byte string,
    // not a copy on the JS heap.
    source = readAll(fd, st.size).buf.toString('latin1');
  } finally {
    closeSync(fd);
  }
  const dir = 'dir' in o ? o.dir : codeCacheDir();
  const cacheFile =
    dir === undefined
      ? undefined
      : join(dir, `${o.role}-${o.id.slice(0, 32)}-${process.version}-${process.arch}.bin`);
  // The file's identity, size and change time (ctime: no write or utimes leaves it as it was), with
  // the build's id, are the cache's key: a bundle edited in place (same length) must not run the old
  // bytecode.
  const key = `${o.id}\0${st.dev}\0${st.ino}\0${st.size}\0${st.ctimeMs}`;
  const cachedData = cacheFile ? readCache(cacheFile, key) : undefined;
  const script = new Script(source, {
    filename: o.file,
    ...(cachedData ? { cachedData } : {}),
  });
  const state: CodeCacheState =
    cacheFile === undefined ? 'off' : !cachedData ? 'none' : script.cachedDataRejected ? 'rejected' : 'used';
  let pending = state === 'none' || state === 'rejected';
  const flags: Array<[reset: string, again: string]> = [];
  const hook: Hook = {
    state,
    save() {
      if (!pending || !cacheFile) return;
      pending = false;
      try {
        // V8 keys the cache by its flags: flags changed since the start are put back for the moment
        // the cache is made, as the next start (which has not changed them yet) checks them.
        for (const [reset] of flags) setFlagsFromString(reset);
        let data: Buffer;
        try {
          data = script.createCachedData();
        } finally {
          for (const [, again] of flags) setFlagsFromString(again);
        }
        writeCache(cacheFile, key, data);
      } catch {
        // A cache not written is the next start compiling again, nothing more.
      }
    },
    flag(reset, again) {
      flags.push([reset, again]);
    },
  };
  (globalThis as Record<symbol, unknown>)[HOOK] = hook;
  // A CommonJS script has no import() of its own (vm's would need --experimental-vm-modules): this
  // ES module lends its own to importModule below.
  (globalThis as Record<symbol, unknown>)[IMPORT] = (href: string) => import(href);
  // A command that ends before the program asked for it (scan, policy check…): at exit.
  if (pending) process.once('exit', () => hook.save());
  const fn = script.runInThisContext() as (
    exports: unknown,
    require: NodeJS.Require,
    module: { exports: unknown },
    filename: string,
    dirname: string,
  ) => void;
  const module = { exports: {} as unknown };
  fn.call(module.exports, module.exports, createRequire(o.file), module, o.file, dirname(o.file));
  return module.exports;
}

/**
 * Asks the entry that ran this bundle to write the code cache now, if it is to write one: called once
 * the code a start and a first call run has been compiled (after the first list's warm-up). Nothing
 * when the CLI did not start through runBundle (tests, tsc's output).
 */
export function saveCodeCache(): void {
  ((globalThis as Record<symbol, unknown>)[HOOK] as Hook | undefined)?.save();
}

/**
 * `import(href)` of an ES module file outside the bundle (the generated validators), from the
 * bundle's CommonJS too: through the entry's import() when runBundle ran it.
 */
export function importModule(href: string): Promise<unknown> {
  const lent = (globalThis as Record<symbol, unknown>)[IMPORT] as
    | ((h: string) => Promise<unknown>)
    | undefined;
  return lent ? lent(href) : import(href);
}

/** What the entry that ran this bundle did with the code cache; undefined when none did. */
export function codeCacheState(): CodeCacheState | undefined {
  return ((globalThis as Record<symbol, unknown>)[HOOK] as Hook | undefined)?.state;
}

/** A V8 flag set at run time (`again`), and the value it had at the start (`reset`): see save(). */
export function noteRuntimeFlag(reset: string, again: string): void {
  ((globalThis as Record<symbol, unknown>)[HOOK] as Hook | undefined)?.flag(reset, again);
}

/** The cached data in `file` when it is ours, whole and made for `key`; otherwise undefined. */
function readCache(file: string, key: string): Buffer | undefined {
  let fd: number | undefined;
  try {
    // The folder too: in one others may write, a link to any file of ours would pass the file's checks.
    if (!trustedDir(dirname(file))) return undefined;
    // Not through a link; not blocking on a FIFO planted under the name.
    fd = openSync(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0));
    const st = fstatSync(fd);
    if (!st.isFile() || st.nlink > 1 || st.size > MAX_BYTES || distrusted(st)) return undefined;
    const buf = readAll(fd, st.size).buf;
    if (buf.length < st.size || buf.length < HEADER || !buf.subarray(0, MAGIC.length).equals(MAGIC))
      return undefined;
    const sum = buf.subarray(MAGIC.length, HEADER);
    const data = buf.subarray(HEADER);
    return sum.equals(checksum(key, data)) ? data : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function writeCache(file: string, key: string, data: Buffer): void {
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!trustedDir(dir)) return;
  writePrivateFile(file, Buffer.concat([MAGIC, checksum(key, data), data]));
  tidy(dir, basename(file));
}

/** Caches kept per kind of run (several installed versions may take turns); the oldest go first. */
export const KEEP_PER_ROLE = 4;
/** A temporary file older than this was left by a writer that stopped (a worker terminated mid-write). */
const STALE_TMP_MS = 60_000;

/** Removes what earlier writes left: other builds' caches of this role past KEEP_PER_ROLE, dead temporary files. */
function tidy(dir: string, written: string): void {
  const role = written.slice(0, written.indexOf('-') + 1);
  const now = Date.now();
  const mine: Array<[name: string, mtimeMs: number]> = [];
  for (const name of readdirSync(dir)) {
    // Only names this module writes: the folder may be one the user named, holding other files.
    const ours = CACHE_NAME.exec(name.startsWith('.') ? name.slice(1) : name);
    if (!ours) continue;
    try {
      const at = lstatSync(join(dir, name)).mtimeMs;
      if (ours[1] !== undefined) {
        if (name.startsWith('.') && now - at > STALE_TMP_MS) rmSync(join(dir, name), { force: true });
      } else if (!name.startsWith('.') && name.startsWith(role)) mine.push([name, at]);
    } catch {
      // Gone meanwhile (another process tidying): nothing to do.
    }
  }
  mine.sort((a, b) => b[1] - a[1]);
  for (const [name] of mine.slice(KEEP_PER_ROLE))
    if (name !== written) rmSync(join(dir, name), { force: true });
}

/** A cache file's name (`<role>-<id>-<node version>-<arch>.bin`), or its temporary file's (private-file.ts). */
const CACHE_NAME = /^[a-z]+-[0-9a-f]{1,32}-v\d+\.\d+\.\d+-\w+\.bin(\.\d+\.\d+\.tmp)?$/;

/** A folder of ours that others cannot write, and not a link to one somewhere else. */
function trustedDir(dir: string): boolean {
  const st = lstatSync(dir);
  return st.isDirectory() && !distrusted(st);
}

/** SHA-256 over the key and the data: a torn, truncated or foreign file never reaches V8. */
function checksum(key: string, data: Buffer): Buffer {
  return Buffer.from(hash('sha256', Buffer.concat([Buffer.from(`${key}\0`), data]), 'hex'), 'hex');
}

const myUid = typeof process.getuid === 'function' ? process.getuid() : undefined;
/** Another user's file or directory, or one others may write, is not run as our code. */
function distrusted(st: Stats): boolean {
  if (myUid === undefined) return false; // Windows: no uid or mode bits to check
  return st.uid !== myUid || (st.mode & 0o022) !== 0;
}
