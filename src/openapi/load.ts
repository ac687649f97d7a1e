import { closeSync, constants, existsSync, fstatSync, openSync, readlinkSync, realpathSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { dirname, relative, resolve as resolvePath, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ErrorCode } from '../errors/codes.js';
// Not the errors barrel: it pulls in the MCP SDK, which the spec-loading worker thread never needs.
import { WardenError } from '../errors/error.js';
import { readAll } from '../lib/read-all.js';
import { inRealDir, openSpecCache, type SpecCacheSession } from './cache.js';
import { checkShape, getByPointer, isJsonText, parseText, type ShapeLimits } from './parse.js';
import { type PrefetchOptions, takePrefetched } from './prefetch.js';
import { describeSource, fetchText, readSource, type SourceRef } from './read.js';
import { deviationWarning, repairSpec, type SpecDeviation } from './repair.js';
import { attachCatalogSnapshot, type EncodedDoc } from './spec-transfer.js';
import { validateSpec } from './validate.js';

export interface LoadOptions extends PrefetchOptions {
  onProgress?: (message: string) => void;
  /**
   * Called with the result before the meta-schema validation, which only reads it: for an OpenAPI 3
   * document without external refs this is the spec `loadSpec` returns unless validation fails. The
   * prefetch worker sends it from here, so the main thread receives it while the worker validates.
   */
  beforeValidation?: (spec: LoadedSpec) => void;
  /**
   * The prefetch worker's: on a cache hit, the entry's checked bytes are handed here instead of being
   * deserialised, and loadSpec returns CACHED_BYTES_TAKEN (the main thread deserialises them once).
   */
  onCachedBytes?: (hit: {
    bytes: Uint8Array;
    source: SourceRef;
    rootText: string;
    /** The catalogue snapshot kept beside the entry (../catalog/snapshot.ts), checked, not decoded. */
    catalog?: Uint8Array;
    /** The entry's file, removed by the decoder if the bytes turn out damaged. */
    entryFile: string;
  }) => void;
  /**
   * Called when the spec cache holds this spec's entry (found, or just stored) without a catalogue
   * snapshot: `store` keeps one beside it. The prefetch worker builds it after handing the spec over.
   */
  onCatalogMissing?: (store: (snapshot: Uint8Array) => void) => void;
  /**
   * Called once, when no cache entry serves the spec and what is left of the load before the spec is
   * ready is long: a YAML parse (js-yaml: ~100 ms per MB in a fresh process), a Swagger 2.0
   * conversion, a bundle of `$ref`'d files. Not for a JSON OpenAPI 3 document (its parse and checks
   * are quick). The prefetch worker tells the main thread that it has a while to wait.
   */
  onLongLoad?: () => void;
  /**
   * The snapshot beside this spec's entry did not restore (../server/served-api.ts): on a hit, it is
   * neither read nor handed on, and `onCatalogMissing` is offered its replacement.
   */
  replaceCatalog?: boolean;
  /**
   * The prefetch worker's: the cache entry of a spec just loaded (not a hit) is written when the
   * caller calls `store`, handed over here, instead of before `loadSpec` returns. Writing it is ~0.1 s
   * for a big spec (encode, checksum, write): the worker does it after handing the spec over, off the
   * main thread's way to its first list. `store` takes the document's JSON form when the caller has
   * made it already for this very document (./spec-transfer.ts `packSpec`).
   */
  deferStore?: (store: (encoded?: EncodedDoc) => void) => void;
}

/** What loadSpec returns when `onCachedBytes` took a cache hit: not a spec, never used as one. */
export const CACHED_BYTES_TAKEN = Object.freeze({ cachedBytesTaken: true }) as unknown as LoadedSpec;

export type Dialect = '3.0' | '3.1';

export interface LoadedSpec {
  source: SourceRef;
  /** The text of the root file, for line lookups in reports. */
  rootText: string;
  /** The version the author wrote: `2.0`, `3.0.3`, `3.1.0`… */
  originalVersion: string;
  /** The OpenAPI 3.x document everything downstream reads: external refs bundled in, 2.0 converted. */
  doc: OpenApiDoc;
  dialect: Dialect;
  /** Number of files read (1 unless the spec has external `$ref`s). */
  files: number;
  warnings: string[];
  /** Harmless departures from the OpenAPI meta-schema, repaired or ignored: one entry per kind. */
  deviations: SpecDeviation[];
}

export type OpenApiDoc = Record<string, unknown> & {
  openapi: string;
  paths?: Record<string, unknown>;
  components?: Record<string, unknown>;
};

export const DEFAULT_LIMITS = {
  maxBytes: 64 * 1024 * 1024,
  maxDepth: 256,
  maxNodes: 20_000_000,
  maxFiles: 10_000,
  fetchTimeoutMs: 15_000,
} as const;

export async function loadSpec(source: string, options: LoadOptions = {}): Promise<LoadedSpec> {
  // Already loaded off the main thread (./prefetch.ts)? A failed prefetch is loaded again here, so
  // errors are this function's own.
  const pre = takePrefetched(source, options);
  const prefetched = pre ? await pre : undefined;
  if (prefetched?.ok) {
    for (const m of prefetched.progress) options.onProgress?.(m);
    return prefetched.spec as LoadedSpec;
  }
  const started = performance.now();
  let progress = (_: string) => {};
  const src = describeSource(source);
  const limits: ShapeLimits = {
    maxDepth: options.maxDepth ?? DEFAULT_LIMITS.maxDepth,
    maxNodes: options.maxNodes ?? DEFAULT_LIMITS.maxNodes,
  };
  const maxBytes = options.maxBytes ?? DEFAULT_LIMITS.maxBytes;
  const timeoutMs = options.fetchTimeoutMs ?? DEFAULT_LIMITS.fetchTimeoutMs;

  const { text, bytes: rootBytes } = await readSource(src, maxBytes, timeoutMs);
  // Progress lines are for specs big enough to make someone wait.
  const big = text.length > 1024 * 1024;
  if (big && options.onProgress) progress = options.onProgress;
  // The same bytes, files and options loaded before: that result (./cache.ts).
  const cache = openSpecCache<LoadedSpec>(src, text, options, rootBytes);
  const fromCache = () =>
    progress(`loaded ${src.label} (${(text.length / 1024).toFixed(0)} KiB) from cache in ${ms(started)}`);
  // One lookup: a miss (or an entry whose files changed) is read and checked once, not twice.
  if (cache && options.onCachedBytes) {
    const bytes = cache.lookupBytes();
    if (bytes) {
      fromCache();
      const catalog = catalogOf(cache, options);
      options.onCachedBytes({
        bytes,
        source: src,
        rootText: text,
        entryFile: cache.entryFile,
        ...(catalog ? { catalog } : {}),
      });
      return CACHED_BYTES_TAKEN;
    }
  } else if (cache) {
    const hit = cache.lookup();
    if (hit) {
      fromCache();
      const catalog = catalogOf(cache, options);
      if (catalog) attachCatalogSnapshot(hit, catalog);
      return hit;
    }
  }
  let toldLong = false;
  const long = () => {
    if (toldLong) return;
    toldLong = true;
    options.onLongLoad?.();
  };
  if (!isJsonText(text)) long();
  const raw = parseText(text, src.label, limits);
  progress(`parsed ${src.label} (${(text.length / 1024).toFixed(0)} KiB) in ${ms(started)}`);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new WardenError('SPEC_INVALID', 'the spec must be a JSON/YAML object', {
      location: { file: src.label },
    });
  }
  let doc = raw as Record<string, unknown>;
  const version = detectVersion(doc, src.label);
  if (version.major === 2) long();
  const warnings: string[] = [];

  let files = 1;
  if (hasExternalRefs(doc)) {
    long();
    const t = performance.now();
    const bundled = await bundleExternal(doc, src, {
      ...options,
      maxBytes,
      limits,
      timeoutMs,
      ...(cache ? { cache } : {}),
    });
    doc = bundled.doc;
    files = bundled.files;
    progress(`bundled ${files} files in ${ms(t)}`);
  }

  let t = performance.now();
  const inlined = inlineMisplacedRefs(doc);
  if (inlined > 0)
    warnings.push(`${inlined} $ref(s) in places OpenAPI does not allow them were replaced by their targets`);
  const deviations = repairSpec(doc, version.major === 2 ? '2.0' : version.minor === 1 ? '3.1' : '3.0');
  warnings.push(...deviations.map(deviationWarning));
  const dialect: Dialect = version.major === 3 && version.minor === 1 ? '3.1' : '3.0';
  const loaded = (d: unknown): LoadedSpec => ({
    source: src,
    rootText: text,
    originalVersion: version.label,
    doc: d as OpenApiDoc,
    dialect,
    files,
    warnings,
    deviations,
  });
  // On the prefetch worker, a Swagger 2.0 spec is converted before its validation and the result
  // sent then, so that the main thread receives it while this thread validates (as an OpenAPI 3
  // one, below). The converter only reads its input (it works on a clone) and validation only reads
  // the 2.0 document, so the result is the same; a failure of either still fails the load. If the
  // conversion fails here, the usual order runs, so the error is the usual one.
  let converted: Record<string, unknown> | undefined;
  if (version.major === 2 && options.beforeValidation) {
    const tc = performance.now();
    converted = await convertSwagger2(doc, text, src).catch(() => undefined);
    if (converted) {
      progress(`converted Swagger 2.0 to OpenAPI 3.0 in ${ms(tc)}`);
      options.beforeValidation(loaded(converted));
      t = performance.now();
    }
  }
  // Nothing below changes an OpenAPI 3 document or these fields: this is the result, if valid.
  if (version.major === 3 && options.beforeValidation) options.beforeValidation(loaded(doc));
  await validateSpec(doc, text, src);
  progress(`validated ${version.label} in ${ms(t)}`);

  if (converted) doc = converted;
  else if (version.major === 2) {
    t = performance.now();
    doc = await convertSwagger2(doc, text, src);
    progress(`converted Swagger 2.0 to OpenAPI 3.0 in ${ms(t)}`);
  }

  const result = loaded(doc);
  if (cache) {
    if (options.deferStore) options.deferStore((encoded) => cache.store(result, encoded));
    else cache.store(result);
    options.onCatalogMissing?.((b) => cache.storeCatalog(b));
  }
  return result;
}

/** The snapshot beside a cache hit; when there is none, whoever asked is offered to store one. */
function catalogOf(cache: SpecCacheSession<LoadedSpec>, options: LoadOptions): Uint8Array | undefined {
  const catalog = options.replaceCatalog ? undefined : cache.lookupCatalog();
  if (!catalog) options.onCatalogMissing?.((b) => cache.storeCatalog(b));
  return catalog;
}

/** A (valid, or about to be validated) Swagger 2.0 document as OpenAPI 3.0; `doc` is left as it was. */
async function convertSwagger2(
  doc: Record<string, unknown>,
  text: string,
  src: SourceRef,
): Promise<Record<string, unknown>> {
  // The converter (and the bundler below) are loaded only by the specs that need them (issue 22:
  // start-up; together about 0.5 MB of code an OpenAPI 3 spec without external refs never runs).
  const { default: s2o } = await import('swagger2openapi');
  try {
    const converted = await s2o.convertObj(doc, {
      patch: true,
      warnOnly: true,
      resolve: false,
      direct: false,
      // Without a `text` the converter serialises the whole document to YAML first (seconds for
      // Kubernetes' 4 MB), only to keep it beside the result; the source text is what it stands for.
      text,
    });
    return converted.openapi;
  } catch (e) {
    throw new WardenError('SPEC_INVALID', `Swagger 2.0 conversion failed: ${firstLine(e)}`, {
      location: { file: src.label },
    });
  }
}

function detectVersion(
  doc: Record<string, unknown>,
  file: string,
): { major: number; minor: number; label: string } {
  const swagger = doc.swagger;
  const openapi = doc.openapi;
  if (swagger !== undefined) {
    if (String(swagger) !== '2.0') {
      throw new WardenError(
        'SPEC_UNSUPPORTED',
        `unsupported Swagger version ${JSON.stringify(swagger)} (only 2.0)`,
        {
          location: { file, pointer: '/swagger' },
        },
      );
    }
    return { major: 2, minor: 0, label: '2.0' };
  }
  if (openapi !== undefined && typeof openapi !== 'string') {
    throw new WardenError(
      'SPEC_INVALID',
      `\`openapi\` must be a string such as "3.0.3", not ${JSON.stringify(openapi)}`,
      {
        location: { file, pointer: '/openapi' },
      },
    );
  }
  if (typeof openapi === 'string') {
    const m = openapi.match(/^3\.([01])\.\d+(-.+)?$/);
    if (m) return { major: 3, minor: Number(m[1]), label: openapi };
    throw new WardenError(
      'SPEC_UNSUPPORTED',
      `unsupported OpenAPI version ${JSON.stringify(openapi)} (supported: 2.0, 3.0.x, 3.1.x)`,
      { location: { file, pointer: '/openapi' } },
    );
  }
  throw new WardenError('SPEC_INVALID', 'not an OpenAPI document: no `openapi` or `swagger` version field', {
    location: { file, pointer: '' },
  });
}

/**
 * True when some `$ref` points outside this document. Example payloads are skipped: real specs
 * (GitHub's) carry literal `$ref` data keys in examples that are not references.
 */
export function hasExternalRefs(doc: unknown): boolean {
  // Object.keys, not Object.entries: no [key, value] pair allocated per property of a big spec.
  const stack: unknown[] = [doc];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== 'object') continue;
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const v: unknown = node[i];
        if (v !== null && typeof v === 'object') stack.push(v);
      }
      continue;
    }
    const obj = node as Record<string, unknown>;
    const keys = Object.keys(obj);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const v = obj[k];
      if (k === '$ref' && typeof v === 'string' && !v.startsWith('#')) return true;
      if (k === 'example' || k === 'examples' || k === 'x-examples' || k === 'x-ms-examples') continue;
      if (v !== null && typeof v === 'object') stack.push(v);
    }
  }
  return false;
}

export interface BundleOptions extends LoadOptions {
  maxBytes: number;
  limits: ShapeLimits;
  timeoutMs: number;
  /** Told of every file read, so that a cached result can be checked against them again. */
  cache?: SpecCacheSession<LoadedSpec>;
}

/** Bundles the files `doc` pulls in through `$ref`s into it (exported for bench/load-phases.mjs). */
export async function bundleExternal(
  doc: Record<string, unknown>,
  src: SourceRef,
  opts: BundleOptions,
): Promise<{ doc: Record<string, unknown>; files: number }> {
  const remote = opts.remoteRefs ?? 'same-origin';
  const maxFiles = opts.maxFiles ?? DEFAULT_LIMITS.maxFiles;
  let files = 1;
  let bytes = 0;
  const rootPath = opts.refRoot ?? dirnameOf(src.location);
  const root =
    src.kind === 'file'
      ? await realpath(rootPath).catch(() => {
          throw new WardenError('USAGE', `--ref-root ${opts.refRoot} does not exist`);
        })
      : undefined;
  if (root) opts.cache?.recordRoot(resolvePath(rootPath), root);
  const origin = src.kind === 'url' ? new URL(src.location).origin : undefined;

  // The ref parser re-wraps resolver errors and drops their message; keep ours to rethrow.
  let refused: WardenError | undefined;
  const refuse = (e: WardenError): never => {
    refused ??= e;
    throw e;
  };
  const count = (size: number, label: () => string) => {
    files++;
    bytes += size;
    if (files > maxFiles) {
      refuse(new WardenError('SPEC_TOO_LARGE', `the spec pulls in more than ${maxFiles} files via $ref`));
    }
    if (bytes > opts.maxBytes) {
      refuse(
        new WardenError(
          'SPEC_TOO_LARGE',
          `the spec's files add up to more than the size limit (at ${label()})`,
        ),
      );
    }
  };

  // Local files are read with synchronous calls: a spec of thousands of small files (DigitalOcean's
  // 2,850) spent ~350 ms more CPU on the thread pool's round trips (realpath, stat, then readFile's
  // open/fstat/read/close) than on the reads themselves. The event loop still gets a turn every
  // few milliseconds (a reload runs on a serving gateway's main thread).
  let lastTurn = performance.now();
  // A file's real path is its directory's (resolved once per directory: DigitalOcean's 2,850 files
  // sit in ~300) joined with its name, when the file itself is no symlink: it is opened with
  // O_NOFOLLOW, and one that is (ELOOP) is resolved in full. A realpath per file walked every
  // component of its path again: ~100 ms of DigitalOcean's cold load (profiled). Without O_NOFOLLOW
  // (Windows), or without /proc/self/fd to check the file opened against a folder swapped meanwhile
  // (macOS; see openedPath), every file is resolved in full, as before.
  const realDirs = new Map<string, string>();
  const NOFOLLOW = constants.O_NOFOLLOW;
  const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;
  const throughDir = (path: string): string | undefined => {
    if (NOFOLLOW === undefined || !hasProcFds()) return undefined;
    const d = dirname(path);
    let realDir = realDirs.get(d);
    if (realDir === undefined) {
      realDir = realpathSync.native(d);
      realDirs.set(d, realDir);
    }
    return inRealDir(realDir, path);
  };
  const confinedFile = {
    order: 1,
    canRead: (file: { url: string }) => !/^https?:/i.test(file.url),
    read: async (file: { url: string }) => {
      if (performance.now() - lastTurn > YIELD_EVERY_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        lastTurn = performance.now();
      }
      // Named only in errors: computing it for every file cost ~2 % of DigitalOcean's load.
      const label = () => displayRef(file.url, root);
      if (!root) {
        refuse(
          new WardenError(
            'SPEC_REF_DENIED',
            `a spec loaded from a URL may not $ref a local file (${label()})`,
          ),
        );
      }
      const path = file.url.startsWith('file:')
        ? fileURLToPath(file.url.split('#')[0]!)
        : file.url.split('#')[0]!;
      const missing = () =>
        refuse(new WardenError('SPEC_REF_UNRESOLVED', `$ref to a missing file: ${label()}`));
      const confine = (real: string) => {
        if (real !== root && !real.startsWith(root + sep)) {
          refuse(
            new WardenError(
              'SPEC_REF_DENIED',
              `$ref to ${label()} leaves the allowed directory ${root} (widen it with --ref-root)`,
            ),
          );
        }
        return real;
      };
      // One open for the stat and the bytes, so that the fingerprint the spec cache keeps is the one of
      // the file read (./cache.ts re-checks a settled file by it); its time is taken before the open.
      // Non-blocking: opening a FIFO would otherwise wait for a writer, and with it the event loop.
      let real: string | undefined;
      let fd: number | undefined;
      const statAt = Date.now();
      try {
        // Only a path in normal form goes through its folder: one with a trailing separator, `.` or
        // `..` is resolved in full, as before (`plain.json/` names no file).
        real = path === resolvePath(path) ? throughDir(path) : undefined;
      } catch {
        return missing();
      }
      if (real !== undefined) {
        confine(real);
        try {
          fd = openSync(real, READ_FLAGS | NOFOLLOW!);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT' || code === 'ENOTDIR') return missing();
          // ELOOP (the file is a symlink; EMLINK or EFTYPE on BSDs) or anything else: resolved in
          // full below, confined again and opened without O_NOFOLLOW.
        }
      }
      if (fd === undefined) {
        try {
          real = realpathSync.native(path);
        } catch {
          return missing();
        }
        fd = openSync(confine(real), READ_FLAGS);
      }
      try {
        // The file opened, as the kernel names it (Linux): a folder swapped for a symlink after its
        // real path was taken (the bundle yields to the event loop) shows here, and is refused.
        const opened = openedPath(fd);
        if (opened !== undefined) confine(opened);
        const st = fstatSync(fd);
        // A FIFO or device would block the synchronous read below.
        if (!st.isFile()) {
          refuse(new WardenError('SPEC_REF_DENIED', `$ref to ${label()}, which is not a regular file`));
        }
        count(st.size, label);
        // To the size fstat gave (readFileSync would fstat again: ~12 ms of DigitalOcean's 2,850 files).
        const bytes = readAll(fd, st.size).buf;
        opts.cache?.recordFile(path, real!, bytes, st, statAt);
        return bytes;
      } finally {
        closeSync(fd);
      }
    },
  };
  const confinedHttp = {
    order: 2,
    canRead: (file: { url: string }) => /^https?:/i.test(file.url),
    read: async (file: { url: string }) => {
      const url = new URL(file.url);
      const allowed =
        remote === 'any' || (remote === 'same-origin' && origin !== undefined && url.origin === origin);
      if (!allowed) {
        refuse(
          new WardenError(
            'SPEC_REF_DENIED',
            `remote $ref to ${url.origin}${url.pathname} not followed` +
              (remote === 'none'
                ? ''
                : ' (only same-origin refs of a URL-loaded spec are; opt in with --remote-refs any)'),
          ),
        );
      }
      url.hash = '';
      opts.cache?.uncacheable();
      const text = await fetchText(url.href, url.href, opts.maxBytes, opts.timeoutMs).catch((e: unknown) =>
        refuse(
          e instanceof WardenError ? e : new WardenError('SPEC_REF_UNRESOLVED', `cannot fetch ${url.href}`),
        ),
      );
      count(Buffer.byteLength(text), () => url.href);
      return text;
    },
  };

  // The library's own JSON and YAML parsers, each result walked against the spec's size limits
  // before the ref parser crawls it: a YAML alias bomb in a $ref'd file would otherwise explode in
  // that crawl and the walks after it (minutes of CPU on the event loop). One node budget for the
  // root and all its files.
  const refParser = await import('@apidevtools/json-schema-ref-parser');
  const $RefParser = refParser.default;
  let nodes = checkShape(doc, src.label, opts.limits);
  const defaults = refParser.getJsonSchemaRefParserDefaultOptions().parse as unknown as Record<
    'json' | 'yaml',
    { parse(this: unknown, file: { url: string }): unknown }
  >;
  const checked = (base: (typeof defaults)['json']) => ({
    ...base,
    async parse(file: { url: string }) {
      const parsed = await base.parse.call(this, file);
      try {
        nodes = checkShape(parsed, () => displayRef(file.url, root), opts.limits, nodes);
      } catch (e) {
        if (e instanceof WardenError) refuse(e);
        throw e;
      }
      return parsed;
    },
  });
  try {
    const bundled = await $RefParser.bundle(src.baseUrl, doc, {
      resolve: { file: false, http: false, external: true, confinedFile, confinedHttp },
      parse: { text: false, binary: false, json: checked(defaults.json), yaml: checked(defaults.yaml) },
      dereference: { circular: true },
      mutateInputSchema: false,
    } as never);
    return { doc: bundled as unknown as Record<string, unknown>, files };
  } catch (e) {
    if (refused) throw refused;
    if (e instanceof WardenError) throw e;
    const { ERROR_CODES } = await import('../errors/codes.js');
    const inner = findWardenError(e, ERROR_CODES);
    if (inner) throw inner;
    throw new WardenError('SPEC_REF_UNRESOLVED', `an external $ref could not be resolved: ${firstLine(e)}`, {
      location: { file: src.label },
    });
  }
}

/** The ref parser wraps resolver errors, keeping our message and our code as `ioErrorCode`. */
function findWardenError(e: unknown, codes: Record<string, unknown>): WardenError | undefined {
  for (let cur = e, i = 0; cur && i < 5; i++) {
    if (cur instanceof WardenError) return cur;
    const io = (cur as { ioErrorCode?: unknown }).ioErrorCode;
    if (typeof io === 'string' && Object.hasOwn(codes, io)) {
      return new WardenError(io as ErrorCode, (cur as Error).message);
    }
    const errors = (cur as { errors?: unknown[] }).errors;
    if (Array.isArray(errors)) for (const x of errors) if (x instanceof WardenError) return x;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

function dirnameOf(p: string): string {
  const i = p.lastIndexOf(sep);
  return i <= 0 ? sep : p.slice(0, i);
}

function displayRef(url: string, root: string | undefined): string {
  if (/^https?:/i.test(url)) return url;
  const path = url.startsWith('file:') ? fileURLToPath(url.split('#')[0]!) : url.split('#')[0]!;
  return root ? relative(root, path) || path : path;
}

export function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : typeof e === 'string' ? e : 'unknown error';
  return msg.split('\n')[0]!.slice(0, 300);
}

/** Whether this system names an open file's path in /proc/self/fd (Linux), found at first use. */
let procFds: boolean | undefined;
const hasProcFds = () => (procFds ??= existsSync('/proc/self/fd'));

/**
 * The path of an open file as the kernel names it, or undefined where the system has no
 * /proc/self/fd. Where it has one, a failure to read it throws (the read is refused, never let
 * through unchecked).
 */
function openedPath(fd: number): string | undefined {
  return hasProcFds() ? readlinkSync(`/proc/self/fd/${fd}`) : undefined;
}

/** Longest run of synchronous file reads in a multi-file spec before the event loop gets a turn. */
const YIELD_EVERY_MS = 20;

const ms = (t: number) => `${(performance.now() - t).toFixed(0)} ms`;

/** Keywords whose value is a map of schemas, so a `$ref` directly inside is misplaced. */
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', 'dependentSchemas', 'definitions', '$defs']);
const TEXT_KEYS = new Set(['description', 'summary', 'title']);

/**
 * Some real specs (DigitalOcean's) put `$ref` where OpenAPI does not allow one: in place of a
 * whole `properties` map, or of a `description` string. Dereferencing everything would hide that,
 * at the price of losing shared schemas; instead those few refs are replaced by their target, and
 * everything else keeps its `$ref`s.
 */
export function inlineMisplacedRefs(doc: Record<string, unknown>): number {
  let count = 0;
  // Two parallel stacks: the nodes, and whether each is itself a map of schemas (its keys are
  // names, not keywords). No pair per node and no Object.entries (issue 22).
  const stack: unknown[] = [doc];
  const nameMaps: boolean[] = [false];
  while (stack.length > 0) {
    const node = stack.pop();
    const isNameMap = nameMaps.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const v: unknown = node[i];
        if (v !== null && typeof v === 'object') {
          stack.push(v);
          nameMaps.push(false);
        }
      }
      continue;
    }
    const obj = node as Record<string, unknown>;
    const keyword = !isNameMap;
    const keys = Object.keys(obj);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const v = obj[k];
      if (v === null || typeof v !== 'object') continue;
      const ref = (v as { $ref?: unknown }).$ref;
      if (
        keyword &&
        typeof ref === 'string' &&
        (SCHEMA_MAPS.has(k) || TEXT_KEYS.has(k)) &&
        ref.startsWith('#')
      ) {
        const target = getByPointer(doc, ref);
        const fits = TEXT_KEYS.has(k)
          ? typeof target === 'string'
          : target !== null && typeof target === 'object';
        if (fits) {
          // A copy: shared object identity would read as a YAML alias to the 2.0 converter.
          obj[k] = structuredClone(target);
          count++;
        }
      }
      if (keyword && (k === 'example' || k === 'examples')) continue;
      stack.push(obj[k]);
      nameMaps.push(keyword && SCHEMA_MAPS.has(k));
    }
  }
  return count;
}
