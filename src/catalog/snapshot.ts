/**
 * A built catalogue as plain data and back (issue 22, target 1: a warm start of a big spec spent
 * ~380 ms of GitHub's and ~540 ms of Kubernetes' main thread in `buildCatalog`, a pure function of the
 * loaded spec). The spec cache keeps the snapshot beside the spec (../openapi/cache.ts); a start that
 * hits restores it instead of building.
 *
 * A restored catalogue behaves exactly as a fresh one: the same fields in the same order, and the
 * same lazies (`inputSchema`/`outputSchema` with their `$defs`, `dataClasses`), computed the same way
 * by ./tool.ts `attachLazies` from the parts the tool was built with. The `$defs` closures are those
 * the converter gave (their keys in its order, each definition one shared object per mode, each
 * closure one object per root list), so the schemas are the same text and share as they did.
 *
 * One `v8.serialize` of the whole snapshot keeps the objects the tools share shared (servers,
 * parameter schemas, definitions). A snapshot that is damaged or not of this layout is refused
 * (undefined): the caller builds the catalogue as without one. The spec cache pairs a snapshot with
 * the one entry it was made from.
 */
import { deserialize, serialize } from 'node:v8';
import { ResponseClassifier } from '../classify/data-classes.js';
import type { Catalog, DataField, Tool } from '../model/catalog.js';
import type { DefsLookup, JsonSchema, JsonSchemaObject } from '../model/json-schema.js';
import type { LoadedSpec } from '../openapi/load.js';
import { attachLazies, type DefsSource, partsOf, type ToolParts } from './tool.js';

/** Bumped whenever the snapshot's layout changes (code changes change the cache key anyway). */
const SNAPSHOT_VERSION = 2;

type Mode = 'input' | 'output';

interface StoredTool {
  /** The tool's own fields in their order, the lazy ones as `null` placeholders. */
  tool: Record<string, unknown>;
  input: JsonSchemaObject;
  inputDeps: string[];
  output: JsonSchemaObject | undefined;
  outputDeps: string[];
  root: JsonSchema | undefined;
}

interface Snapshot {
  v: number;
  /** How many tools were stored: a list that decodes shorter or longer was changed after. */
  count: number;
  /** The catalogue's fields in their order, `tools` a placeholder. */
  catalog: Record<string, unknown>;
  /** The schema warnings the build added after the spec's own. */
  buildWarnings: string[];
  tools: StoredTool[];
  /** Converted definitions by `$defs` key, per mode. */
  defs: { input: Map<string, JsonSchema>; output: Map<string, JsonSchema> };
  /** Each closure the tools use, by the converter's id (mode and root list): its keys in order. */
  closures: Map<string, string[]>;
}

const LAZY = new Set(['inputSchema', 'outputSchema', 'dataClasses', 'dataClassesTruncated']);

const closureId = (mode: Mode, roots: Iterable<string>) => JSON.stringify([mode, [...roots]]);

/**
 * The catalogue as bytes, or undefined when it cannot be stored exactly (a tool not made by
 * `buildTool`, a definition key that plain objects cannot hold). Reads no lazy field; computes the
 * tools' `$defs` closures (the converter keeps them, so later reads of the same catalogue reuse them).
 */
export function snapshotCatalog(catalog: Catalog, spec: LoadedSpec): Uint8Array | undefined {
  const defs = { input: new Map<string, JsonSchema>(), output: new Map<string, JsonSchema>() };
  const closures = new Map<string, string[]>();
  const note = (source: DefsSource, mode: Mode, roots: Iterable<string>): string[] | undefined => {
    const list = [...roots];
    const id = closureId(mode, list);
    if (closures.has(id)) return list;
    const c = source.closure(list, mode);
    // `__proto__` as a key would have set the prototype: not plain data.
    if (Object.getPrototypeOf(c) !== Object.prototype) return undefined;
    const keys = Object.keys(c);
    for (const k of keys) {
      const known = defs[mode].get(k);
      if (known !== undefined && known !== c[k]) return undefined;
      defs[mode].set(k, c[k]!);
    }
    closures.set(id, keys);
    return list;
  };
  const tools: StoredTool[] = [];
  for (const t of catalog.tools) {
    const p = partsOf(t);
    if (!p) return undefined;
    const tool: Record<string, unknown> = {};
    for (const k of Object.keys(t)) {
      if (LAZY.has(k)) tool[k] = null;
      else tool[k] = (t as unknown as Record<string, unknown>)[k];
    }
    const inputDeps = note(p.defs, 'input', p.parts.inputDeps);
    const outputDeps = p.parts.output ? note(p.defs, 'output', p.parts.outputDeps) : [...p.parts.outputDeps];
    if (!inputDeps || !outputDeps) return undefined;
    tools.push({
      tool,
      input: p.parts.input,
      inputDeps,
      output: p.parts.output,
      outputDeps,
      root: p.parts.root,
    });
  }
  const head: Record<string, unknown> = {};
  for (const k of Object.keys(catalog))
    head[k] = k === 'tools' ? null : (catalog as unknown as Record<string, unknown>)[k];
  const own = spec.warnings.length;
  if (catalog.warnings.slice(0, own).some((w, i) => w !== spec.warnings[i])) return undefined;
  const snapshot: Snapshot = {
    v: SNAPSHOT_VERSION,
    count: tools.length,
    catalog: head,
    buildWarnings: catalog.warnings.slice(own),
    tools,
    defs,
    closures,
  };
  try {
    return serialize(snapshot);
  } catch {
    return undefined;
  }
}

/**
 * The catalogue `bytes` stand for, for the spec they were made from; undefined when they are damaged
 * (then the caller builds it). Which spec that is, the spec cache says: a snapshot is only ever read
 * beside the entry its header names by size and checksum (../openapi/cache.ts `readCatalog`), so an
 * entry replaced — its spec or a file it refers to changed — is never paired with the old snapshot.
 */
export function restoreCatalog(bytes: Uint8Array, spec: LoadedSpec): Catalog | undefined {
  let s: Snapshot;
  try {
    s = deserialize(bytes) as Snapshot;
  } catch {
    return undefined;
  }
  if (!fits(s)) return undefined;
  const defs = new RestoredDefs(s.defs, s.closures);
  const responses = new ResponseClassifier();
  const tools = s.tools.map((st) => {
    const tool = st.tool as unknown as Tool;
    const parts: ToolParts = {
      input: st.input,
      inputDeps: st.inputDeps,
      output: st.output,
      outputDeps: st.outputDeps,
      root: st.root,
    };
    // As ../catalog/output.ts: one walk per tool, on first read of either field.
    let data: { fields: DataField[]; truncated: boolean } | undefined;
    const walk = () => {
      data ??=
        st.root !== undefined
          ? responses.classify(st.root, defs.outLookup)
          : { fields: [], truncated: false };
      return data;
    };
    if (st.output === undefined) delete (tool as unknown as Record<string, unknown>).outputSchema;
    attachLazies(tool, parts, defs, walk);
    return tool;
  });
  const catalog = s.catalog as unknown as Catalog;
  catalog.tools = tools;
  // Where the spec is named as this start named it (the cache key holds its absolute path only).
  catalog.source = spec.source.label;
  catalog.specVersion = spec.originalVersion;
  catalog.warnings = [...spec.warnings, ...s.buildWarnings];
  return catalog;
}

/**
 * The snapshot's shape: this layout, every tool it was stored with, each with its operation and the
 * closures of definitions it uses. Not compared with the spec's operations (see restoreCatalog): that
 * parsed the cached document's whole `paths` on every warm start (12–40 ms on the big specs), a part
 * nothing else reads before the first call.
 */
function fits(s: Snapshot): boolean {
  if (s === null || typeof s !== 'object' || s.v !== SNAPSHOT_VERSION) return false;
  if (!Array.isArray(s.tools) || s.tools.length !== s.count || !Array.isArray(s.buildWarnings)) return false;
  if (s.catalog === null || typeof s.catalog !== 'object' || !('tools' in s.catalog)) return false;
  if (!(s.closures instanceof Map) || !(s.defs?.input instanceof Map) || !(s.defs?.output instanceof Map))
    return false;
  return s.tools.every((st) => {
    const src = (st?.tool as Partial<Tool> | undefined)?.source;
    return (
      typeof src?.method === 'string' &&
      typeof src.path === 'string' &&
      typeof src.pointer === 'string' &&
      Array.isArray(st.inputDeps) &&
      Array.isArray(st.outputDeps) &&
      s.closures.has(closureId('input', st.inputDeps)) &&
      (st.output === undefined || s.closures.has(closureId('output', st.outputDeps)))
    );
  });
}

/** The converter's closures and output lookup, as the snapshot kept them. */
class RestoredDefs implements DefsSource {
  private readonly made = new Map<string, Record<string, JsonSchema>>();
  readonly outLookup: DefsLookup;

  constructor(
    private readonly defs: Snapshot['defs'],
    private readonly closures: Snapshot['closures'],
  ) {
    const out = defs.output;
    this.outLookup = (key) => out.get(key);
  }

  /** The same roots give the same object, as the converter's (callers must not modify it). */
  closure(roots: Iterable<string>, mode: Mode): Record<string, JsonSchema> {
    const id = closureId(mode, roots);
    const known = this.made.get(id);
    if (known) return known;
    const out: Record<string, JsonSchema> = {};
    const byKey = this.defs[mode];
    for (const k of this.closures.get(id) ?? []) out[k] = byKey.get(k)!;
    this.made.set(id, out);
    return out;
  }
}
