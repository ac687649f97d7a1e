import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { WardenError } from '../errors/index.js';
import { canonicalJson } from '../lib/canonical.js';
import type { Tool } from '../model/catalog.js';
import type { SharedPins } from '../model/state.js';

/**
 * Tool-definition pinning. Each approved tool's definition (what the agent sees and what the gateway
 * sends) is pinned by hash; after a spec reload, a new tool or one whose definition changed stays
 * hidden until an operator approves it, so a spec change cannot silently add or alter a tool (a
 * "rug pull"). Without a pins file the first definitions seen are trusted; with one, pins survive
 * restarts and a spec changed while the gateway was down is caught too.
 */
export class Pins {
  /**
   * Pinned definition hashes by tool name. Without a file or shared state, the first catalogue is
   * trusted as it is and its tools are kept instead of hashed (hashing Stripe's 468 definitions cost
   * a third of a second before the first `tools/list`): a tool of that catalogue is its own
   * definition, and a tool is hashed only when a later catalogue (a spec reload) is compared with it.
   */
  private readonly local = new Map<string, string | Tool>();

  /**
   * `shared`: pins kept in the shared state (Redis), so an approval on one instance holds on all;
   * the file, if any, is then not used.
   */
  constructor(
    private readonly file: string | undefined,
    private readonly shared?: SharedPins,
  ) {
    if (!file || shared) return;
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new WardenError(
          'CONFIG_INVALID',
          `cannot read the pins file ${file}: ${(e as NodeJS.ErrnoException).code}`,
        );
    }
    if (text === undefined) return;
    try {
      const doc = JSON.parse(text) as { version?: unknown; tools?: Record<string, unknown> };
      if (doc.version !== 1 || typeof doc.tools !== 'object' || doc.tools === null) throw new Error('shape');
      for (const [name, hash] of Object.entries(doc.tools))
        if (typeof hash === 'string' && /^[0-9a-f]{64}$/.test(hash)) this.local.set(name, hash);
    } catch {
      throw new WardenError('CONFIG_INVALID', `the pins file ${file} is not a mcp-warden pins file`);
    }
  }

  private get pinned(): ReadonlyMap<string, string | Tool> {
    return this.shared ? this.shared.get() : this.local;
  }

  /** True before anything was pinned: the first catalogue is trusted as is. */
  get empty(): boolean {
    return this.pinned.size === 0;
  }

  /** Tools whose definition is new or changed, with the reason. */
  pending(tools: readonly Tool[]): Map<string, string> {
    this.hashKeptTools(tools);
    const out = new Map<string, string>();
    for (const t of tools) {
      const want = this.pinned.get(t.name);
      if (want === undefined)
        out.set(t.name, 'new tool since the last approval; approve it with `mcp-warden tools approve`');
      // A kept tool is the very definition that was trusted.
      else if (want !== t && want !== definitionHash(t))
        out.set(
          t.name,
          'its definition changed since it was approved; review and approve it with `mcp-warden tools approve`',
        );
    }
    return out;
  }

  /** Pins the current definitions. In memory or a file it is done when this returns (no await inside). */
  async approve(tools: readonly Tool[]): Promise<void> {
    if (!this.shared && !this.file) {
      for (const t of tools) this.local.set(t.name, t);
      return;
    }
    const entries = new Map(tools.map((t) => [t.name, definitionHash(t)]));
    if (this.shared) return this.shared.set(entries);
    for (const [n, h] of entries) this.local.set(n, h);
    this.save();
  }

  /**
   * Kept tools (see `local`) that are not the tool of that name in `tools` are hashed now, once: the
   * comparison needs it, and the old catalogue is not held in memory after a reload.
   */
  private hashKeptTools(tools: readonly Tool[]): void {
    if (this.shared || this.file) return;
    let current: Map<string, Tool> | undefined;
    for (const [name, kept] of this.local) {
      if (typeof kept === 'string') continue;
      current ??= new Map(tools.map((t) => [t.name, t]));
      if (current.get(name) !== kept) this.local.set(name, definitionHash(kept));
    }
  }

  private save(): void {
    if (!this.file) return;
    const tools = Object.fromEntries([...this.local].sort(([a], [b]) => (a < b ? -1 : 1)));
    const tmp = join(dirname(this.file), `.${basename(this.file)}.${process.pid}.tmp`);
    writeFileSync(tmp, `${JSON.stringify({ version: 1, tools }, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}

/** The hash of everything that makes a tool what it is, to the agent and to the upstream. */
export function definitionHash(t: Tool): string {
  const def = {
    name: t.name,
    title: t.title,
    description: t.description,
    inputSchema: t.inputSchema,
    outputSchema: t.outputSchema,
    annotations: t.annotations,
    method: t.source.method,
    path: t.source.path,
    servers: t.source.servers,
    bindings: t.bindings,
    risk: t.risk.classes,
    auth: t.auth,
  };
  return treeDigest(def);
}

/** Digests of schema objects, by identity: a catalogue shares each `$defs` schema among its tools. */
const digests = new WeakMap<object, string>();

/**
 * A Merkle digest of a JSON value: every object and array is hashed once, from its members' digests
 * (keys sorted), so the many tools that share one large definition pay for it once. Hashing Stripe's
 * expanded output schemas as one canonical text took 14 s at start-up; this takes well under one.
 */
export function treeDigest(v: unknown): string {
  if (v === null || typeof v !== 'object') return createHash('sha256').update(canonicalJson(v)).digest('hex');
  const known = digests.get(v);
  if (known) return known;
  const h = createHash('sha256');
  if (Array.isArray(v)) {
    h.update('[');
    for (const x of v) h.update(`${treeDigest(x)},`);
  } else {
    h.update('{');
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o).sort())
      if (o[k] !== undefined) h.update(`${JSON.stringify(k)}:${treeDigest(o[k])},`);
  }
  const d = h.digest('hex');
  digests.set(v, d);
  return d;
}
