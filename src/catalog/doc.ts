import { WardenError } from '../errors/index.js';
import { memoByText } from '../lib/text-memo.js';
import type { ServerInfo } from '../model/catalog.js';
import { type DefsLookup, type JsonSchema, resolveLocal } from '../model/json-schema.js';
import { getByPointer } from '../openapi/parse.js';
import { cleanDescription } from '../openapi/text.js';

/*
 * Small readers shared by the catalogue's builders: over the bundled OpenAPI document (objects,
 * local `$ref`s, servers, media types) and over converted schemas (top-level properties).
 */

export function asObject(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

/** Follows local `$ref`s (parameters, bodies, responses, path items) in the bundled document. */
export function follow(doc: unknown, raw: unknown, where: string): Record<string, unknown> | undefined {
  let cur = raw;
  for (let i = 0; i < 16; i++) {
    const o = asObject(cur);
    if (!o) return undefined;
    if (typeof o.$ref !== 'string') return o;
    if (!o.$ref.startsWith('#')) {
      throw new WardenError('SPEC_REF_UNRESOLVED', `external $ref ${o.$ref} was not bundled`, {
        location: { pointer: where.slice(1) },
      });
    }
    const next = getByPointer(doc, o.$ref);
    if (next === undefined) {
      throw new WardenError('SPEC_REF_UNRESOLVED', `$ref ${o.$ref} points to nothing`, {
        location: { pointer: where.slice(1) },
      });
    }
    cur = next;
  }
  throw new WardenError('SPEC_REF_UNRESOLVED', 'a $ref chain is longer than 16 hops', {
    location: { pointer: where.slice(1) },
  });
}

export function servers(raw: unknown): ServerInfo[] {
  if (!Array.isArray(raw)) return [];
  return raw.flatMap((s) => {
    const o = asObject(s);
    if (!o || typeof o.url !== 'string') return [];
    const vars: ServerInfo['variables'] = {};
    for (const [k, v] of Object.entries(asObject(o.variables) ?? {})) {
      const vo = asObject(v) ?? {};
      const en = Array.isArray(vo.enum) ? vo.enum.map(String) : undefined;
      vars[k] = { default: String(vo.default ?? ''), ...(en ? { enum: en } : {}) };
    }
    return [{ url: o.url, ...(Object.keys(vars).length ? { variables: vars } : {}) }];
  });
}

export function isJsonType(ct: string): boolean {
  const t = ct.toLowerCase().split(';')[0]!.trim();
  return t === 'application/json' || t.endsWith('+json') || t === 'text/json' || t === '*/*';
}

/** JSON first (the agent speaks JSON), then forms, multipart, text, anything. */
export function pickRequestType(types: string[]): string | undefined {
  const lower = (t: string) => t.toLowerCase();
  return (
    types.find((t) => lower(t).split(';')[0] === 'application/json') ??
    types.find((t) => /\+json(;|$)/i.test(t)) ??
    types.find((t) => lower(t).startsWith('application/x-www-form-urlencoded')) ??
    types.find((t) => lower(t).startsWith('multipart/form-data')) ??
    types.find((t) => lower(t).startsWith('text/')) ??
    types[0]
  );
}

const NO_PROPERTIES: Record<string, JsonSchema> = Object.freeze({});

/**
 * Top-level properties of an object schema, looking through `$ref` and `allOf`. Read-only: without
 * `allOf` it is the schema's own `properties` (callers only read it; a copy per call was garbage).
 */
export function topProperties(s: JsonSchema, defs: DefsLookup, depth = 0): Record<string, JsonSchema> {
  const r = resolveLocal(s, defs);
  if (typeof r !== 'object' || depth > 4) return NO_PROPERTIES;
  if (!Array.isArray(r.allOf)) return r.properties ?? NO_PROPERTIES;
  let out: Record<string, JsonSchema> = { ...(r.properties ?? {}) };
  for (const x of r.allOf as JsonSchema[]) out = { ...topProperties(x, defs, depth + 1), ...out };
  return out;
}

const cleaned = new Map<number, (text: string) => string>();
/**
 * `cleanDescription(text, max)`, each text cleaned once per cap: specs repeat their parameter
 * descriptions on every operation (Kubernetes' 300-character `fieldSelector`… on each of 1,123), and
 * the cleaning is a dozen regular-expression passes.
 */
export function cleanDescriptionOnce(text: string, max: number): string {
  let clean = cleaned.get(max);
  if (!clean) {
    clean = memoByText((t) => cleanDescription(t, max), 20_000);
    cleaned.set(max, clean);
  }
  return clean(text);
}
