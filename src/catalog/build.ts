import { isOwned, operationAuth, ownedParameters } from '../classify/auth.js';
import { ResponseClassifier } from '../classify/data-classes.js';
import { secureDefaultExposure } from '../classify/exposure.js';
import { COLLECTION_KEYS, classifyRisk, LIST_WORDS, type OperationFacts } from '../classify/risk.js';
import { WardenError } from '../errors/index.js';
import {
  type ArgBinding,
  type Catalog,
  HTTP_METHODS,
  type HttpMethod,
  type PageSizeInfo,
  type ParamLocation,
  type ServerInfo,
  type StrippedParam,
  type Tool,
} from '../model/catalog.js';
import {
  type DefsLookup,
  type JsonSchema,
  type JsonSchemaObject,
  resolveLocal,
} from '../model/json-schema.js';
import type { LoadedSpec } from '../openapi/load.js';
import { escapePointerToken, getByPointer } from '../openapi/parse.js';
import { cleanDescription, cleanLine, words } from '../openapi/text.js';
import { assignNames } from './names.js';
import { SchemaConverter } from './schema.js';

export interface CatalogOptions {
  /** Longest tool description, in characters. */
  maxDescription?: number;
  onProgress?: (message: string) => void;
}

export const DEFAULT_MAX_DESCRIPTION = 1024;

/** Headers the gateway itself controls; an agent never sets them. */
const GATEWAY_HEADERS = new Set([
  'host',
  'content-length',
  'content-type',
  'transfer-encoding',
  'connection',
  'cookie',
  'te',
  'upgrade',
  'proxy-authorization',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
]);
/** Parameters that carry a caller credential by name, even where the spec forgot to declare a scheme. */
const CREDENTIAL_PARAM =
  /^(access_?token|api_?key|apikey|auth_?token|token|client_?secret|password|x-api-key|x-auth-token|private-token)$/i;
const PAGE_SIZE = new Set([
  'limit',
  'per_page',
  'perpage',
  'page_size',
  'pagesize',
  'size',
  'count',
  'max_results',
  'maxresults',
  'max_items',
  'maxitems',
  'top',
  'first',
  'take',
  'max',
  'results_per_page',
  'num',
  'rows',
  'page_limit',
  'max_page_size',
]);
const PAGINATION = new Set([
  'page',
  'cursor',
  'offset',
  'starting_after',
  'ending_before',
  'after',
  'before',
  'continue',
  'next',
  'page_token',
  'pagetoken',
  'next_token',
  'marker',
  'skip',
  'start',
  'page_number',
  'next_page',
  'next_cursor',
  'continuation_token',
  'from',
]);

interface RawParam {
  name: string;
  in: ParamLocation;
  required: boolean;
  description: string;
  deprecated: boolean;
  schema: unknown;
  style?: string;
  explode?: boolean;
  allowReserved?: boolean;
  pointer: string;
}

export function buildCatalog(spec: LoadedSpec, options: CatalogOptions = {}): Catalog {
  const doc = spec.doc;
  const maxDescription = options.maxDescription ?? DEFAULT_MAX_DESCRIPTION;
  const conv = new SchemaConverter(doc, spec.dialect);
  const responses = new ResponseClassifier();
  const inLookup = conv.lookup('input');
  const outLookup = conv.lookup('output');
  const warnings = [...spec.warnings];
  const schemes = asObject(asObject(doc.components)?.securitySchemes) ?? {};
  const docServers = servers(doc.servers);

  // Collect operations first so names can be assigned over the whole set.
  const ops: Array<{
    path: string;
    method: HttpMethod;
    op: Record<string, unknown>;
    item: Record<string, unknown>;
    pointer: string;
  }> = [];
  for (const [path, rawItem] of Object.entries(asObject(doc.paths) ?? {})) {
    const itemPointer = `#/paths/${escapePointerToken(path)}`;
    const item = follow(doc, rawItem, itemPointer);
    if (!item) continue;
    for (const method of HTTP_METHODS) {
      const op = asObject(item[method]);
      if (op) ops.push({ path, method, op, item, pointer: `${itemPointer}/${method}` });
    }
  }
  const names = assignNames(
    ops.map((o) => ({
      method: o.method,
      path: o.path,
      ...(typeof o.op.operationId === 'string' ? { operationId: o.op.operationId } : {}),
    })),
  );

  const tools: Tool[] = [];
  const step = ops.length > 200 ? 100 : Number.POSITIVE_INFINITY;
  ops.forEach((o, i) => {
    try {
      tools.push(buildTool(o, names[i]!));
    } catch (e) {
      if (e instanceof WardenError && e.location && !e.location.file) {
        throw new WardenError(e.code, `${o.method.toUpperCase()} ${o.path}: ${e.message}`, {
          location: { file: spec.source.label, pointer: e.location.pointer ?? o.pointer.slice(1) },
        });
      }
      throw e;
    }
    if ((i + 1) % step === 0) options.onProgress?.(`catalogued ${i + 1}/${ops.length} operations`);
  });
  warnings.push(...conv.warnings.slice(0, 200));
  if (conv.warnings.length > 200) warnings.push(`…and ${conv.warnings.length - 200} more schema warnings`);

  const info = asObject(doc.info) ?? {};
  return {
    title: cleanLine(typeof info.title === 'string' ? info.title : 'API', 200),
    apiVersion: cleanLine(String(info.version ?? ''), 60),
    specVersion: spec.originalVersion,
    source: spec.source.label,
    servers: docServers,
    tools,
    formats: [...conv.formats].sort(),
    warnings,
  };

  function buildTool(
    o: {
      path: string;
      method: HttpMethod;
      op: Record<string, unknown>;
      item: Record<string, unknown>;
      pointer: string;
    },
    name: string,
  ): Tool {
    const { path, method, op, item } = o;
    const auth = operationAuth(schemes, op.security, doc.security);
    const owned = ownedParameters(auth);
    const secured = auth.alternatives.length > 0;

    // Path-level parameters, overridden by operation-level ones with the same name and location.
    const params = new Map<string, RawParam>();
    for (const [list, base] of [
      [item.parameters, `${o.pointer.replace(/\/[a-z]+$/, '')}/parameters`],
      [op.parameters, `${o.pointer}/parameters`],
    ] as const) {
      if (!Array.isArray(list)) continue;
      list.forEach((raw, idx) => {
        const p = follow(doc, raw, `${base}/${idx}`);
        if (!p || typeof p.name !== 'string' || !isLocation(p.in)) return;
        const key = `${p.in}:${p.in === 'header' ? p.name.toLowerCase() : p.name}`;
        params.set(key, rawParam(p, `${base}/${idx}`));
      });
    }

    const stripped: StrippedParam[] = [];
    const visible: RawParam[] = [];
    for (const p of params.values()) {
      const owner = p.in !== 'path' ? isOwned(owned, p.in, p.name) : undefined;
      if (owner)
        stripped.push({
          in: p.in,
          name: p.name,
          reason: `credential of security scheme ${owner.scheme}; injected by the gateway`,
        });
      else if (p.in === 'header' && GATEWAY_HEADERS.has(p.name.toLowerCase()))
        stripped.push({ in: p.in, name: p.name, reason: 'header managed by the gateway' });
      else if (p.in !== 'path' && CREDENTIAL_PARAM.test(p.name) && secured)
        stripped.push({
          in: p.in,
          name: p.name,
          reason: 'looks like a credential; injected by the gateway, never taken from the agent',
        });
      else visible.push(p);
    }

    const properties: Record<string, JsonSchema> = {};
    const required: string[] = [];
    const inputDeps = new Set<string>();
    const bindings: ArgBinding[] = [];
    const taken = new Set<string>();
    const argName = (wire: string, where: string) => {
      let a =
        wire
          .replace(/\[\]$/, '')
          .replace(/[^A-Za-z0-9_.-]+/g, '_')
          .replace(/^_+|_+$/g, '')
          .slice(0, 64) || where;
      if (taken.has(a)) a = `${where}_${a}`.slice(0, 64);
      for (let n = 2; taken.has(a); n++) a = `${a.slice(0, 60)}_${n}`;
      taken.add(a);
      return a;
    };
    const facts: OperationFacts['args'] = [];

    // Path parameters first: they are what a model must always supply.
    visible.sort((a, b) => Number(b.in === 'path') - Number(a.in === 'path'));
    for (const p of visible) {
      const c = conv.convert(p.schema ?? {}, 'input', p.pointer);
      for (const d of c.deps) inputDeps.add(d);
      const schema = withAnnotations(c.schema, p.description, p.deprecated);
      const arg = argName(p.name, p.in);
      properties[arg] = schema;
      const req = p.required || p.in === 'path';
      if (req) required.push(arg);
      bindings.push({
        arg,
        in: p.in,
        name: p.name,
        required: req,
        ...(p.style !== undefined ? { style: p.style } : {}),
        ...(p.explode !== undefined ? { explode: p.explode } : {}),
        ...(p.allowReserved !== undefined ? { allowReserved: p.allowReserved } : {}),
      });
      facts.push({ name: p.name, description: p.description });
    }

    // Request body.
    const body = follow(doc, op.requestBody, `${o.pointer}/requestBody`);
    if (body) {
      const content = asObject(body.content) ?? {};
      const ct = pickRequestType(Object.keys(content));
      if (ct !== undefined) {
        const media = asObject(content[ct]) ?? {};
        let bodySchema: JsonSchema;
        if (media.schema !== undefined) {
          const c = conv.convert(
            media.schema,
            'input',
            `${o.pointer}/requestBody/content/${escapePointerToken(ct)}/schema`,
          );
          for (const d of c.deps) inputDeps.add(d);
          bodySchema = c.schema;
        } else {
          bodySchema = defaultBodySchema(ct);
        }
        if (secured && typeof bodySchema === 'object' && bodySchema.properties) {
          bodySchema = stripCredentialProps(bodySchema, stripped);
        }
        const arg = argName(taken.has('body') ? 'requestBody' : 'body', 'body');
        const desc = typeof body.description === 'string' ? body.description : '';
        properties[arg] = withAnnotations(bodySchema, desc || `Request body (${ct}).`, false);
        const req = body.required === true;
        if (req) required.push(arg);
        bindings.push({ arg, in: 'body', name: ct, required: req, contentType: ct });
        for (const [pn, ps] of Object.entries(topProperties(bodySchema, inLookup))) {
          facts.push({
            name: pn,
            description: typeof ps === 'object' && typeof ps.description === 'string' ? ps.description : '',
          });
        }
      }
    }

    const inputSchema: JsonSchemaObject = { type: 'object', properties, additionalProperties: false };
    if (required.length) inputSchema.required = required;
    // `$defs` are materialised on first use: most consumers (scan, tools/list filtering) never
    // need a tool's self-contained schema, and Stripe's tools each pull in hundreds of schemas.
    const inputSchemaOf = () => withDefs(inputSchema, conv.closure(inputDeps, 'input'));

    // Success response.
    const opResponses = asObject(op.responses) ?? {};
    const successCodes = Object.keys(opResponses)
      .filter((c) => /^2(\d\d|XX)$/i.test(c))
      .sort();
    const responseTypes = new Set<string>();
    let outRoot: JsonSchema | undefined;
    let outDeps = new Set<string>();
    for (const code of successCodes) {
      const r = follow(doc, opResponses[code], `${o.pointer}/responses/${code}`);
      const content = asObject(r?.content) ?? {};
      for (const t of Object.keys(content)) responseTypes.add(t.toLowerCase());
      if (outRoot !== undefined) continue;
      const jsonType = Object.keys(content).find(isJsonType);
      const schema = jsonType ? asObject(content[jsonType])?.schema : undefined;
      if (schema !== undefined) {
        const c = conv.convert(
          schema,
          'output',
          `${o.pointer}/responses/${code}/content/${escapePointerToken(jsonType!)}/schema`,
        );
        outRoot = c.schema;
        outDeps = c.deps;
      }
    }
    let outputSchema: JsonSchemaObject | undefined;
    let outputWrapped = false;
    if (outRoot !== undefined) {
      const resolved = resolveLocal(outRoot, outLookup);
      if (isObjectSchema(resolved, outLookup)) {
        outputSchema = typeof outRoot === 'object' ? { ...outRoot, type: 'object' } : { type: 'object' };
      } else {
        outputWrapped = true;
        outputSchema = { type: 'object', properties: { result: outRoot }, required: ['result'] };
      }
    }
    const data =
      outRoot !== undefined ? responses.classify(outRoot, outLookup) : { fields: [], truncated: false };

    // Paging.
    let pageSize: PageSizeInfo | undefined;
    let hasPagination = false;
    for (const b of bindings) {
      if (b.in !== 'query') continue;
      const key = words(b.name).join('_');
      const s = resolveLocal(properties[b.arg]!, inLookup);
      if (PAGE_SIZE.has(key) && isNumeric(s)) {
        const max = typeof s === 'object' ? (s.maximum ?? s.exclusiveMaximum) : undefined;
        pageSize = { arg: b.arg, ...(typeof max === 'number' ? { maximum: max } : {}) };
      } else if (PAGINATION.has(key)) hasPagination = true;
    }
    const opId = typeof op.operationId === 'string' ? op.operationId : undefined;
    const opWords = opId ? words(opId) : [];
    const literal = path.split('/').filter((s) => s && !/^\{.*\}$/.test(s));
    const isList =
      method === 'get' &&
      (returnsCollection(outRoot, outLookup) || opWords.slice(0, 3).some((w) => LIST_WORDS.has(w)));

    const tags = Array.isArray(op.tags) ? op.tags.filter((t): t is string => typeof t === 'string') : [];
    const risk = classifyRisk({
      method,
      path,
      ...(opId !== undefined ? { operationId: opId } : {}),
      tags,
      pathWords: literal.flatMap((s) => words(s)),
      lastSegmentWords: words(literal[literal.length - 1] ?? ''),
      opWords,
      args: facts,
      responseContentTypes: [...responseTypes],
      scopes: auth.alternatives.flat().flatMap((r) => r.scopes),
      dataFields: data.fields,
      ...(pageSize ? { pageSize } : {}),
      hasPagination,
      isList,
    });

    const summary = typeof op.summary === 'string' ? cleanLine(op.summary, 200) : '';
    const longText = typeof op.description === 'string' ? op.description : '';
    const deprecated = op.deprecated === true;
    let description = cleanDescription([summary, longText].filter(Boolean).join('\n\n'), maxDescription);
    if (!description) description = `${method.toUpperCase()} ${cleanLine(path, 200)}`;
    if (deprecated) description = `[deprecated] ${description}`;

    const readOnly = !risk.classes.includes('write');
    const tool: Tool = {
      name,
      ...(summary ? { title: summary } : {}),
      description,
      inputSchema,
      ...(outputSchema ? { outputSchema } : {}),
      outputWrapped,
      annotations: {
        ...(summary ? { title: summary } : {}),
        readOnlyHint: readOnly,
        destructiveHint: risk.classes.includes('destructive'),
        idempotentHint: readOnly || method === 'put' || method === 'delete',
        openWorldHint: true,
      },
      source: {
        method,
        path,
        ...(opId !== undefined ? { operationId: cleanLine(opId, 200) } : {}),
        tags: tags.map((t) => cleanLine(t, 100)),
        pointer: o.pointer,
        servers: servers(op.servers ?? item.servers).length
          ? servers(op.servers ?? item.servers)
          : docServers,
        deprecated,
      },
      bindings,
      strippedParams: stripped,
      responseContentTypes: [...responseTypes],
      risk,
      dataClasses: data.fields,
      dataClassesTruncated: data.truncated,
      auth,
      ...(pageSize ? { pageSize } : {}),
      exposure: { exposed: false, reasons: [] },
    };
    tool.exposure = secureDefaultExposure(tool);
    lazy(tool, 'inputSchema', inputSchemaOf);
    if (outputSchema) {
      const out = outputSchema;
      lazy(tool, 'outputSchema', () => withDefs(out, conv.closure(outDeps, 'output')));
    }
    return tool;
  }
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

function rawParam(p: Record<string, unknown>, pointer: string): RawParam {
  let schema = p.schema;
  if (schema === undefined) {
    // 3.x `content`-style parameter: its one media type carries the schema.
    const content = asObject(p.content);
    const first = content ? asObject(Object.values(content)[0]) : undefined;
    schema = first?.schema;
  }
  return {
    name: p.name as string,
    in: p.in as ParamLocation,
    required: p.required === true,
    description: typeof p.description === 'string' ? p.description : '',
    deprecated: p.deprecated === true,
    schema,
    ...(typeof p.style === 'string' ? { style: p.style } : {}),
    ...(typeof p.explode === 'boolean' ? { explode: p.explode } : {}),
    ...(typeof p.allowReserved === 'boolean' ? { allowReserved: p.allowReserved } : {}),
    pointer,
  };
}

/** Follows local `$ref`s (parameters, bodies, responses, path items) in the bundled document. */
function follow(doc: unknown, raw: unknown, where: string): Record<string, unknown> | undefined {
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

function asObject(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

function isLocation(v: unknown): v is ParamLocation {
  return v === 'path' || v === 'query' || v === 'header' || v === 'cookie';
}

function servers(raw: unknown): ServerInfo[] {
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

function defaultBodySchema(ct: string): JsonSchemaObject {
  if (/^text\//i.test(ct) || isJsonType(ct)) return ct === '*/*' ? {} : { type: 'string' };
  return { type: 'string', contentEncoding: 'base64' };
}

function withAnnotations(schema: JsonSchema, description: string, deprecated: boolean): JsonSchema {
  const d = cleanDescription(description, 300);
  if (!d && !deprecated) return schema;
  const base: JsonSchemaObject = typeof schema === 'object' ? { ...schema } : schema ? {} : { not: {} };
  if (d && !base.description) base.description = d;
  if (deprecated) base.deprecated = true;
  return base;
}

function stripCredentialProps(schema: JsonSchemaObject, stripped: StrippedParam[]): JsonSchemaObject {
  const props = { ...schema.properties };
  let changed = false;
  for (const k of Object.keys(props)) {
    if (CREDENTIAL_PARAM.test(k)) {
      delete props[k];
      changed = true;
      stripped.push({
        in: 'query',
        name: k,
        reason: 'body field looks like a credential; injected by the gateway, never taken from the agent',
      });
    }
  }
  if (!changed) return schema;
  const out: JsonSchemaObject = { ...schema, properties: props };
  if (out.required) out.required = out.required.filter((r) => r in props);
  return out;
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

function isNumeric(s: JsonSchema): boolean {
  if (typeof s !== 'object') return false;
  const t = s.type;
  return (
    t === undefined ||
    t === 'integer' ||
    t === 'number' ||
    (Array.isArray(t) && (t.includes('integer') || t.includes('number')))
  );
}

function returnsCollection(root: JsonSchema | undefined, defs: DefsLookup): boolean {
  if (root === undefined) return false;
  const s = resolveLocal(root, defs);
  if (typeof s !== 'object') return false;
  if (s.type === 'array' || (Array.isArray(s.type) && s.type.includes('array'))) return true;
  for (const [k, v] of Object.entries(topProperties(s, defs))) {
    if (!COLLECTION_KEYS.has(k.toLowerCase())) continue;
    const r = resolveLocal(v, defs);
    if (typeof r === 'object' && r.type === 'array') return true;
  }
  return false;
}

/** Top-level properties of an object schema, looking through `$ref` and `allOf`. */
function topProperties(s: JsonSchema, defs: DefsLookup, depth = 0): Record<string, JsonSchema> {
  const r = resolveLocal(s, defs);
  if (typeof r !== 'object' || depth > 4) return {};
  let out: Record<string, JsonSchema> = { ...(r.properties ?? {}) };
  if (Array.isArray(r.allOf))
    for (const x of r.allOf as JsonSchema[]) out = { ...topProperties(x, defs, depth + 1), ...out };
  return out;
}
