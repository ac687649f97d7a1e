import type { ResponseClassifier } from '../classify/data-classes.js';
import type { ServerInfo, ToolAuth } from '../model/catalog.js';
import type { DefsLookup, JsonSchema } from '../model/json-schema.js';
import type { OpenApiDoc } from '../openapi/load.js';
import type { Operation } from './operation.js';
import type { ParameterReader } from './parameters.js';
import type { SchemaConverter } from './schema.js';

// Where the catalogue's modules have always found it.
export type { Operation };

/**
 * What every tool of one catalogue shares: the document, and one converter and one classifier,
 * so each schema is converted and summarised once per spec whichever tool reaches it first.
 */
export interface ToolContext {
  doc: OpenApiDoc;
  conv: SchemaConverter;
  responses: ResponseClassifier;
  inLookup: DefsLookup;
  outLookup: DefsLookup;
  schemes: Record<string, unknown>;
  docServers: ServerInfo[];
  maxDescription: number;
  /** The document's `security` read once: every operation without its own shares it (read-only). */
  docAuth: ToolAuth;
  /** Operations' parameters, each shared `$ref` and Parameter Object read once. */
  params: ParameterReader;
  /**
   * A Parameter Object's argument schema (converted, annotated) by that object: the same for every
   * operation using it, kept only when its conversion warned of nothing (a warning names the place).
   */
  paramSchemas: WeakMap<object, { schema: JsonSchema; deps: Set<string> }>;
}
