import { ownedParameters } from '../classify/auth.js';
import type { OperationFacts } from '../classify/risk.js';
import { memoByText } from '../lib/text-memo.js';
import type { ArgBinding, StrippedParam, ToolAuth } from '../model/catalog.js';
import type { JsonSchema, JsonSchemaObject } from '../model/json-schema.js';
import { escapePointerToken } from '../openapi/parse.js';
import type { Operation, ToolContext } from './context.js';
import { asObject, cleanDescriptionOnce, follow, isJsonType, pickRequestType, topProperties } from './doc.js';
import { partitionParameters, type RawParam, stripCredentialProps } from './parameters.js';

/** The input side of a tool: its arguments, where each goes on the wire, and what was kept back. */
export interface ToolInput {
  /** The arguments' schema, without `$defs` (the tool materialises them from `deps` on first read). */
  schema: JsonSchemaObject;
  /** `schema.properties`: the argument schemas by argument name. */
  properties: Record<string, JsonSchema>;
  /** Pointers of the converted schemas the arguments refer to. */
  deps: Set<string>;
  bindings: ArgBinding[];
  stripped: StrippedParam[];
  /** Names and descriptions of what the agent supplies, for the risk classifier. */
  facts: OperationFacts['args'];
}

export function buildInput(ctx: ToolContext, o: Operation, auth: ToolAuth): ToolInput {
  const owned = ownedParameters(auth);
  const secured = auth.alternatives.length > 0;
  const params = ctx.params.merge(o);
  const { stripped, visible } = partitionParameters(params.values(), owned, secured);
  const input = new InputBuilder(ctx, stripped);
  // Path parameters first: they are what a model must always supply.
  visible.sort((a, b) => Number(b.in === 'path') - Number(a.in === 'path'));
  for (const p of visible) input.addParameter(p);
  const body = follow(ctx.doc, o.op.requestBody, `${o.pointer}/requestBody`);
  if (body) input.addBody(body, o.pointer, secured);
  return input.finish();
}

/** Gathers the arguments one by one, giving each a unique, tool-safe name. */
class InputBuilder {
  private readonly properties: Record<string, JsonSchema> = {};
  private readonly required: string[] = [];
  private readonly deps = new Set<string>();
  private readonly bindings: ArgBinding[] = [];
  private readonly facts: OperationFacts['args'] = [];
  private readonly taken = new Set<string>();

  constructor(
    private readonly ctx: ToolContext,
    private readonly stripped: StrippedParam[],
  ) {}

  addParameter(p: RawParam): void {
    const schema = this.parameterSchema(p);
    const arg = this.argName(p.name, p.in);
    this.properties[arg] = schema;
    const req = p.required || p.in === 'path';
    if (req) this.required.push(arg);
    // Assigned in the order the spread form had (the bindings are published in scan reports).
    const b: ArgBinding = { arg, in: p.in, name: p.name, required: req };
    if (p.style !== undefined) b.style = p.style;
    if (p.explode !== undefined) b.explode = p.explode;
    if (p.allowReserved !== undefined) b.allowReserved = p.allowReserved;
    this.bindings.push(b);
    this.facts.push({ name: p.name, description: p.description });
  }

  /**
   * The argument schema of a Parameter Object, converted and annotated once per catalogue: shared
   * parameters recur on hundreds of operations. Kept only if its conversion warned of nothing, so a
   * warning still names each place (the converter warns per place).
   */
  private parameterSchema(p: RawParam): JsonSchema {
    const known = this.ctx.paramSchemas.get(p.source);
    if (known) {
      for (const d of known.deps) this.deps.add(d);
      return known.schema;
    }
    const warned = this.ctx.conv.warnings.length;
    const c = this.ctx.conv.convert(p.schema ?? {}, 'input', p.pointer);
    for (const d of c.deps) this.deps.add(d);
    const schema = withAnnotations(c.schema, p.description, p.deprecated);
    if (this.ctx.conv.warnings.length === warned)
      this.ctx.paramSchemas.set(p.source, { schema, deps: c.deps });
    return schema;
  }

  /** The request body, in the one content type the gateway will send, becomes one argument. */
  addBody(body: Record<string, unknown>, pointer: string, secured: boolean): void {
    const content = asObject(body.content) ?? {};
    const ct = pickRequestType(Object.keys(content));
    if (ct === undefined) return;
    const media = asObject(content[ct]) ?? {};
    let schema: JsonSchema =
      media.schema !== undefined
        ? this.convert(media.schema, `${pointer}/requestBody/content/${escapePointerToken(ct)}/schema`)
        : defaultBodySchema(ct);
    if (secured && typeof schema === 'object' && schema.properties) {
      schema = stripCredentialProps(schema, this.stripped);
    }
    const arg = this.argName(this.taken.has('body') ? 'requestBody' : 'body', 'body');
    const desc = typeof body.description === 'string' ? body.description : '';
    this.properties[arg] = withAnnotations(schema, desc || `Request body (${ct}).`, false);
    const req = body.required === true;
    if (req) this.required.push(arg);
    this.bindings.push({ arg, in: 'body', name: ct, required: req, contentType: ct });
    for (const [pn, ps] of Object.entries(topProperties(schema, this.ctx.inLookup))) {
      this.facts.push({
        name: pn,
        description: typeof ps === 'object' && typeof ps.description === 'string' ? ps.description : '',
      });
    }
  }

  finish(): ToolInput {
    const { properties, required, deps, bindings, stripped, facts } = this;
    const schema: JsonSchemaObject = { type: 'object', properties, additionalProperties: false };
    if (required.length) schema.required = required;
    return { schema, properties, deps, bindings, stripped, facts };
  }

  private convert(raw: unknown, where: string): JsonSchema {
    const c = this.ctx.conv.convert(raw, 'input', where);
    for (const d of c.deps) this.deps.add(d);
    return c.schema;
  }

  /** The wire name made tool-safe; a clash takes the location as prefix, then a counter. */
  private argName(wire: string, where: string): string {
    let a = toolSafe(wire) || where;
    if (this.taken.has(a)) a = `${where}_${a}`.slice(0, 64);
    for (let n = 2; this.taken.has(a); n++) a = `${a.slice(0, 60)}_${n}`;
    this.taken.add(a);
    return a;
  }
}

/** A wire name made tool-safe, once per name (the same parameter names recur on every operation). */
const toolSafe = memoByText(
  (wire) =>
    wire
      .replace(/\[\]$/, '')
      .replace(/[^A-Za-z0-9_.-]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(0, 64),
  20_000,
);

function defaultBodySchema(ct: string): JsonSchemaObject {
  if (/^text\//i.test(ct) || isJsonType(ct)) return ct === '*/*' ? {} : { type: 'string' };
  return { type: 'string', contentEncoding: 'base64' };
}

function withAnnotations(schema: JsonSchema, description: string, deprecated: boolean): JsonSchema {
  const d = cleanDescriptionOnce(description, 300);
  if (!d && !deprecated) return schema;
  const base: JsonSchemaObject = typeof schema === 'object' ? { ...schema } : schema ? {} : { not: {} };
  if (d && !base.description) base.description = d;
  if (deprecated) base.deprecated = true;
  return base;
}
