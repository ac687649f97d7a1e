import type { DataClass } from '../model/catalog.js';
import {
  type CapLimits,
  capValue,
  DEFAULT_MAX_ITEMS,
  DEFAULT_MAX_RESULT_BYTES,
  precut,
} from '../protect/caps.js';
import {
  applyUntrusted,
  applyUntrustedText,
  untrustedNote,
  untrustedSource,
  wrapUntrusted,
} from '../protect/injection.js';
import { maskerFor, maskUntyped } from '../protect/mask.js';
import type { RedactionCounts, Redactor } from '../protect/redactor.js';
import type { CallContext, ToolResult } from './context.js';

export interface ProtectOptions {
  /** Redacts by value, leaving the classes the tool's masking allows. */
  redactor: Redactor;
  /** Gateway-wide defaults; the policy sets them globally and per tool. */
  limits?: Partial<CapLimits>;
}

/**
 * Writes `ctx.result` and `ctx.redactions`. What the agent gets: structured content masked by the
 * tool's output schema (drop / mask / allow per data class), then every string and key scanned for
 * secrets and personal data by value, then cut to the tool's item and byte limits with a note on how
 * to continue; the text copy is rebuilt from the result, never taken from the raw body.
 */
export function createProtect(options: ProtectOptions) {
  const defaults: CapLimits = {
    maxItems: options.limits?.maxItems ?? DEFAULT_MAX_ITEMS,
    maxResultBytes: options.limits?.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES,
  };

  // The classes a decision's masking lets through, listed once per masking (a decision is immutable).
  const allowed = new WeakMap<object, DataClass[]>();
  const allowOf = (masking: { actions: object }): DataClass[] => {
    let allow = allowed.get(masking);
    if (!allow) {
      allow = (Object.entries(masking.actions) as Array<[DataClass, string]>)
        .filter(([, a]) => a === 'allow')
        .map(([c]) => c);
      allowed.set(masking, allow);
    }
    return allow;
  };

  return function protect(ctx: CallContext): void {
    const tool = ctx.tool!;
    const decision = ctx.decision!.decision;
    const answer = ctx.answer!;
    const counts: RedactionCounts = {};
    const allow = allowOf(decision.masking);
    const limits: CapLimits = {
      maxItems: decision.limits.maxItems ?? defaults.maxItems,
      maxResultBytes: decision.limits.maxResultBytes ?? defaults.maxResultBytes,
    };
    // The body copy is the first block; the rest are the gateway's own notes.
    const notes = answer.content.slice(1);
    // Upstream text (screened): its flagged fields redacted or withheld first, by the paths the
    // screen found in the body as sent; the copy the agent reads goes in a block of its own.
    const untrusted = ctx.untrusted;
    const flagged = untrusted?.flagged ?? [];
    const flagNote = flagged.length
      ? [{ type: 'text' as const, text: untrustedNote(flagged, untrusted!.action) }]
      : [];

    let result: ToolResult;
    if (answer.json) {
      const { structured } = answer.json;
      // Arrays the item limit will cut are cut first, so what the agent never sees is neither masked
      // nor scanned (the masker still counts what it would have masked in it). At least 16 items are
      // kept, as many as classification by name looks at to type an array.
      const raw = precut(
        flagged.length ? applyUntrusted(answer.json.value, flagged, untrusted!.action) : answer.json.value,
        Math.max(limits.maxItems, 16),
      );
      // With an output schema, masking follows it; without, every key is classified by name.
      let value = tool.outputSchema
        ? maskerFor(tool.outputSchema, decision.masking).mask(raw, counts)
        : maskUntyped(raw, decision.masking, counts);
      value = options.redactor.json(value, counts, allow);
      const measured: { json?: string | undefined } = {};
      const capped = capValue(
        value,
        limits,
        ctx.args ?? {},
        Object.keys(tool.inputSchema.properties ?? {}),
        tool.pageSize?.arg,
        measured,
      );
      const wrapped = !!(tool.outputSchema && tool.outputWrapped);
      const body = wrapped ? (capped.value as { result: unknown }).result : capped.value;
      result = {
        content: [
          {
            type: 'text',
            text: markUntrusted(untrusted, tool, bodyJson(body, capped.value, wrapped, measured.json)),
          },
          ...notes,
          ...flagNote,
          ...(capped.notes.length
            ? [{ type: 'text' as const, text: `Note from the gateway: ${capped.notes.join('; ')}.` }]
            : []),
        ],
        ...(structured ? { structuredContent: capped.value as Record<string, unknown> } : {}),
      };
    } else {
      const [first, ...rest] = answer.content;
      // The answer stage took known credential values out already; detection follows the allow-list.
      const sent = first?.text ?? '';
      let text = options.redactor.text(
        flagged.length ? applyUntrustedText(sent, flagged, untrusted!.action) : sent,
        counts,
        allow,
      );
      const capNotes: string[] = [];
      if (Buffer.byteLength(text) > limits.maxResultBytes) {
        text = `${Buffer.from(text)
          .subarray(0, limits.maxResultBytes)
          .toString('utf8')
          .replace(/\uFFFD$/, '')}…`;
        capNotes.push(
          `the text was cut to ${limits.maxResultBytes} bytes; narrow the request to see the rest`,
        );
      }
      result = {
        content: [
          { type: 'text', text: markUntrusted(untrusted, tool, text) },
          ...rest,
          ...flagNote,
          ...(capNotes.length
            ? [{ type: 'text' as const, text: `Note from the gateway: ${capNotes.join('; ')}.` }]
            : []),
        ],
      };
    }
    if (answer.isError) result.isError = true;
    ctx.result = result;
    if (Object.keys(counts).length) ctx.redactions = counts;
  };
}

/** Upstream text (screened: `untrusted` is set) in its block; the gateway's own text as it is. */
function markUntrusted(untrusted: unknown, tool: { name: string; api?: string }, text: string): string {
  return untrusted ? wrapUntrusted(text, untrustedSource(tool)) : text;
}

const WRAPPED_HEAD = '{"result":';

/**
 * `JSON.stringify(body)`, taken from the capped value's JSON that the byte cap has just measured
 * (`json`) instead of serialising the result a second time: the very same text. A wrapped body is
 * the one key of `{"result": …}` (parsed JSON, masked: no `toJSON`, no other key), so its JSON is
 * that text without the wrapper; anything else is serialised as before.
 */
function bodyJson(body: unknown, capped: unknown, wrapped: boolean, json: string | undefined): string {
  if (json === undefined) return JSON.stringify(body);
  if (!wrapped) return json;
  if (
    body !== undefined &&
    capped !== null &&
    typeof capped === 'object' &&
    Object.getPrototypeOf(capped) === Object.prototype &&
    json.startsWith(WRAPPED_HEAD) &&
    json.endsWith('}')
  ) {
    const keys = Object.keys(capped);
    if (keys.length === 1 && keys[0] === 'result') return json.slice(WRAPPED_HEAD.length, -1);
  }
  return JSON.stringify(body);
}
