import { isOwned, type ownedParameters } from '../classify/auth.js';
import type { ParamLocation, StrippedParam } from '../model/catalog.js';
import type { JsonSchemaObject } from '../model/json-schema.js';
import { asObject, follow } from './doc.js';
import type { Operation } from './operation.js';

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
  /** The Parameter Object it was read from (`$ref` followed): shared by every operation using it. */
  source: Record<string, unknown>;
}

/** What a Parameter Object says, read once (null: not a usable parameter), with its merge key. */
interface ParamFacts extends Omit<RawParam, 'pointer' | 'source' | 'style' | 'explode' | 'allowReserved'> {
  key: string;
  style: string | undefined;
  explode: boolean | undefined;
  allowReserved: boolean | undefined;
}

/**
 * Reads operations' parameters for one catalogue. Specs share parameters between operations
 * (Kubernetes: 7,600 uses of a few hundred objects, path-level ones repeated on every method): each
 * `$ref` is resolved once and each Parameter Object read once. The document does not change while
 * a catalogue is built; a new build gets a new reader.
 */
export class ParameterReader {
  private readonly refs = new Map<string, Record<string, unknown> | undefined>();
  private readonly facts = new WeakMap<object, ParamFacts | null>();

  constructor(private readonly doc: unknown) {}

  /** Path-level parameters, overridden by operation-level ones with the same name and location. */
  merge(o: Operation): Map<string, RawParam> {
    const params = new Map<string, RawParam>();
    const itemList = o.item.parameters;
    if (Array.isArray(itemList))
      this.add(params, itemList, `${o.pointer.slice(0, o.pointer.lastIndexOf('/'))}/parameters`);
    const opList = o.op.parameters;
    if (Array.isArray(opList)) this.add(params, opList, `${o.pointer}/parameters`);
    return params;
  }

  private add(params: Map<string, RawParam>, list: unknown[], base: string): void {
    for (let idx = 0; idx < list.length; idx++) {
      const pointer = `${base}/${idx}`;
      const p = this.follow(list[idx], pointer);
      if (!p) continue;
      let f = this.facts.get(p);
      if (f === undefined) {
        f = readFacts(p);
        this.facts.set(p, f);
      }
      if (f === null) continue;
      const r: RawParam = {
        name: f.name,
        in: f.in,
        required: f.required,
        description: f.description,
        deprecated: f.deprecated,
        schema: f.schema,
        pointer,
        source: p,
      };
      if (f.style !== undefined) r.style = f.style;
      if (f.explode !== undefined) r.explode = f.explode;
      if (f.allowReserved !== undefined) r.allowReserved = f.allowReserved;
      params.set(f.key, r);
    }
  }

  /** `follow`, with what a local `$ref` led to kept by its text (a failing one throws every time). */
  private follow(raw: unknown, where: string): Record<string, unknown> | undefined {
    const ref = asObject(raw)?.$ref;
    if (typeof ref !== 'string') return follow(this.doc, raw, where);
    if (this.refs.has(ref)) return this.refs.get(ref);
    const p = follow(this.doc, raw, where);
    this.refs.set(ref, p);
    return p;
  }
}

function readFacts(p: Record<string, unknown>): ParamFacts | null {
  if (typeof p.name !== 'string' || !isLocation(p.in)) return null;
  let schema = p.schema;
  if (schema === undefined) {
    // 3.x `content`-style parameter: its one media type carries the schema.
    const content = asObject(p.content);
    const first = content ? asObject(Object.values(content)[0]) : undefined;
    schema = first?.schema;
  }
  return {
    key: `${p.in}:${p.in === 'header' ? p.name.toLowerCase() : p.name}`,
    name: p.name,
    in: p.in,
    required: p.required === true,
    description: typeof p.description === 'string' ? p.description : '',
    deprecated: p.deprecated === true,
    schema,
    style: typeof p.style === 'string' ? p.style : undefined,
    explode: typeof p.explode === 'boolean' ? p.explode : undefined,
    allowReserved: typeof p.allowReserved === 'boolean' ? p.allowReserved : undefined,
  };
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

function isLocation(v: unknown): v is ParamLocation {
  return v === 'path' || v === 'query' || v === 'header' || v === 'cookie';
}
