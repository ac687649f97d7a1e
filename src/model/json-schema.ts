/** A JSON Schema (2020-12) as produced by the catalogue: an object or a boolean. */
export type JsonSchema = boolean | JsonSchemaObject;
export interface JsonSchemaObject {
  [keyword: string]: unknown;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema;
  description?: string;
}

export const JSON_SCHEMA_DIALECT = 'https://json-schema.org/draft/2020-12/schema';

/**
 * Keywords whose value is a subschema, a list of subschemas, or a map of names to subschemas
 * (2020-12 applicators), besides `items` and `properties`, which walkers usually handle apart.
 */
export const SUBSCHEMA_KEYWORDS = [
  'additionalProperties',
  'unevaluatedProperties',
  'propertyNames',
  'contains',
  'not',
  'if',
  'then',
  'else',
  'unevaluatedItems',
  'contentSchema',
] as const;
export const SUBSCHEMA_LIST_KEYWORDS = ['allOf', 'anyOf', 'oneOf', 'prefixItems'] as const;
export const SUBSCHEMA_MAP_KEYWORDS = ['patternProperties', 'dependentSchemas'] as const;

/** Finds a converted schema by its `$defs` key. */
export type DefsLookup = (key: string) => JsonSchema | undefined;

/** A lookup over a plain `$defs` record. */
export function defsOf(record: Record<string, JsonSchema>): DefsLookup {
  return (key) => (Object.hasOwn(record, key) ? record[key] : undefined);
}

/** Follows `#/$defs/…` references (bounded, cycle-safe). */
export function resolveLocal(s: JsonSchema, defs: DefsLookup): JsonSchema {
  let cur = s;
  for (let i = 0; i < 16 && typeof cur === 'object' && typeof cur.$ref === 'string'; i++) {
    const next = defs(cur.$ref.slice('#/$defs/'.length));
    if (next === undefined) break;
    cur = next;
  }
  return cur;
}
