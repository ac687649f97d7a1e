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
import { createHash, hash } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  futimesSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  type Stats,
  statfsSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve as resolvePath, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { readAll } from '../lib/read-all.js';
import { specCacheDir } from '../lib/state-dir.js';
import { VERSION } from '../version.js';
import type { PrefetchOptions } from './prefetch.js';
import type { SourceRef } from './read.js';
import { decodeStored, type EncodedDoc, encodeStored } from './spec-transfer.js';

/**
 * Bumped whenever the entry layout or what a LoadedSpec holds changes (it is in the key: an entry
 * of another format is never read; the magic changes with it too). 2: the payload is
 * ./spec-transfer.ts `encodeStored` (the document as JSON, read lazily), no longer v8 alone.
 */
const FORMAT = 2;
const MAGIC = Buffer.from('MCPWSPC2');
/**
 * Entries kept, and their total size: after a store, the oldest (by mtime) beyond either go. More
 * entries than one gateway's specs (and a build or two of each): with 16, a set of 17 specs, or 8
 * served by two builds in turn, evicted on every start the entry the next start needed (all misses).
 */
export const MAX_ENTRIES = 64;
export const MAX_TOTAL_BYTES = 512 * 1024 * 1024;
/** A temp file this old was left by a process that died while writing it. */
const STALE_TEMP_MS = 10 * 60 * 1000;

/** The header every cache file starts with (`readFramed`). */
interface Framed {
  key: string;
  payloadBytes: number;
  crc: number;
}

/** What an entry holds besides the spec: the files to check again on a hit. */
interface Header extends Framed {
  /** The `$ref` root directory, as given and its real path (only with files). */
  root?: [string, string];
  /**
   * [requested path, real path, size, SHA-256 hex, fingerprint?] of each file the bundler read. The
   * fingerprint (`Fingerprint`) is kept only for a file that had settled when it was read.
   */
  files: Array<[string, string, number, string, Fingerprint?]>;
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
   * The same entry's stored bytes, checked but not decoded (./spec-transfer.ts `encodeStored` of the
   * spec without `source` and `rootText`): the prefetch worker moves them to the main thread as they are.
   */
  lookupBytes(): Uint8Array | undefined;
  /** This spec's entry file: removed by whoever decodes `lookupBytes`' bytes and finds them damaged. */
  readonly entryFile: string;
  /**
   * A local file the bundler read (the cache re-checks it on a hit): `before` is its stat taken
   * before the read, at `statAt` (Date.now()); with it, a settled file is re-checked by its stat.
   */
  recordFile(path: string, real: string, bytes: Uint8Array, before?: Stats, statAt?: number): void;
  /** The `$ref` root directory, as given and its real path (recorded with the files). */
  recordRoot(path: string, real: string): void;
  /** The load followed something the cache cannot check again (a remote `$ref`): never stored. */
  uncacheable(): void;
  /**
   * Stores a successful load (synchronously serialised: the caller may change the spec after), with
   * its document's JSON form when made already (./spec-transfer.ts `packSpec`; used only for that
   * very document object).
   */
  store(spec: T, encoded?: EncodedDoc): void;
  /**
   * The catalogue snapshot kept beside the entry this session read or stored (../catalog/snapshot.ts),
   * checked (trust, checksum, made for exactly that entry) but not decoded; undefined if none.
   */
  lookupCatalog(): Uint8Array | undefined;
  /** Keeps a catalogue snapshot beside the entry this session read or stored (else does nothing). */
  storeCatalog(bytes: Uint8Array): void;
}

/** The options that can change a load's result or error (a URL fetch's timeout cannot: URLs are not cached). */
const KEYED = ['maxBytes', 'maxDepth', 'maxNodes', 'maxFiles', 'remoteRefs'] as const;

/**
 * A cache session for loading `src`, whose root file read as `text` (from `bytes`, when given: they
 * are hashed instead, the same key when they are valid UTF-8, and an eighth of the time); undefined
 * when the cache is off, the spec is not a local file, or there is no cache directory.
 */
export function openSpecCache<T extends Loaded>(
  src: SourceRef,
  text: string,
  options: PrefetchOptions,
  bytes?: Uint8Array,
): SpecCacheSession<T> | undefined {
  if (src.kind !== 'file' || options.specCache === false) return undefined;
  const refresh = options.specCache === 'refresh';
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
  h.update(bytes ?? text);
  const key = h.digest('hex');
  const file = join(dir, `${key}.spec`);
  const catalogFile = join(dir, `${key}${CATALOG_SUFFIX}`);
  const files: Header['files'] = [];
  let root: [string, string] | undefined;
  let storable = true;
  /** The entry read or stored by this session (its payload's size and checksum): what a snapshot belongs to. */
  let entry: EntryId | undefined;
  const seen = (id: EntryId) => {
    entry = id;
  };
  return {
    // 'refresh': the entry is not read (a copy of it was damaged: `isDamagedCopy`), only replaced.
    lookup: () => {
      if (refresh) return undefined;
      const hit = read(dir, file, key, false, seen) as Stored<T> | undefined;
      return hit && ({ source: src, rootText: text, ...hit } as unknown as T);
    },
    lookupBytes: () => (refresh ? undefined : (read(dir, file, key, true, seen) as Uint8Array | undefined)),
    entryFile: file,
    lookupCatalog: () => (entry ? readCatalog(dir, catalogFile, key, entry) : undefined),
    storeCatalog: (bytes) => {
      if (entry) writeCatalog(dir, catalogFile, key, entry, bytes);
    },
    recordFile: (path, real, bytes, before, statAt) => {
      const sum = sha256(bytes);
      const settled =
        before !== undefined &&
        statAt !== undefined &&
        before.isFile() &&
        before.size === bytes.byteLength &&
        before.ctimeMs < statAt - racyMs &&
        // Whole seconds: a file system that keeps no finer times (sshfs and other FUSE or network ones,
        // where ctime may be only mtime again) is re-checked by its bytes, never by its stat.
        before.ctimeMs % 1000 !== 0;
      files.push(
        settled
          ? [path, real, bytes.byteLength, sum, fingerprint(before)]
          : [path, real, bytes.byteLength, sum],
      );
    },
    recordRoot: (path, real) => {
      root = [path, real];
    },
    uncacheable: () => {
      storable = false;
    },
    store: (spec, encoded) => {
      if (!storable) return;
      const { source: _s, rootText: _t, ...rest } = spec;
      const id = write(dir, file, key, root, files, rest, encoded);
      if (id) seen(id);
    },
  };
}

/**
 * The build that loads specs and builds catalogues: a new build is a new key. In the CLI bundle,
 * the content hash of the whole bundle that scripts/bundle-cli.mjs writes to dist/bundle.json (the
 * loader and the catalogue sit in different chunks); elsewhere (tsc's dist/, or the sources run by
 * tsx or vitest) the path, size and mtime of every module beside this one's directory (`codeTree`).
 */
let identity: string | undefined;
let identityOverride: string | undefined;
function codeIdentity(): string {
  if (identityOverride !== undefined) return identityOverride;
  // Unbundled, the tree's modules and the generated meta-schema validators they import (../../generated).
  identity ??=
    bundleIdentity(import.meta.url) ?? `tree:${codeTree(new URL('../', import.meta.url))}:${generatedTree()}`;
  return identity;
}

function generatedTree(): string {
  try {
    return codeTree(new URL('../../generated/', import.meta.url));
  } catch {
    return 'none';
  }
}

/** Tests only: stands for another build of the code (undefined: this one). */
export function overrideCodeIdentity(id: string | undefined): void {
  identityOverride = id;
}

/** The bundle's build id, when `moduleUrl` is one of the files dist/bundle.json lists. */
export function bundleIdentity(moduleUrl: string): string | undefined {
  if (!moduleUrl.startsWith('file:')) return undefined;
  try {
    const dist = new URL('../', moduleUrl);
    const m = JSON.parse(readFileSync(new URL('bundle.json', dist), 'utf8')) as {
      entries?: unknown;
      chunks?: unknown;
      buildId?: unknown;
    };
    const rel = `dist/${fileURLToPath(moduleUrl).slice(fileURLToPath(dist).length)}`.replaceAll('\\', '/');
    const files = [
      ...(Array.isArray(m.entries) ? m.entries : []),
      ...(Array.isArray(m.chunks) ? m.chunks : []),
    ];
    return typeof m.buildId === 'string' && files.includes(rel) ? `bundle:${m.buildId}` : undefined;
  } catch {
    return undefined;
  }
}

/** SHA-256 over the path, size and mtime of every .js/.ts/.mjs module under `dir` (a code tree). */
export function codeTree(dir: URL): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(m?js|ts)$/.test(e.name) && !e.name.endsWith('.d.ts')) {
        const st = statSync(p);
        h.update(`${p}\0${st.size}\0${st.mtimeMs}\n`);
      }
    }
  };
  walk(fileURLToPath(dir));
  return h.digest('hex');
}

// crypto.hash (Node 20.12+; engines: 20.18.1): one call, no Hash object, for thousands of small files.
const sha256 = (b: Uint8Array) => hash('sha256', b);
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

/** An entry's payload, by size and checksum: a catalogue snapshot names the entry it was made from. */
interface EntryId {
  bytes: number;
  crc: number;
}

function read(
  dir: string,
  file: string,
  key: string,
  raw = false,
  onHit: (id: EntryId) => void = () => {},
): Stored<Loaded> | Uint8Array | undefined {
  return readFramed<Header, Stored<Loaded> | Uint8Array>(dir, file, MAGIC, key, (header, payload) => {
    if (!filesUnchanged(header)) return MISS;
    // Decoded where it is used when raw (the prefetch's main thread: ./spec-transfer.ts).
    const stored = raw
      ? payload
      : (decodeStored(payload, () => quietly(() => rmSync(file, { force: true }))) as
          | Stored<Loaded>
          | undefined);
    if (stored) onHit({ bytes: header.payloadBytes, crc: header.crc });
    return stored;
  });
}

/** What a `readFramed` reader returns for a sound file it does not use (kept, not removed). */
const MISS = Symbol('miss');

/**
 * The one reading of a cache file (an entry or a catalogue snapshot): trusted (`openTrusted`), read
 * whole, `magic`, a 4-byte header length, a JSON header naming `key` and the payload's size and
 * CRC-32, then the payload. `use` gets a file that passed all that; what it returns is the result
 * (the file is touched: eviction goes by mtime). A file that fails a check, or that `use` cannot use
 * (undefined, or a throw), is damaged and removed; MISS leaves it as it is.
 */
function readFramed<H extends Framed, T>(
  dir: string,
  file: string,
  magic: Buffer,
  key: string,
  use: (header: H, payload: Buffer) => T | undefined | typeof MISS,
): T | undefined {
  let fd: number | undefined;
  let corrupt = false;
  try {
    fd = openTrusted(dir, file);
    if (fd === undefined) return undefined;
    const { buf, complete } = readAll(fd);
    corrupt = true;
    const start = magic.length + 4;
    if (!complete || buf.byteLength < start || !buf.subarray(0, magic.length).equals(magic)) return undefined;
    const headerBytes = buf.readUInt32LE(magic.length);
    if (start + headerBytes > buf.byteLength) return undefined;
    const header = JSON.parse(buf.toString('utf8', start, start + headerBytes)) as H | null;
    const payload = buf.subarray(start + headerBytes);
    if (
      header === null ||
      typeof header !== 'object' ||
      header.key !== key ||
      payload.byteLength !== header.payloadBytes ||
      crc32(payload) !== header.crc
    )
      return undefined;
    const r = use(header, payload);
    if (r === MISS) {
      corrupt = false;
      return undefined;
    }
    if (r === undefined) return undefined;
    corrupt = false;
    const now = new Date();
    futimesSync(fd, now, now);
    return r;
  } catch {
    return undefined;
  } finally {
    quietly(() => fd !== undefined && closeSync(fd));
    if (corrupt) quietly(() => rmSync(file, { force: true }));
  }
}

/**
 * The file opened for reading when it and its directory are to be trusted (see `distrust`; a refusal
 * is warned of once), else undefined. Throws what the file system throws (a missing file).
 */
function openTrusted(dir: string, file: string): number | undefined {
  const dst = statSync(dir);
  const bad = dst.isDirectory() ? distrust(dst) : 'not a directory';
  if (bad) {
    warnOnce(`its directory is ${bad}`);
    return undefined;
  }
  // O_NOFOLLOW: the entry itself is never a symlink to somewhere else; O_NONBLOCK: a FIFO put in
  // its place cannot hang the open (fstat below refuses it).
  const fd = openSync(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0));
  const st = fstatSync(fd);
  const why = st.isFile() ? distrust(st) : 'not a regular file';
  if (why) {
    closeSync(fd);
    warnOnce(`it is ${why}`);
    return undefined;
  }
  return fd;
}

/**
 * A catalogue snapshot beside an entry: the same trust checks and atomic writes, a magic of its own,
 * and a header naming the cache key and the entry's payload (size, checksum) it was made from, so it
 * is never paired with another entry. The key already covers the code that builds catalogues (see
 * `codeIdentity`).
 */
const CATALOG_SUFFIX = '.catalog';
const CATALOG_MAGIC = Buffer.from('MCPWCAT1');

interface CatalogHeader extends Framed {
  entry: EntryId;
}

function readCatalog(dir: string, file: string, key: string, entry: EntryId): Uint8Array | undefined {
  // Made for another entry of the same key (one since replaced): damaged for this one, removed.
  return readFramed<CatalogHeader, Uint8Array>(dir, file, CATALOG_MAGIC, key, (h, payload) =>
    h.entry?.bytes === entry.bytes && h.entry?.crc === entry.crc ? payload : undefined,
  );
}

function writeCatalog(dir: string, file: string, key: string, entry: EntryId, payload: Uint8Array): void {
  const header: CatalogHeader = { key, entry, payloadBytes: payload.byteLength, crc: crc32(payload) };
  const headerBuf = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(headerBuf.byteLength);
  writeAtomic(dir, file, [CATALOG_MAGIC, len, headerBuf, payload]);
}

/** Writes `parts` as `file` (0600, via a temp file and a rename); false when it could not. */
function writeAtomic(dir: string, file: string, parts: Uint8Array[]): boolean {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  let fd: number | undefined;
  let created = false;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const dst = statSync(dir);
    if (!dst.isDirectory() || distrust(dst)) return false;
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    created = true;
    for (const b of parts) {
      let off = 0;
      while (off < b.byteLength) off += writeSync(fd, b, off, b.byteLength - off);
    }
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, file);
    created = false;
    evict(dir);
    return true;
  } catch {
    return false;
  } finally {
    quietly(() => fd !== undefined && closeSync(fd));
    if (created) quietly(() => rmSync(tmp, { force: true }));
  }
}

/**
 * A file's identity and last change as fstat gives them: device, inode, mtime, ctime (the size is
 * beside it in the entry). No write, truncation, rename or replacement of a file leaves all of them as
 * they were: ctime (the inode's change time) is set by the kernel on every change and cannot be set
 * back by a user (utimes sets it to now). The one way two versions of a file share a fingerprint is
 * two changes within one tick of the file system's clock (milliseconds; seconds on some): so one is
 * recorded only for a file whose ctime was older than `racyMs` when its stat was taken, before its
 * read ("settled", git's racy-clean rule); a change after that stat moves the ctime. Times in ms with
 * the sub-millisecond part a double keeps (bigint stats cost ~15 % more per file; a 64-bit inode a
 * double rounds still needs the same device, size and both times to the microsecond).
 */
type Fingerprint = [dev: number, ino: number, mtimeMs: number, ctimeMs: number];
function fingerprint(st: Stats): Fingerprint {
  return [st.dev, st.ino, st.mtimeMs, st.ctimeMs];
}

/** A file changed less than this long before its read is re-checked by its bytes, never by its stat. */
const RACY_MS = 5000;
let racyMs = RACY_MS;
/** Tests only: the settling time of `fingerprint` (undefined: the default). */
export function overrideRacyWindow(ms: number | undefined): void {
  racyMs = ms ?? RACY_MS;
}

/**
 * `path`'s name joined to `realDir`, its folder's real path — the file's own real path when the file
 * is no symlink — or undefined for a name that is no file's (`''`, `.`, `..`). Without join()'s
 * normalising pass (~10 % of a warm check of DigitalOcean's files): a realpath is already normal,
 * and a base name holds no separator.
 */
export function inRealDir(realDir: string, path: string): string | undefined {
  const name = basename(path);
  if (name === '' || name === '.' || name === '..') return undefined;
  return realDir.endsWith(sep) ? realDir + name : realDir + sep + name;
}

/**
 * Every file the bundler read still resolves to the same real file with the same bytes. A file whose
 * directory resolves (once per directory) to the recorded real one, and which is itself no symlink
 * (opened with O_NOFOLLOW), resolves to `real` without a realpath of its own: DigitalOcean's
 * 2,849 files took a fresh main thread ~220 ms CPU with a realpath, a stat and a read each, ~180 ms so
 * (same-run, in process). A file recorded with a fingerprint (settled when read) that fstat finds
 * unchanged is not read again: open, fstat and close instead of two fstats, a read and a SHA-256
 * (issue 22, DigitalOcean's warm start). Any other file is read and hashed as before; anything else
 * (a symlinked file) is resolved in full.
 */
function filesUnchanged(h: Header): boolean {
  if (h.files.length === 0) return true;
  if (h.root === undefined) return false;
  try {
    if (realpathSync.native(h.root[0]) !== h.root[1]) return false;
    // `local`: the directory's device when it is on a local file system (see sameStat).
    const dirs = new Map<string, { realDir: string; local: number | undefined }>();
    for (const [path, real, size, sum, print] of h.files) {
      const d = dirname(path);
      let dir = dirs.get(d);
      if (dir === undefined) {
        const realDir = realpathSync.native(d);
        dir = { realDir, local: localFs(realDir) ? statSync(realDir).dev : undefined };
        dirs.set(d, dir);
      }
      const direct = inRealDir(dir.realDir, path) === real;
      if (
        direct &&
        print !== undefined &&
        (dir.local !== undefined ? sameStat(real, size, print, dir.local) : sameFile(real, size, print))
      )
        continue;
      const bytes =
        (direct && readPlain(real, size)) || (realpathSync.native(path) === real && readPlain(real, size));
      if (!bytes || sha256(bytes) !== sum) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * `file` is a regular file of `size` bytes, no symlink, with the fingerprint `print`. Opened and
 * fstat'ed rather than lstat'ed: an NFS client checks a file's attributes with the server at open
 * (close-to-open), while it may answer lstat from its attribute cache for up to a minute, so a file
 * changed from another machine could look unchanged. Still no read nor hash (DigitalOcean's 2,849
 * files: ~50 ms per pass against ~80, lstat alone ~32; micro-benchmark, loaded machine).
 */
function sameFile(file: string, size: number, print: Fingerprint): boolean {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0));
  } catch {
    return false;
  }
  try {
    return matchesPrint(fstatSync(fd), size, print);
  } finally {
    closeSync(fd);
  }
}

/**
 * As sameFile, by one lstat, on a file system whose stat shows every change (`localFs`): one system
 * call instead of three (DigitalOcean's 2,849 files: ~20 ms against ~40 per check, same run). A file
 * on another device than its directory (a file bind-mounted from elsewhere) is opened as sameFile does.
 */
function sameStat(file: string, size: number, print: Fingerprint, dirDev: number): boolean {
  const st = lstatSync(file, { throwIfNoEntry: false });
  if (st === undefined) return false;
  return st.dev === dirDev ? matchesPrint(st, size, print) : sameFile(file, size, print);
}

/** A stat of a regular file of `size` bytes with the fingerprint `print`. */
function matchesPrint(st: Stats, size: number, print: Fingerprint): boolean {
  return (
    st.isFile() &&
    Array.isArray(print) &&
    st.size === size &&
    st.dev === print[0] &&
    st.ino === print[1] &&
    st.mtimeMs === print[2] &&
    st.ctimeMs === print[3]
  );
}

/**
 * Local file systems (Linux `statfs` magic numbers): a change made to a file, by any process, shows
 * in its next stat. Any other — NFS, SMB, FUSE, 9p, or any system but Linux, where these numbers
 * mean nothing — is checked by open and fstat (sameFile).
 */
const LOCAL_FS = new Set([
  0xef53, // ext2, ext3, ext4
  0x58465342, // xfs
  0x9123683e, // btrfs
  0x01021994, // tmpfs
  0x794c7630, // overlayfs
  0x2fc12fc1, // zfs
  0xf2f52010, // f2fs
]);
export function isLocalFileSystem(dir: string): boolean {
  if (process.platform !== 'linux') return false;
  try {
    return LOCAL_FS.has(statfsSync(dir).type);
  } catch {
    return false;
  }
}
let localFs = isLocalFileSystem;
/** Tests only: which directories count as on a local file system (undefined: the real check). */
export function overrideLocalFs(f: ((dir: string) => boolean) | undefined): void {
  localFs = f ?? isLocalFileSystem;
}

/** The bytes of a regular file of `size` bytes that is no symlink (undefined for anything else). */
function readPlain(file: string, size: number): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0));
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size !== size) return undefined;
    const { buf, complete } = readAll(fd, size);
    return complete && buf.byteLength === size ? buf : undefined;
  } finally {
    closeSync(fd);
  }
}

function write(
  dir: string,
  file: string,
  key: string,
  root: [string, string] | undefined,
  files: Header['files'],
  value: Stored<Loaded>,
  encoded: EncodedDoc | undefined,
): EntryId | undefined {
  try {
    if (files.length > 0 && root === undefined) return undefined;
    const parts = encodeStored(value as unknown as Record<string, unknown>, encoded);
    const payloadBytes = parts.reduce((n, p) => n + p.byteLength, 0);
    const crc = parts.reduce((c, p) => crc32(p, c), 0);
    const header: Header = { key, ...(root !== undefined ? { root } : {}), files, payloadBytes, crc };
    const headerBuf = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(headerBuf.byteLength);
    // Atomic: a reader sees the whole entry or none; two processes storing the same key write the same.
    if (!writeAtomic(dir, file, [MAGIC, len, headerBuf, ...parts])) return undefined;
    return { bytes: header.payloadBytes, crc: header.crc };
  } catch {
    // Read-only home, full disk, no permission: the load itself succeeded, the cache just stays as it was.
    return undefined;
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

/**
 * Keeps the newest MAX_ENTRIES entries within MAX_TOTAL_BYTES (an entry counts with its catalogue
 * snapshot, and goes with it); removes temp files of dead writers and snapshots without an entry.
 */
function evict(dir: string): void {
  const entries: Array<{ path: string; size: number; mtime: number }> = [];
  const catalogs = new Map<string, number>();
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
      } else if (name.endsWith(CATALOG_SUFFIX)) {
        catalogs.set(path.slice(0, -CATALOG_SUFFIX.length), st.size);
      }
    } catch {
      // Gone meanwhile (another process evicting).
    }
  }
  entries.sort((a, b) => b.mtime - a.mtime);
  let total = 0;
  entries.forEach((e, i) => {
    const base = e.path.slice(0, -'.spec'.length);
    total += e.size + (catalogs.get(base) ?? 0);
    if (i >= MAX_ENTRIES || (i > 0 && total > MAX_TOTAL_BYTES)) {
      rmSync(e.path, { force: true });
      rmSync(`${base}${CATALOG_SUFFIX}`, { force: true });
    }
    catalogs.delete(base);
  });
  for (const base of catalogs.keys()) rmSync(`${base}${CATALOG_SUFFIX}`, { force: true });
}
