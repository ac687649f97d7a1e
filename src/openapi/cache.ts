/**
 * A content-addressed cache of loaded specs (issue 22, target 1: start-up). Loading a big spec is
 * mostly parsing, bundling, converting and validating it (Stripe's YAML, Kubernetes' Swagger 2.0,
 * DigitalOcean's 2,850 files); a gateway restarted on the same spec (every MCP client launch) gets
 * the same result from the same bytes. So a successful load of a local spec is stored, keyed by
 * everything that can change its result or its error:
 *
 *   SHA-256( format, package version, the loader's build (this module's URL, size and mtime: a new
 *            build is a new key), V8's version, every load option that matters, the spec's absolute
 *            path, the root file's text )
 *
 * A spec with `$ref`s to other files stores the list of files the bundler read (requested path,
 * real path, SHA-256); a hit needs each to resolve to the same real file with the same bytes (read
 * again: reading is cheap, parsing is not). A spec from a URL, or one that followed a remote `$ref`,
 * is never cached.
 *
 * An entry is as trusted as the spec file (it could change servers or paths): one not owned by this
 * user, or writable by others, in a directory likewise, is ignored. A corrupt or truncated entry is a
 * miss, and removed. Any I/O failure (read-only home, full disk) means loading without the cache,
 * never an error. Off with `--no-spec-cache` (LoadOptions.specCache false) or
 * `MCP_WARDEN_SPEC_CACHE=off`. docs/files.md is the user's side of this.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  futimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  type Stats,
  statSync,
  writeSync,
} from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deserialize, serialize } from 'node:v8';
import { crc32 } from 'node:zlib';
import { specCacheDir } from '../lib/state-dir.js';
import { VERSION } from '../version.js';
import type { PrefetchOptions } from './prefetch.js';
import type { SourceRef } from './read.js';

/** Bumped whenever the entry layout or what a LoadedSpec holds changes. */
const FORMAT = 1;
const MAGIC = Buffer.from('MCPWSPC1');
/** Entries kept, and their total size: after a store, the oldest (by mtime) beyond either go. */
export const MAX_ENTRIES = 16;
export const MAX_TOTAL_BYTES = 512 * 1024 * 1024;
/** A temp file this old was left by a process that died while writing it. */
const STALE_TEMP_MS = 10 * 60 * 1000;

/** What an entry holds besides the spec: the files to check again on a hit. */
interface Header {
  key: string;
  /** The `$ref` root directory, as given and its real path (only with files). */
  root?: [string, string];
  /** [requested path, real path, size, SHA-256 hex] of each file the bundler read. */
  files: Array<[string, string, number, string]>;
  payloadBytes: number;
  crc: number;
}

/** What the loader returns (a LoadedSpec: ./load.ts imports this module, not the other way round). */
interface Loaded {
  source: SourceRef;
  rootText: string;
  doc: unknown;
}

/** The stored part of a LoadedSpec: `source` and `rootText` come from the load at hand. */
type Stored<T extends Loaded> = Omit<T, 'source' | 'rootText'>;

export interface SpecCacheSession<T extends Loaded = Loaded> {
  /** The cached spec for this load, or undefined (a miss, for whatever reason). */
  lookup(): T | undefined;
  /**
   * The same entry's stored bytes, checked but not deserialised (v8 form of the spec without `source`
   * and `rootText`): the prefetch worker moves them to the main thread as they are.
   */
  lookupBytes(): Uint8Array | undefined;
  /** A local file the bundler read (the cache re-checks it on a hit). */
  recordFile(path: string, real: string, bytes: Uint8Array): void;
  /** The `$ref` root directory, as given and its real path (recorded with the files). */
  recordRoot(path: string, real: string): void;
  /** The load followed something the cache cannot check again (a remote `$ref`): never stored. */
  uncacheable(): void;
  /** Stores a successful load (synchronously serialised: the caller may change the spec after). */
  store(spec: T): void;
}

/** The options that can change a load's result or error (a URL fetch's timeout cannot: URLs are not cached). */
const KEYED = ['maxBytes', 'maxDepth', 'maxNodes', 'maxFiles', 'remoteRefs'] as const;

/**
 * A cache session for loading `src`, whose root file read as `text`; undefined when the cache is
 * off, the spec is not a local file, or there is no cache directory.
 */
export function openSpecCache<T extends Loaded>(
  src: SourceRef,
  text: string,
  options: PrefetchOptions,
): SpecCacheSession<T> | undefined {
  if (src.kind !== 'file' || options.specCache === false) return undefined;
  if (/^(off|0|false|no)$/i.test(process.env.MCP_WARDEN_SPEC_CACHE ?? '')) return undefined;
  let dir: string | undefined;
  let code: string;
  try {
    dir = specCacheDir();
    code = codeIdentity();
  } catch {
    return undefined;
  }
  if (!dir) return undefined;
  const h = createHash('sha256');
  h.update(JSON.stringify([FORMAT, VERSION, code, process.versions.v8, src.location]));
  h.update(
    JSON.stringify([
      ...KEYED.map((k) => options[k] ?? null),
      options.refRoot === undefined ? null : resolvePath(options.refRoot),
    ]),
  );
  h.update('\0');
  h.update(text);
  const key = h.digest('hex');
  const file = join(dir, `${key}.spec`);
  const files: Header['files'] = [];
  let root: [string, string] | undefined;
  let storable = true;
  return {
    lookup: () => {
      const hit = read(dir, file, key) as Stored<T> | undefined;
      return hit && ({ source: src, rootText: text, ...hit } as unknown as T);
    },
    lookupBytes: () => read(dir, file, key, true) as Uint8Array | undefined,
    recordFile: (path, real, bytes) => {
      files.push([path, real, bytes.byteLength, sha256(bytes)]);
    },
    recordRoot: (path, real) => {
      root = [path, real];
    },
    uncacheable: () => {
      storable = false;
    },
    store: (spec) => {
      if (!storable) return;
      const { source: _s, rootText: _t, ...rest } = spec;
      write(dir, file, key, root, files, rest);
    },
  };
}

/** The loader's build: where this module is and its size and mtime (in the CLI bundle, a content-hashed chunk). */
let identity: string | undefined;
function codeIdentity(): string {
  if (identity === undefined) {
    const url = import.meta.url;
    let st = '';
    if (url.startsWith('file:')) {
      const s = statSync(fileURLToPath(url));
      st = `${s.size}:${s.mtimeMs}`;
    }
    identity = `${url}|${st}`;
  }
  return identity;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const myUid = typeof process.getuid === 'function' ? process.getuid() : undefined;

/** Why an entry or directory is not to be trusted, or undefined when it is. */
function distrust(st: Stats): string | undefined {
  if (myUid === undefined) return undefined; // Windows: no uid or mode bits to check
  if (st.uid !== myUid) return 'owned by another user';
  if ((st.mode & 0o022) !== 0) return 'writable by group or others';
  return undefined;
}

let warned = false;
let warnTo = (line: string) => {
  process.stderr.write(line);
};
/** Where the warning below goes: the prefetch worker sends it to the main thread, which writes it. */
export function sendCacheWarnings(to: (line: string) => void): void {
  warnTo = to;
}
/** Once per process, on stderr: an entry the cache refused for its owner or mode (no path: it may name a secret place). */
function warnOnce(why: string): void {
  if (warned) return;
  warned = true;
  warnTo(`mcp-warden: spec cache entry ignored: ${why} (see docs/files.md)\n`);
}

function read(dir: string, file: string, key: string, raw = false): Stored<Loaded> | Uint8Array | undefined {
  let fd: number | undefined;
  let corrupt = false;
  try {
    const dst = statSync(dir);
    const bad = dst.isDirectory() ? distrust(dst) : 'not a directory';
    if (bad) {
      warnOnce(`its directory is ${bad}`);
      return undefined;
    }
    // O_NOFOLLOW: the entry itself is never a symlink to somewhere else; O_NONBLOCK: a FIFO put in
    // its place cannot hang the open (fstat below refuses it).
    fd = openSync(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0));
    const st = fstatSync(fd);
    const why = st.isFile() ? distrust(st) : 'not a regular file';
    if (why) {
      warnOnce(`it is ${why}`);
      return undefined;
    }
    const buf = Buffer.allocUnsafe(st.size);
    let off = 0;
    while (off < st.size) {
      const n = readSync(fd, buf, off, st.size - off, null);
      if (n === 0) break;
      off += n;
    }
    corrupt = true;
    if (off !== st.size || st.size < MAGIC.length + 4 || !buf.subarray(0, MAGIC.length).equals(MAGIC))
      return undefined;
    const headerBytes = buf.readUInt32LE(MAGIC.length);
    const start = MAGIC.length + 4;
    if (start + headerBytes > st.size) return undefined;
    const header = JSON.parse(buf.toString('utf8', start, start + headerBytes)) as Header;
    const payload = buf.subarray(start + headerBytes);
    if (header.key !== key || payload.byteLength !== header.payloadBytes || crc32(payload) !== header.crc)
      return undefined;
    corrupt = false;
    if (!filesUnchanged(header)) return undefined;
    if (raw) {
      // Deserialised where it is used (the prefetch's main thread: ./spec-transfer.ts).
      const now = new Date();
      futimesSync(fd, now, now);
      return payload;
    }
    corrupt = true;
    const stored = deserialize(payload) as Stored<Loaded>;
    if (
      stored === null ||
      typeof stored !== 'object' ||
      typeof stored.doc !== 'object' ||
      stored.doc === null
    )
      return undefined;
    corrupt = false;
    // A hit is recent: eviction goes by mtime.
    const now = new Date();
    futimesSync(fd, now, now);
    return stored;
  } catch {
    return undefined;
  } finally {
    quietly(() => fd !== undefined && closeSync(fd));
    if (corrupt) quietly(() => rmSync(file, { force: true }));
  }
}

/** Every file the bundler read still resolves to the same real file with the same bytes. */
function filesUnchanged(h: Header): boolean {
  if (h.files.length === 0) return true;
  if (h.root === undefined) return false;
  try {
    if (realpathSync.native(h.root[0]) !== h.root[1]) return false;
    for (const [path, real, size, hash] of h.files) {
      if (realpathSync.native(path) !== real) return false;
      const st = statSync(real);
      if (!st.isFile() || st.size !== size) return false;
      if (sha256(readFileSync(real)) !== hash) return false;
    }
    return true;
  } catch {
    return false;
  }
}

function write(
  dir: string,
  file: string,
  key: string,
  root: [string, string] | undefined,
  files: Header['files'],
  value: Stored<Loaded>,
): void {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  let fd: number | undefined;
  let created = false;
  try {
    if (files.length > 0 && root === undefined) return;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const dst = statSync(dir);
    if (!dst.isDirectory() || distrust(dst)) return;
    const payload = serialize(value);
    const header: Header = {
      key,
      ...(root !== undefined ? { root } : {}),
      files,
      payloadBytes: payload.byteLength,
      crc: crc32(payload),
    };
    const headerBuf = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(headerBuf.byteLength);
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    created = true;
    for (const b of [MAGIC, len, headerBuf, payload]) {
      let off = 0;
      while (off < b.byteLength) off += writeSync(fd, b, off, b.byteLength - off);
    }
    closeSync(fd);
    fd = undefined;
    // Atomic: a reader sees the whole entry or none; two processes storing the same key write the same.
    renameSync(tmp, file);
    created = false;
    evict(dir);
  } catch {
    // Read-only home, full disk, no permission: the load itself succeeded, the cache just stays as it was.
  } finally {
    quietly(() => fd !== undefined && closeSync(fd));
    if (created) quietly(() => rmSync(tmp, { force: true }));
  }
}

/** The cache never fails a load: what it cannot do, it leaves undone. */
function quietly(f: () => unknown): void {
  try {
    f();
  } catch {
    // Nothing to do: see above.
  }
}

/** Keeps the newest MAX_ENTRIES entries within MAX_TOTAL_BYTES; removes temp files of dead writers. */
function evict(dir: string): void {
  const entries: Array<{ path: string; size: number; mtime: number }> = [];
  const now = Date.now();
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    try {
      const st = statSync(path);
      if (!st.isFile()) continue;
      if (name.endsWith('.tmp')) {
        if (now - st.mtimeMs > STALE_TEMP_MS) rmSync(path, { force: true });
      } else if (name.endsWith('.spec')) {
        entries.push({ path, size: st.size, mtime: st.mtimeMs });
      }
    } catch {
      // Gone meanwhile (another process evicting).
    }
  }
  entries.sort((a, b) => b.mtime - a.mtime);
  let total = 0;
  entries.forEach((e, i) => {
    total += e.size;
    if (i >= MAX_ENTRIES || (i > 0 && total > MAX_TOTAL_BYTES)) rmSync(e.path, { force: true });
  });
}
