import { operationAuth } from '../classify/auth.js';
import { ResponseClassifier } from '../classify/data-classes.js';
import { WardenError } from '../errors/index.js';
import { type Catalog, HTTP_METHODS, type Tool } from '../model/catalog.js';
import type { LoadedSpec, OpenApiDoc } from '../openapi/load.js';
import { escapePointerToken } from '../openapi/parse.js';
import { cleanLine } from '../openapi/text.js';
import type { Operation, ToolContext } from './context.js';
import { asObject, follow, servers } from './doc.js';
import { assignNames } from './names.js';
import { ParameterReader } from './parameters.js';
import { SchemaConverter } from './schema.js';
import { buildTool } from './tool.js';

// The media-type helpers moved to ./doc.js; the pipeline imports them from here.

export interface CatalogOptions {
  /** Longest tool description, in characters. */
  maxDescription?: number;
  onProgress?: (message: string) => void;
}

export const DEFAULT_MAX_DESCRIPTION = 1024;

/**
 * Turns a loaded spec into the catalogue: every operation under `paths` becomes one tool (see
 * ./tool.ts), named over the whole set at once. An error in one operation is reported with the
 * spec file and the operation's method and path.
 */
export function buildCatalog(spec: LoadedSpec, options: CatalogOptions = {}): Catalog {
  const b = catalogBuilder(spec, options);
  const n = b.ops.length;
  const step = n > 200 ? 100 : Number.POSITIVE_INFINITY;
  const tools: Tool[] = [];
  for (let i = 0; i < n; i++) {
    tools.push(b.tool(i));
    if ((i + 1) % step === 0) options.onProgress?.(`catalogued ${i + 1}/${n} operations`);
  }
  return b.finish(tools);
}

/**
 * A catalogue's build in steps (./early.ts builds one a slice at a time): the operations and their
 * names, over the whole set; one tool at a time, in order; then the catalogue from the tools.
 */
export interface CatalogBuilder {
  readonly ctx: ToolContext;
  readonly ops: readonly Operation[];
  readonly names: readonly string[];
  /** The tool of operation `i` (errors name the spec file and the operation). */
  tool(i: number): Tool;
  /** The catalogue of `tools` (every operation's, in order), with the converter's warnings and formats. */
  finish(tools: Tool[]): Catalog;
}

export function catalogBuilder(spec: LoadedSpec, options: CatalogOptions = {}): CatalogBuilder {
  const doc = spec.doc;
  const conv = new SchemaConverter(doc, spec.dialect);
  const schemes = asObject(asObject(doc.components)?.securitySchemes) ?? {};
  const ctx: ToolContext = {
    doc,
    conv,
    responses: new ResponseClassifier(),
    inLookup: conv.lookup('input'),
    outLookup: conv.lookup('output'),
    schemes,
    docServers: servers(doc.servers),
    maxDescription: options.maxDescription ?? DEFAULT_MAX_DESCRIPTION,
    docAuth: operationAuth(schemes, undefined, doc.security),
    params: new ParameterReader(doc),
    paramSchemas: new WeakMap(),
  };
  // Collect operations first so names can be assigned over the whole set.
  const ops = collectOperations(doc);
  const names = assignNames(
    ops.map((o) => ({
      method: o.method,
      path: o.path,
      ...(typeof o.op.operationId === 'string' ? { operationId: o.op.operationId } : {}),
    })),
  );
  const tool = (i: number): Tool => {
    const o = ops[i]!;
    try {
      return buildTool(ctx, o, names[i]!);
    } catch (e) {
      if (e instanceof WardenError && e.location && !e.location.file) {
        throw new WardenError(e.code, `${o.method.toUpperCase()} ${o.path}: ${e.message}`, {
          location: { file: spec.source.label, pointer: e.location.pointer ?? o.pointer.slice(1) },
        });
      }
      throw e;
    }
  };
  const finish: CatalogBuilder['finish'] = (tools) => {
    const warnings = [...spec.warnings];
    warnings.push(...conv.warnings.slice(0, 200));
    if (conv.warnings.length > 200) warnings.push(`…and ${conv.warnings.length - 200} more schema warnings`);
    const info = asObject(doc.info) ?? {};
    return {
      title: cleanLine(typeof info.title === 'string' ? info.title : 'API', 200),
      apiVersion: cleanLine(String(info.version ?? ''), 60),
      specVersion: spec.originalVersion,
      source: spec.source.label,
      servers: ctx.docServers,
      tools,
      formats: [...conv.formats].sort(),
      warnings,
    };
  };
  return { ctx, ops, names, tool, finish };
}

/** Every operation under `paths`, in document order, path items' `$ref`s followed. */
export function collectOperations(doc: OpenApiDoc): Operation[] {
  const ops: Operation[] = [];
  for (const [path, rawItem] of Object.entries(asObject(doc.paths) ?? {})) {
    const itemPointer = `#/paths/${escapePointerToken(path)}`;
    const item = follow(doc, rawItem, itemPointer);
    if (!item) continue;
    for (const method of HTTP_METHODS) {
      const op = asObject(item[method]);
      if (op) ops.push({ path, method, op, item, pointer: `${itemPointer}/${method}` });
    }
  }
  return ops;
}
