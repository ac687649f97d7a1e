import { isOwned, type ownedParameters } from '../classify/auth.js';
import type { ParamLocation, StrippedParam } from '../model/catalog.js';
import type { JsonSchemaObject } from '../model/json-schema.js';
import type { Operation } from './context.js';
import { asObject, follow } from './doc.js';

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
  // W3C trace context: the gateway names its own span to the upstream (or sends none).
  'traceparent',
  'tracestate',
  'baggage',
]);
/** Parameters that carry a caller credential by name, even where the spec forgot to declare a scheme. */
const CREDENTIAL_PARAM =
  /^(access_?token|api_?key|apikey|auth_?token|token|client_?secret|password|x-api-key|x-auth-token|private-token)$/i;

/** A parameter as the spec declares it, `$ref` followed, before it becomes an argument. */
export interface RawParam {
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

/** Path-level parameters, overridden by operation-level ones with the same name and location. */
export function mergeParameters(doc: unknown, o: Operation): Map<string, RawParam> {
  const params = new Map<string, RawParam>();
  for (const [list, base] of [
    [o.item.parameters, `${o.pointer.replace(/\/[a-z]+$/, '')}/parameters`],
    [o.op.parameters, `${o.pointer}/parameters`],
  ] as const) {
    if (!Array.isArray(list)) continue;
    list.forEach((raw, idx) => {
      const p = follow(doc, raw, `${base}/${idx}`);
      if (!p || typeof p.name !== 'string' || !isLocation(p.in)) return;
      const key = `${p.in}:${p.in === 'header' ? p.name.toLowerCase() : p.name}`;
      params.set(key, rawParam(p, `${base}/${idx}`));
    });
  }
  return params;
}

/**
 * Splits the parameters into those the agent sees and those the gateway keeps to itself: the
 * security schemes' credentials, the headers it manages, and anything named like a credential on a
 * secured operation. Each stripped one is listed with the reason, for `scan` and `explain`.
 */
export function partitionParameters(
  params: Iterable<RawParam>,
  owned: ReturnType<typeof ownedParameters>,
  secured: boolean,
): { stripped: StrippedParam[]; visible: RawParam[] } {
  const stripped: StrippedParam[] = [];
  const visible: RawParam[] = [];
  for (const p of params) {
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
  return { stripped, visible };
}

/** Drops top-level body fields named like a credential, recording each in `stripped`. */
export function stripCredentialProps(schema: JsonSchemaObject, stripped: StrippedParam[]): JsonSchemaObject {
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

function isLocation(v: unknown): v is ParamLocation {
  return v === 'path' || v === 'query' || v === 'header' || v === 'cookie';
}
