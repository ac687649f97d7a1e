import { isJsonType } from '../catalog/doc.js';
import { type Check, createSchemaCompiler } from '../catalog/validator.js';
import { WardenError } from '../errors/index.js';
import type { ErrorObject } from '../lib/ajv.js';
import { tooDeep } from '../lib/json-depth.js';
import type { Catalog, Tool } from '../model/catalog.js';
import { addCounts } from '../protect/detect.js';
import {
  type InjectionFlag,
  safeName,
  safePath,
  screenBody,
  screenValue,
  untrustedSource,
  WITHHELD_TEXT,
  wrapUntrusted,
} from '../protect/injection.js';
import { maskRules, maskUntyped } from '../protect/mask.js';
import { MAX_JSON_DEPTH, type RedactionCounts, type Redactor } from '../protect/redactor.js';
import type { CallContext, ToolResult } from './context.js';
import { describeErrors } from './validate.js';

export interface AnswerOptions {
  catalog: Pick<Catalog, 'formats'>;
  /** Known credential values leave the body here; detection by value follows in the protect stage. */
  redactor: Redactor;
  /** Characters of an upstream error body shown to the agent (default 500). */
  errorExcerpt?: number;
}

/**
 * Writes `ctx.answer`. JSON becomes `structuredContent` (checked against the tool's outputSchema, so
 * a client that validates never receives a result it would reject) plus a text copy; other text
 * types become text; binary becomes a one-line description. Upstream errors and redirects become
 * `isError` results with a short, scrubbed excerpt, screened for instructions aimed at the agent and
 * marked as untrusted data like any result (withheld when flagged: `ctx.untrusted` records it).
 */
export function createAnswer(options: AnswerOptions) {
  const compiler = createSchemaCompiler(options.catalog.formats);
  const outputChecks = new WeakMap<Tool, Check>();
  const excerptLen = options.errorExcerpt ?? 500;
  const { redactor } = options;

  // Every excerpt is redacted whole (credentials, then every class) and only then cut: a value the
  // cut runs through is never half-shown. What was found counts with the call's redactions.
  const excerptOf = (ctx: CallContext, text: string, n: number, truncated = false): string => {
    const counts: RedactionCounts = {};
    const out = redactor.excerpt(text, n, counts, truncated);
    if (Object.keys(counts).length) {
      ctx.redactions ??= {};
      addCounts(ctx.redactions, counts);
    }
    return out;
  };
  // Upstream text in an error reaches the agent as a text block of its own: it is screened whole,
  // as the upstream sent it (not just the excerpt: fail closed), then marked as untrusted data, or
  // withheld when flagged (an error is short; the agent needs no instructions from it). The flag is
  // recorded as a flagged response's is (audit, metrics, alert).
  const untrustedOf = (ctx: CallContext, raw: string, shown: string, value?: unknown): string => {
    if (!shown) return shown;
    const flagged = screenError(raw, value);
    if (flagged.length) {
      ctx.untrusted = { flagged, action: 'withhold' };
      return WITHHELD_TEXT;
    }
    return wrapUntrusted(shown, untrustedSource(ctx.tool!));
  };

  return function answer(ctx: CallContext): void {
    const tool = ctx.tool!;
    const res = ctx.response!;
    const ct = res.contentType.toLowerCase();
    const status = res.status;

    if (status >= 300 && status < 400)
      throw new WardenError(
        'UPSTREAM_REDIRECT',
        `The upstream API answered ${status} with a redirect; mcp-warden does not follow redirects.`,
      );
    if (status >= 400 || status < 200) {
      const raw = isTextual(ct) ? res.body.toString('utf8') : '';
      const text = raw ? untrustedOf(ctx, raw, excerptOf(ctx, maskedByName(raw), excerptLen)) : '';
      throw new WardenError('UPSTREAM_STATUS', `The upstream API answered HTTP ${status}.`, {
        ...(text ? { text } : {}),
      });
    }
    if (res.truncated) {
      // Cut JSON cannot be parsed, so it cannot be masked by field: none of it is passed on.
      const json = isJsonType(ct) || (ct === '' && looksJson(res.body));
      throw new WardenError(
        'UPSTREAM_TOO_LARGE',
        `The response was larger than ${res.body.length} bytes and was cut short; ask for less (a smaller page size or narrower filters).${json ? '' : ' Its beginning follows.'}`,
        json
          ? {}
          : {
              text: untrustedOf(
                ctx,
                res.body.toString('utf8'),
                excerptOf(ctx, res.body.toString('utf8'), 8 * excerptLen, true),
              ),
            },
      );
    }

    const notes = ctx.request?.notes;
    if (res.body.length === 0) {
      ctx.answer = withNotes(
        { content: [{ type: 'text', text: `The call succeeded (HTTP ${status}, no content).` }] },
        notes,
      );
      return;
    }
    if (isJson(ct) || (ct === '' && looksJson(res.body))) {
      const text = redactor.credentials(res.body.toString('utf8'));
      let value: unknown;
      // Before Ajv and the masking walk (both recursive): hostile nesting is refused here.
      try {
        value = JSON.parse(text);
      } catch {
        throw new WardenError(
          'UPSTREAM_SCHEMA_MISMATCH',
          'The upstream API sent a body labelled JSON that is not valid JSON.',
          { text: untrustedOf(ctx, text, excerptOf(ctx, text, excerptLen)) },
        );
      }
      if (tooDeep(value, MAX_JSON_DEPTH))
        throw new WardenError(
          'UPSTREAM_SCHEMA_MISMATCH',
          `The upstream response nests deeper than ${MAX_JSON_DEPTH} levels; it is not passed on.`,
        );
      const result: ToolResult = { content: [{ type: 'text', text }] };
      if (tool.outputSchema) {
        const structured = tool.outputWrapped ? { result: value } : value;
        let check = outputChecks.get(tool);
        if (!check) {
          // Definitions compiled as data reaches them (catalog/validator.ts): a whole closure took seconds.
          check = compiler.compileLazily(tool.outputSchema);
          outputChecks.set(tool, check);
        }
        if (!check(structured)) {
          // Key names in the lines are the upstream's: plain names show, anything else is `*`.
          const problems = describeErrors(safeErrors(check.errors ?? []), tool, 3).map((p) =>
            p.replace(/^'arguments'/, 'the response'),
          );
          // The excerpt is classified by field name: without a fitting schema, that is all there is.
          throw new WardenError(
            'UPSTREAM_SCHEMA_MISMATCH',
            "The upstream response does not match the API's declared schema.",
            {
              details: problems,
              text: untrustedOf(ctx, text, excerptOf(ctx, maskedByName(text), excerptLen), value),
            },
          );
        }
        ctx.answer = withNotes(
          { content: result.content, json: { value: structured, structured: true } },
          notes,
        );
        return;
      }
      const structured = value !== null && typeof value === 'object' && !Array.isArray(value);
      ctx.answer = withNotes({ content: result.content, json: { value, structured } }, notes);
      return;
    }
    if (isTextual(ct)) {
      ctx.answer = withNotes(
        { content: [{ type: 'text', text: redactor.credentials(res.body.toString('utf8')) }] },
        notes,
      );
      return;
    }
    const kind = excerptOf(ctx, ct.split(';')[0] ?? '', 80) || 'an unknown type';
    ctx.answer = withNotes(
      {
        content: [
          {
            type: 'text',
            text: `The API returned ${res.body.length} bytes of ${kind}; binary content is not passed to the agent.`,
          },
        ],
      },
      notes,
    );
  };
}

/**
 * An upstream body as an excerpt may show it: JSON is parsed and masked by field name first (an
 * error body is as likely as any to hold personal data); value detection follows in the excerpt.
 */
function maskedByName(text: string): string {
  try {
    const v: unknown = JSON.parse(text);
    if (!tooDeep(v, MAX_JSON_DEPTH)) return JSON.stringify(maskUntyped(v, DEFAULT_RULES));
  } catch {
    /* not JSON: value detection alone */
  }
  return text;
}

const DEFAULT_RULES = maskRules(undefined, undefined);

/** An error body screened: its JSON value (keys and strings) when it is JSON, else (or then) the text. */
function screenError(raw: string, value?: unknown): InjectionFlag[] {
  let v = value;
  if (v === undefined) {
    try {
      v = JSON.parse(raw);
      if (tooDeep(v, MAX_JSON_DEPTH)) v = undefined;
    } catch {
      v = undefined;
    }
  }
  const flagged = v !== undefined && v !== null && typeof v === 'object' ? screenValue(v) : [];
  return flagged.length ? flagged : screenBody(raw);
}

/** Ajv errors on an upstream body with the body's key names made safe to quote (`safePath`, `safeName`). */
function safeErrors(errors: readonly ErrorObject[]): ErrorObject[] {
  return errors.map((e) => {
    const params = { ...(e.params as Record<string, unknown>) };
    for (const k of ['additionalProperty', 'unevaluatedProperty', 'propertyName'])
      if (typeof params[k] === 'string') params[k] = safeName(params[k] as string);
    return { ...e, instancePath: safePath(e.instancePath), params };
  });
}

function withNotes<T extends ToolResult>(r: T, notes: string[] | undefined): T {
  if (notes?.length) r.content.push({ type: 'text', text: `Note from the gateway: ${notes.join('; ')}.` });
  return r;
}

/**
 * `isJsonType` with the usual answer first: `ct` is lowercased already, and plain
 * `application/json` (with or without parameters) is JSON there too, without its split and trim.
 */
function isJson(ct: string): boolean {
  return ct === 'application/json' || ct.startsWith('application/json;') || isJsonType(ct);
}

function isTextual(ct: string): boolean {
  return (
    ct.startsWith('text/') ||
    isJsonType(ct) ||
    /^application\/([\w.-]+\+)?(xml|yaml|x-yaml|javascript|x-www-form-urlencoded|problem\+json|csv)\b/.test(
      ct,
    )
  );
}

function looksJson(b: Buffer): boolean {
  const c = b[0];
  return c === 0x7b || c === 0x5b;
}
