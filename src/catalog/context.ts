import type { ResponseClassifier } from '../classify/data-classes.js';
import type { HttpMethod, ServerInfo } from '../model/catalog.js';
import type { DefsLookup } from '../model/json-schema.js';
import type { OpenApiDoc } from '../openapi/load.js';
import type { SchemaConverter } from './schema.js';

/** One operation of the document, as the walk over `paths` found it. */
export interface Operation {
  path: string;
  method: HttpMethod;
  op: Record<string, unknown>;
  /** The (followed) Path Item holding it: path-level parameters and servers. */
  item: Record<string, unknown>;
  /** JSON pointer of the operation, `#/paths/…/get`. */
  pointer: string;
}

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
}
