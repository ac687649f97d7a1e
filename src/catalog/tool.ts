import { operationAuth } from '../classify/auth.js';
import { cachedWords } from '../classify/data-classes.js';
import { secureDefaultExposure } from '../classify/exposure.js';
import { classifyRisk, isTopSecret, pathWordsOf, type RiskResult, TOP_SECRETS } from '../classify/risk.js';
import type { DataField, HttpMethod, PageSizeInfo, Tool, ToolAuth, ToolSource } from '../model/catalog.js';
import type { DefsLookup, JsonSchema, JsonSchemaObject } from '../model/json-schema.js';
import { cleanLine } from '../openapi/text.js';
import type { Operation, ToolContext } from './context.js';
import { describeOperation } from './description.js';
import { servers } from './doc.js';
import { buildInput, type ToolInput } from './input.js';
import { buildOutput, type ToolOutput } from './output.js';
import { detectPaging, isListOperation } from './paging.js';

/**
 * One operation becomes one tool: its arguments (parameters, then body), its output schema and
 * data classes, the facts the risk classifier reads, a description, and MCP's annotations.
 */
export function buildTool(ctx: ToolContext, o: Operation, name: string): Tool {
  const { path, method, op, item } = o;
  // Without its own `security` an operation has the document's, read once per catalogue.
  const auth = Array.isArray(op.security)
    ? operationAuth(ctx.schemes, op.security, ctx.doc.security)
    : ctx.docAuth;
  const input = buildInput(ctx, o, auth);
  const output = buildOutput(ctx, o);
  // One array for the tool and the risk facts (the rules only read it).
  const responseContentTypes = [...output.responseTypes];
  const { risk, opId, tags, pageSize } = assessRisk(ctx, o, auth, input, output, responseContentTypes);
  const { summary, description, deprecated } = describeOperation(
    o,
    { bindings: input.bindings, properties: input.properties, lookup: ctx.inLookup },
    ctx.maxDescription,
  );
  const source: ToolSource = {
    method,
    path,
    ...(opId !== undefined ? { operationId: cleanLine(opId, 200) } : {}),
    tags: tags.map((t) => cleanLine(t, 100)),
    pointer: o.pointer,
    servers: servers(op.servers ?? item.servers).length
      ? servers(op.servers ?? item.servers)
      : ctx.docServers,
    deprecated,
  };
  const tool: Tool = {
    name,
    ...(summary ? { title: summary } : {}),
    description,
    inputSchema: input.schema,
    ...(output.schema ? { outputSchema: output.schema } : {}),
    outputWrapped: output.wrapped,
    annotations: annotations(summary, risk, method),
    source,
    bindings: input.bindings,
    strippedParams: input.stripped,
    responseContentTypes,
    risk,
    dataClasses: [],
    dataClassesTruncated: false,
    auth,
    ...(pageSize ? { pageSize } : {}),
    exposure: { exposed: false, reasons: [] },
  };
  tool.exposure = secureDefaultExposure(tool);
  attachLazies(
    tool,
    {
      input: input.schema,
      inputDeps: input.deps,
      output: output.schema,
      outputDeps: output.deps,
      root: output.root,
    },
    { closure: (roots, mode) => ctx.conv.closure(roots, mode), outLookup: ctx.outLookup },
    output.data,
  );
  return tool;
}

/**
 * What a tool's lazy fields are computed from (its schemas before `$defs`, their references, and the
 * response's root schema): kept per tool so that ./snapshot.ts can store a built catalogue and give a
 * restored one the same lazies.
 */
export interface ToolParts {
  input: JsonSchemaObject;
  inputDeps: Iterable<string>;
  output: JsonSchemaObject | undefined;
  outputDeps: Iterable<string>;
  root: JsonSchema | undefined;
}

/** Where the lazies find the catalogue's converted definitions (a SchemaConverter, or a restored copy). */
export interface DefsSource {
  closure(roots: Iterable<string>, mode: 'input' | 'output'): Record<string, JsonSchema>;
  outLookup: DefsLookup;
}

/**
 * Makes `inputSchema`, `outputSchema`, `dataClasses` and `dataClassesTruncated` lazy (in the places
 * the tool already has them), and records the tool's parts. Both a built and a restored tool go
 * through here, so they compute the same values the same way.
 */
export function attachLazies(
  tool: Tool,
  parts: ToolParts,
  defs: DefsSource,
  data: () => { fields: DataField[]; truncated: boolean },
): void {
  toolParts.set(tool, { parts, defs });
  // `$defs` are materialised on first use: most consumers (scan, tools/list filtering) never
  // need a tool's self-contained schema, and Stripe's tools each pull in hundreds of schemas.
  lazy(tool, 'inputSchema', () => withDefs(parts.input, defs.closure(parts.inputDeps, 'input')));
  if (parts.output) {
    const out = parts.output;
    lazy(tool, 'outputSchema', () => withDefs(out, defs.closure(parts.outputDeps, 'output')));
    outputParts.set(tool, { schema: out, defs: defs.outLookup });
  }
  // Scan reports, confirmations and the taint guard read them; the risk rules did not need them all.
  lazy(tool, 'dataClasses', () => data().fields);
  lazy(tool, 'dataClassesTruncated', () => data().truncated);
}

const outputParts = new WeakMap<Tool, { schema: JsonSchemaObject; defs: DefsLookup }>();
const toolParts = new WeakMap<Tool, { parts: ToolParts; defs: DefsSource }>();

/** What a tool made by `buildTool` (or restored) computes its lazies from; undefined for a copy. */
export function partsOf(t: Tool): { parts: ToolParts; defs: DefsSource } | undefined {
  return toolParts.get(t);
}

/**
 * A catalogued tool's output schema without its `$defs`, and the catalogue's definitions by key
 * (every `$ref` in it and under it resolves there as in `outputSchema.$defs`): publishing an outline
 * reads a few definitions, and building each listed tool's closure was a quarter of Stripe's first
 * `tools/list`. Undefined for a tool without one, or not made by `buildTool` (a copy).
 */
export function outputSchemaParts(t: Tool): { schema: JsonSchemaObject; defs: DefsLookup } | undefined {
  return outputParts.get(t);
}

/** Gathers what the risk classifier reads about the operation, and asks it. */
function assessRisk(
  ctx: ToolContext,
  o: Operation,
  auth: ToolAuth,
  input: ToolInput,
  output: ToolOutput,
  responseContentTypes: string[],
): { risk: RiskResult; opId: string | undefined; tags: string[]; pageSize: PageSizeInfo | undefined } {
  const { path, method, op } = o;
  const { pageSize, hasPagination } = detectPaging(input.bindings, input.properties, ctx.inLookup);
  const opId = typeof op.operationId === 'string' ? op.operationId : undefined;
  // Cached: the same segments and ids recur across a spec's operations (read-only arrays).
  const opWords = opId ? cachedWords(opId) : [];
  const { pathWords, lastSegmentWords } = pathWordsOf(path);
  const isList = isListOperation(method, output.root, ctx.outLookup, opWords);
  const tags = Array.isArray(op.tags) ? op.tags.filter((t): t is string => typeof t === 'string') : [];
  const risk = classifyRisk({
    method,
    path,
    ...(opId !== undefined ? { operationId: opId } : {}),
    tags,
    pathWords,
    lastSegmentWords,
    opWords,
    args: input.facts,
    responseContentTypes,
    scopes: auth.alternatives.flat().flatMap((r) => r.scopes),
    dataFields: topSecretField(ctx, output),
    ...(pageSize ? { pageSize } : {}),
    hasPagination,
    isList,
  });
  return { risk, opId, tags, pageSize };
}

/**
 * Whether the response may hold a top-level secret field, the one thing the risk rules read of its
 * data fields (`credential-response`). When the bounded search says it cannot, the full walk would
 * list none either (it visits a subset of what the search visits), so the rules get no fields and
 * decide exactly as with all of them; otherwise the walk runs, up to its first such field.
 */
function topSecretsMayBe(ctx: ToolContext, output: ToolOutput): boolean {
  return output.root !== undefined && ctx.responses.mayFind(output.root, ctx.outLookup, TOP_SECRETS);
}

/**
 * What the risk rules read of the response's data fields: only `credential-response` reads them, for
 * the first top-level secret of the full walk's list. That field alone (the walk stopped there) gives
 * the same finding; the full list is walked when something needs it (`dataClasses`), and not at all
 * here when a walk of the secret candidates alone shows it lists none (`firstSecret`).
 */
function topSecretField(ctx: ToolContext, output: ToolOutput): DataField[] {
  if (!topSecretsMayBe(ctx, output)) return [];
  const f = ctx.responses.firstSecret(output.root!, ctx.outLookup, isTopSecret);
  return f ? [f] : [];
}

/** MCP's hints, from the risk classes: anything not a write is read-only. */
function annotations(summary: string, risk: RiskResult, method: HttpMethod): Tool['annotations'] {
  const readOnly = !risk.classes.includes('write');
  return {
    ...(summary ? { title: summary } : {}),
    readOnlyHint: readOnly,
    destructiveHint: risk.classes.includes('destructive'),
    idempotentHint: readOnly || method === 'put' || method === 'delete',
    openWorldHint: true,
  };
}

/** Replaces a property with an enumerable getter that computes the value once, on first read. */
function lazy<T extends object, K extends keyof T>(obj: T, key: K, compute: () => T[K]): void {
  Object.defineProperty(obj, key, {
    enumerable: true,
    configurable: true,
    get() {
      const value = compute();
      Object.defineProperty(obj, key, { value, enumerable: true, configurable: true, writable: true });
      return value;
    },
  });
}

function withDefs(schema: JsonSchemaObject, defs: Record<string, JsonSchema>): JsonSchemaObject {
  return Object.keys(defs).length > 0 ? { ...schema, $defs: defs } : schema;
}
