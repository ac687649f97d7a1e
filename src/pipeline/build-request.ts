import { isJsonType } from '../catalog/doc.js';
import { WardenError } from '../errors/index.js';
import { type FormData, isFormData, newFormData } from '../lib/undici-parts.js';
import type { ArgBinding, Tool } from '../model/catalog.js';
import { defsOf, type JsonSchemaObject, resolveLocal } from '../model/json-schema.js';
import type { UpstreamTarget } from '../upstream/base-url.js';
import { VERSION } from '../version.js';
import type { CallContext, UpstreamRequest } from './context.js';

export interface BuildOptions {
  /** Where each tool's calls go, fixed at start-up. */
  targets: ReadonlyMap<Tool, UpstreamTarget>;
  /** Page sizes are lowered to this at most (default 100; the spec's own maximum may be lower). */
  maxPageSize?: number;
}

interface Plan {
  target: UpstreamTarget;
  /** The path template cut at its `{param}` placeholders: literal, param, literal, … */
  pieces: Array<{ literal: string } | { binding: ArgBinding }>;
  query: ArgBinding[];
  headers: ArgBinding[];
  cookies: ArgBinding[];
  body?: ArgBinding;
  accept: string;
  method: string;
  /** The path template with the base path, for traces (`url.template`): never the filled path. */
  template: string;
  page?: PageRule;
  /** The whole path when the template has no placeholder, and whether it has a `.`/`..` segment. */
  fixed?: { path: string; dotty: boolean };
}

/**
 * A page-size argument's valid range, from its own schema. Counts start at 1 whatever the spec
 * allows: 0 and negative sizes often mean "everything" upstream, which is what the cap is against.
 */
interface PageRule {
  arg: string;
  /** Whole numbers only: an `integer` type, or no type at all (a count); `number` allows fractions. */
  integer: boolean;
  /** Smallest page size sent: 1, or the spec's own higher minimum. */
  lo: number;
  /** The spec's own (inclusive) maximum, if it declares one; the policy's cap is applied per call. */
  hi?: number;
}

/**
 * Writes `ctx.request`. The origin and path template are fixed per tool; arguments only ever fill a
 * placeholder with one percent-encoded path segment, add encoded query pairs, or set a header whose
 * value has been checked. Nothing an agent sends can change where the request goes.
 */
/**
 * The spec's own path text, made a valid path: a `?`, `#`, space or non-ASCII character in a template
 * (`/#/a` came out of spec fuzzing) would otherwise end the path early, and the request would go to
 * `/base/` instead. Existing `%XX` escapes and every character RFC 3986 allows in a path stay.
 */
export function encodeLiteral(literal: string): string {
  return literal.replace(/%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]+/g, (m) =>
    encodeURIComponent(m),
  );
}

export function createBuildRequest(options: BuildOptions) {
  const plans = new WeakMap<Tool, Plan>();
  const maxPage = options.maxPageSize ?? 100;

  function planFor(tool: Tool): Plan {
    let plan = plans.get(tool);
    if (plan) return plan;
    const target = options.targets.get(tool);
    if (!target) throw new WardenError('INTERNAL', `no upstream target for ${tool.name}`);
    const byName = new Map(tool.bindings.filter((b) => b.in === 'path').map((b) => [b.name, b]));
    const pieces: Plan['pieces'] = [];
    const re = /\{([^}]*)\}/g;
    let last = 0;
    for (let m = re.exec(tool.source.path); m; m = re.exec(tool.source.path)) {
      if (m.index > last) pieces.push({ literal: encodeLiteral(tool.source.path.slice(last, m.index)) });
      const b = byName.get(m[1]!);
      // The spec validator refuses templates without a matching parameter; keep a hard stop anyway.
      if (!b) throw new WardenError('INTERNAL', `path parameter ${m[1]} of ${tool.name} has no binding`);
      pieces.push({ binding: b });
      last = re.lastIndex;
    }
    if (last < tool.source.path.length) pieces.push({ literal: encodeLiteral(tool.source.path.slice(last)) });
    const types = tool.responseContentTypes;
    const literal = pieces.every((p) => 'literal' in p)
      ? target.basePath + pieces.map((p) => ('literal' in p ? p.literal : '')).join('')
      : undefined;
    plan = {
      ...(literal !== undefined ? { fixed: { path: literal, dotty: hasDotSegment(literal) } } : {}),
      target,
      pieces,
      query: tool.bindings.filter((b) => b.in === 'query'),
      headers: tool.bindings.filter((b) => b.in === 'header'),
      cookies: tool.bindings.filter((b) => b.in === 'cookie'),
      ...(tool.bindings.find((b) => b.in === 'body')
        ? { body: tool.bindings.find((b) => b.in === 'body')! }
        : {}),
      accept: types.length ? types.slice(0, 8).join(', ') : 'application/json, */*;q=0.5',
      method: tool.source.method.toUpperCase(),
      template: target.basePath + tool.source.path,
      ...(tool.pageSize ? { page: pageRule(tool, tool.pageSize.arg) } : {}),
    };
    plans.set(tool, plan);
    return plan;
  }

  return function buildRequest(ctx: CallContext): void {
    const tool = ctx.tool!;
    const args = ctx.args!;
    const plan = planFor(tool);
    const notes: string[] = [];
    // The policy's cap can only lower the spec's own maximum, never raise it.
    const policyMax = ctx.decision?.limits.maxPageSize ?? maxPage;

    let path = plan.target.basePath;
    // A template without placeholders is the same path every call: built and checked once, in the plan.
    if (plan.fixed !== undefined) {
      if (plan.fixed.dotty) throw dotSegment(tool);
      path = plan.fixed.path;
    } else {
      for (const part of plan.pieces) {
        if ('literal' in part) {
          path += part.literal;
          continue;
        }
        const b = part.binding;
        const v = args[b.arg];
        if (v === undefined || v === null)
          throw new WardenError(
            'INVALID_ARGUMENT',
            `Invalid arguments for ${tool.name}: '${b.arg}' is required`,
          );
        const piece = pathValue(b, v);
        // An empty value would merge two segments (`/a//b`): the upstream may route that elsewhere.
        if (piece === '')
          throw new WardenError(
            'INVALID_ARGUMENT',
            `Invalid arguments for ${tool.name}: '${b.arg}' may not be empty`,
          );
        path += piece;
      }
      if (hasDotSegment(path)) throw dotSegment(tool);
    }

    const pairs: string[] = [];
    for (const b of plan.query) {
      let v = args[b.arg];
      if (v === undefined || v === null) continue;
      if (b.arg === plan.page?.arg) v = pageSize(tool, plan.page, v, policyMax, notes);
      queryPairs(b, v, pairs);
    }

    const headers: Record<string, string> = {
      accept: plan.accept,
      'user-agent': `mcp-warden/${VERSION}`,
    };
    for (const b of plan.headers) {
      const v = args[b.arg];
      if (v === undefined || v === null) continue;
      headers[b.name.toLowerCase()] = headerValue(tool, b, simple(v, b.explode ?? false, plain));
    }
    if (plan.cookies.length) {
      const parts: string[] = [];
      for (const b of plan.cookies) {
        const v = args[b.arg];
        if (v === undefined || v === null) continue;
        parts.push(`${enc(b.name)}=${enc(simple(v, b.explode ?? false, plain))}`);
      }
      if (parts.length) headers.cookie = parts.join('; ');
    }

    const req: UpstreamRequest = {
      method: plan.method,
      origin: plan.target.origin,
      path,
      query: pairs.join('&'),
      template: plan.template,
      headers,
    };
    if (plan.body) {
      const v = args[plan.body.arg];
      if (v !== undefined) {
        const ct = plan.body.contentType ?? 'application/json';
        req.body = encodeBody(tool, plan.body.arg, ct, v);
        // FormData sets its own multipart boundary.
        if (!isFormData(req.body)) headers['content-type'] = ct;
      }
    }
    if (notes.length) req.notes = notes;
    ctx.request = req;
  };
}

/**
 * `.` and `..` are the only segments that percent-encoding leaves able to move the request; in the
 * spec's own text `%2e` is a dot too (URL parsers and many servers decode it before resolving).
 */
function hasDotSegment(path: string): boolean {
  for (const seg of path.split('/')) {
    const dots = seg.replace(/%2e/gi, '.');
    if (dots === '.' || dots === '..') return true;
  }
  return false;
}

function dotSegment(tool: Tool): WardenError {
  return new WardenError(
    'INVALID_ARGUMENT',
    `Invalid arguments for ${tool.name}: a path argument may not be '.' or '..'`,
  );
}

/** The page-size rule of a tool's page-size argument, read from the argument's own schema. */
function pageRule(tool: Tool, arg: string): PageRule {
  const raw = tool.inputSchema.properties?.[arg];
  const resolved = raw === undefined ? {} : resolveLocal(raw, defsOf(tool.inputSchema.$defs ?? {}));
  const s: JsonSchemaObject = typeof resolved === 'object' ? resolved : {};
  const bound = (k: string) => {
    const x = s[k];
    return typeof x === 'number' && Number.isFinite(x) ? x : undefined;
  };
  const [min, exMin, max, exMax] = ['minimum', 'exclusiveMinimum', 'maximum', 'exclusiveMaximum'].map(bound);
  const lo = Math.max(
    1,
    min !== undefined ? Math.ceil(min) : 1,
    exMin !== undefined ? Math.floor(exMin) + 1 : 1,
  );
  const highs = [
    max !== undefined ? Math.floor(max) : undefined,
    exMax !== undefined ? Math.ceil(exMax) - 1 : undefined,
  ];
  const hi = highs.reduce<number | undefined>(
    (a, h) => (h === undefined ? a : Math.min(a ?? h, h)),
    undefined,
  );
  const types = s.type === undefined ? [] : [s.type].flat();
  return { arg, integer: !types.includes('number'), lo, ...(hi !== undefined ? { hi } : {}) };
}

/**
 * A page size inside its range: above it, lowered to the maximum (and the agent is told); below it,
 * not a whole number where one is needed, or not a number at all, refused — no value in range means
 * what 0 or -1 may mean upstream ("everything"), so none is sent in its place.
 */
function pageSize(tool: Tool, rule: PageRule, v: unknown, policyMax: number, notes: string[]): unknown {
  const hi = Math.min(policyMax, rule.hi ?? policyMax);
  const refuse = (why: string) =>
    new WardenError('INVALID_ARGUMENT', `Invalid arguments for ${tool.name}.`, {
      details: [`'${rule.arg}' is a page size: ${why}`],
    });
  if (rule.lo > hi)
    throw refuse(
      `the spec's smallest page size ${rule.lo} is above the gateway's maximum ${hi}, so no call can be made`,
    );
  // A numeric string only where the schema lets strings through (no type): it is read as its number.
  const n =
    typeof v === 'number'
      ? v
      : typeof v === 'string' && /^\s*[+-]?\d{1,16}\s*$/.test(v)
        ? Number(v)
        : Number.NaN;
  const range = `${rule.integer ? 'a whole number ' : ''}from ${rule.lo} to ${hi}`;
  if (Number.isNaN(n)) throw refuse(`it must be ${range}`);
  if (rule.integer && Number.isFinite(n) && !Number.isInteger(n))
    throw refuse(`it must be ${range}; ${clipNumber(n)} is not a whole number`);
  if (n < rule.lo)
    throw refuse(
      `it must be ${range}; ${clipNumber(n)} is below that (0 and negative sizes often mean "everything")`,
    );
  // In range: sent as given (a numeric string in its plain form).
  if (n <= hi) return typeof v === 'number' ? v : String(n);
  notes.push(`'${rule.arg}' was lowered from ${clipNumber(n)} to the gateway's maximum page size ${hi}`);
  return hi;
}

function clipNumber(n: number): string {
  const s = String(n);
  return s.length > 24 ? `${s.slice(0, 24)}…` : s;
}

/** encodeURIComponent, which also encodes `/ ? # ; % &` and refuses lone surrogates. */
function enc(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    throw new WardenError(
      'INVALID_ARGUMENT',
      'Invalid arguments: a value contains an unpaired surrogate character',
    );
  }
}

function plain(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v) ?? '';
}

/** `simple` style: arrays and objects as comma lists (objects as k=v pairs when exploded). */
function simple(v: unknown, explode: boolean, each: (s: unknown) => string): string {
  if (Array.isArray(v)) return v.map(each).join(',');
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>);
    return explode
      ? entries.map(([k, x]) => `${each(k)}=${each(x)}`).join(',')
      : entries.flatMap(([k, x]) => [each(k), each(x)]).join(',');
  }
  return each(v);
}

function pathValue(b: ArgBinding, v: unknown): string {
  const e = (x: unknown) => enc(plain(x));
  const explode = b.explode ?? false;
  switch (b.style) {
    case 'label':
      if (Array.isArray(v)) return `.${v.map(e).join(explode ? '.' : ',')}`;
      return `.${simple(v, explode, e)}`;
    case 'matrix': {
      const name = enc(b.name);
      if (Array.isArray(v))
        return explode ? v.map((x) => `;${name}=${e(x)}`).join('') : `;${name}=${v.map(e).join(',')}`;
      if (v !== null && typeof v === 'object' && explode)
        return Object.entries(v as Record<string, unknown>)
          .map(([k, x]) => `;${e(k)}=${e(x)}`)
          .join('');
      return `;${name}=${simple(v, false, e)}`;
    }
    default:
      return simple(v, explode, e);
  }
}

function queryPairs(b: ArgBinding, v: unknown, out: string[]): void {
  const name = enc(b.name);
  const e = (x: unknown) => enc(plain(x));
  const style = b.style ?? 'form';
  const explode = b.explode ?? style === 'form';
  if (Array.isArray(v)) {
    if (style === 'form' && explode) for (const x of v) out.push(`${name}=${e(x)}`);
    else
      out.push(
        `${name}=${v.map(e).join(style === 'spaceDelimited' ? '%20' : style === 'pipeDelimited' ? '%7C' : ',')}`,
      );
    return;
  }
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>);
    if (style === 'deepObject') for (const [k, x] of entries) out.push(`${name}%5B${enc(k)}%5D=${e(x)}`);
    else if (explode) for (const [k, x] of entries) out.push(`${enc(k)}=${e(x)}`);
    else out.push(`${name}=${entries.flatMap(([k, x]) => [enc(k), e(x)]).join(',')}`);
    return;
  }
  out.push(`${name}=${e(v)}`);
}

/** Header values: printable ASCII only, so no CR, LF or NUL can split or smuggle a header. */
function headerValue(tool: Tool, b: ArgBinding, s: string): string {
  if (!/^[\t\x20-\x7e]*$/.test(s))
    throw new WardenError(
      'INVALID_ARGUMENT',
      `Invalid arguments for ${tool.name}: '${b.arg}' must be printable ASCII without line breaks or control characters`,
    );
  return s.trim();
}

function encodeBody(tool: Tool, arg: string, ct: string, v: unknown): string | Uint8Array | FormData {
  const lower = ct.toLowerCase();
  if (isJsonType(lower)) return JSON.stringify(v);
  if (lower.startsWith('application/x-www-form-urlencoded') || lower.startsWith('multipart/form-data')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v))
      throw new WardenError(
        'INVALID_ARGUMENT',
        `Invalid arguments for ${tool.name}: '${arg}' must be an object of form fields`,
      );
    const entries = Object.entries(v as Record<string, unknown>);
    if (lower.startsWith('multipart/')) {
      const fd = newFormData();
      for (const [k, x] of entries) for (const item of Array.isArray(x) ? x : [x]) fd.append(k, plain(item));
      return fd;
    }
    const sp = new URLSearchParams();
    for (const [k, x] of entries) for (const item of Array.isArray(x) ? x : [x]) sp.append(k, plain(item));
    return sp.toString();
  }
  if (lower.startsWith('text/')) return plain(v);
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 === 1)
    throw new WardenError(
      'INVALID_ARGUMENT',
      `Invalid arguments for ${tool.name}: '${arg}' must be base64-encoded bytes`,
    );
  return Buffer.from(v, 'base64');
}
