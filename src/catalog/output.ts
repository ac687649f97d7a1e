import { memoByText } from '../lib/text-memo.js';
import type { DataField } from '../model/catalog.js';
import {
  type DefsLookup,
  type JsonSchema,
  type JsonSchemaObject,
  resolveLocal,
} from '../model/json-schema.js';
import { escapePointerToken } from '../openapi/parse.js';
import type { Operation, ToolContext } from './context.js';
import { asObject, follow, isJsonType } from './doc.js';

/** The output side of a tool: what its success response looks like and what data it carries. */
export interface ToolOutput {
  /** The first success response's JSON schema as converted, before any wrapping. */
  root: JsonSchema | undefined;
  /** Pointers of the converted schemas the root refers to. */
  deps: Set<string>;
  /** Every content type of any success response, lower-cased. */
  responseTypes: Set<string>;
  /** What is published as `outputSchema`: always an object, without `$defs`. */
  schema: JsonSchemaObject | undefined;
  /** True when a non-object result is published as `{ result }`. */
  wrapped: boolean;
  /**
   * The response's classified data fields, walked on first use (then kept): the risk rules need only
   * to know whether a top-level secret may be there (`ResponseClassifier.mayFind`), and the full
   * walk was the largest part of building Stripe's catalogue.
   */
  data(): { fields: DataField[]; truncated: boolean };
}

export function buildOutput(ctx: ToolContext, o: Operation): ToolOutput {
  const { root, deps, responseTypes } = successResponse(ctx, o);
  const { schema, wrapped } = publishedShape(root, ctx.outLookup);
  let data: { fields: DataField[]; truncated: boolean } | undefined;
  const walk = () => {
    data ??=
      root !== undefined ? ctx.responses.classify(root, ctx.outLookup) : { fields: [], truncated: false };
    return data;
  };
  return { root, deps, responseTypes, schema, wrapped, data: walk };
}

/** The lowest 2xx response with a JSON body gives the schema; every 2xx gives its content types. */
function successResponse(
  ctx: ToolContext,
  o: Operation,
): { root: JsonSchema | undefined; deps: Set<string>; responseTypes: Set<string> } {
  const opResponses = asObject(o.op.responses) ?? {};
  const successCodes = Object.keys(opResponses)
    .filter((c) => /^2(\d\d|XX)$/i.test(c))
    .sort();
  const responseTypes = new Set<string>();
  let root: JsonSchema | undefined;
  let deps = new Set<string>();
  for (const code of successCodes) {
    const r = follow(ctx.doc, opResponses[code], `${o.pointer}/responses/${code}`);
    const content = asObject(r?.content) ?? {};
    for (const t of Object.keys(content)) responseTypes.add(t.toLowerCase());
    if (root !== undefined) continue;
    const jsonType = Object.keys(content).find(jsonMediaType);
    const schema = jsonType ? asObject(content[jsonType])?.schema : undefined;
    if (schema !== undefined) {
      const c = ctx.conv.convert(
        schema,
        'output',
        `${o.pointer}/responses/${code}/content/${escapePointerToken(jsonType!)}/schema`,
      );
      root = c.schema;
      deps = c.deps;
    }
  }
  return { root, deps, responseTypes };
}

/** `isJsonType` once per media type: every response of a spec names the same few (Kubernetes: five each). */
const jsonMediaType = memoByText((ct) => isJsonType(ct), 1_000);

/** MCP publishes objects: an object schema goes as it is, anything else inside `{ result }`. */
function publishedShape(
  root: JsonSchema | undefined,
  defs: DefsLookup,
): { schema: JsonSchemaObject | undefined; wrapped: boolean } {
  if (root === undefined) return { schema: undefined, wrapped: false };
  if (isObjectSchema(resolveLocal(root, defs), defs)) {
    return {
      schema: typeof root === 'object' ? { ...root, type: 'object' } : { type: 'object' },
      wrapped: false,
    };
  }
  return { schema: { type: 'object', properties: { result: root }, required: ['result'] }, wrapped: true };
}

function isObjectSchema(s: JsonSchema, defs: DefsLookup): boolean {
  if (typeof s !== 'object') return false;
  if (s.type === 'object') return true;
  if (s.type !== undefined) return false;
  if (s.properties) return true;
  const all = s.allOf as JsonSchema[] | undefined;
  return (
    Array.isArray(all) && all.length > 0 && all.every((x) => isObjectSchema(resolveLocal(x, defs), defs))
  );
}
