import { isDeepStrictEqual } from 'node:util';
import { isMap, isScalar, isSeq, type Node, type Pair, parseDocument } from 'yaml';
import { WardenError } from '../errors/index.js';
import type { Catalog, Tool } from '../model/catalog.js';
import { checkPolicy } from './check.js';
import {
  compileMatch,
  credentialChoice,
  effectiveRules,
  evaluatePolicy,
  renderPath,
  type ToolDecision,
} from './evaluate.js';
import { type LoadedPolicy, parsePolicy } from './load.js';
import { ENVIRONMENTS, type PolicyDoc, policySchema } from './schema.js';

/**
 * `audit rightsize`: least privilege from evidence. Given the policy, the catalogue it serves and
 * the calls the audit recorded over a window, it proposes removing what no call used — callers'
 * scopes, write enables, credentials — and lowering limits far above the observed peaks. A call
 * uses its grants when it got past the grant checks (`NO_USE`: only a refusal as an unknown or hidden
 * tool, or for a missing scope, used none), whatever stopped it later. Every change is checked before it
 * is proposed (the proposed policy, evaluated, still serves every call the window holds, to the same
 * callers, with the same credentials), and the file is edited in place so comments and layout stay.
 */

/** A policy path: keys and sequence indices, as `renderPath` prints them. */
export type PolicyPath = Array<string | number>;

export type Op =
  | { op: 'remove'; path: PolicyPath }
  | { op: 'set'; path: PolicyPath; value: number | []; comment?: string };

export interface Change {
  /** One line: what changes. */
  what: string;
  /** The evidence, a line each: calls, last use, peak, refused calls that do not count. */
  evidence: string[];
  ops: Op[];
}

/** A caller the policy grants scopes to, with the principal id(s) the audit names it by. */
export interface CallerGrant {
  /** Usually one; `callers.stdio.scopes` also serve anonymous loopback callers when no HTTP caller is configured. */
  principals: readonly string[];
  /** Where its scopes are in the policy (`callers.apiKeys[0].scopes`). */
  path: PolicyPath;
  scopes: readonly string[];
  /** HTTP callers also need `callers.requiredScopes` (stdio does not). */
  http: boolean;
}

/**
 * The codes of the refusals at the grant checks (resolve, authorize, toggle: src/pipeline/index.ts):
 * an unknown tool, a missing scope, a tool hidden by the policy, a toggle or the kill switch. A call
 * refused with one of them used no grant. Every other call did — allowed, or stopped after the grant
 * checks (a rate limit, a budget, a confirmation or approval, the taint guard, a bad argument, the
 * upstream failing…), or with a code this does not know (fail closed: a grant is kept, not removed).
 */
export const NO_USE: ReadonlySet<string> = new Set(['TOOL_NOT_FOUND', 'DENIED_SCOPE', 'DENIED_HIDDEN']);

/** Whether an audited call used its grants (see `NO_USE`). */
export function usedGrants(r: { decision?: unknown; code?: unknown }): boolean {
  if (r.decision === 'allowed') return true;
  return !(typeof r.code === 'string' && NO_USE.has(r.code));
}

/** More calls than this to tools the catalogue does not know, and the output warns loudly. */
export const UNKNOWN_WARN = 3;

/** One call of the audit, as rightsizing needs it. */
interface Fact {
  time: number;
  principal: string;
  tool: string;
  /** It got past the grant checks (`usedGrants`). */
  used: boolean;
  allowed: boolean;
  code?: string;
  bytes?: number;
  /** The result the agent got, in bytes (`responseBytes`), or in characters when the audit cut it. */
  resultBytes?: number;
}

/**
 * The calls of an audit, fed record by record (files are streamed). Calls inside the window are
 * kept; for every call, the last use of each tool and caller-tool pair is remembered so evidence
 * can say when a grant was last used, even before the window.
 */
export class Usage {
  readonly facts: Fact[] = [];
  readonly lastUsed = new Map<string, number>();
  /** Time of the audit's first record, to say when the evidence starts. */
  first: number | undefined;
  records = 0;

  constructor(readonly since: number) {}

  add(r: Record<string, unknown>): void {
    const time = typeof r.time === 'string' ? Date.parse(r.time) : Number.NaN;
    if (Number.isNaN(time)) return;
    this.records++;
    if (this.first === undefined || time < this.first) this.first = time;
    if (r.kind !== 'call' || typeof r.tool !== 'string' || typeof r.principal !== 'string') return;
    const allowed = r.decision === 'allowed';
    const used = usedGrants(r);
    if (used) {
      for (const k of [r.tool, `${r.principal}\0${r.tool}`])
        if ((this.lastUsed.get(k) ?? 0) < time) this.lastUsed.set(k, time);
    }
    if (time < this.since) return;
    const up = r.upstream as { bytes?: unknown } | undefined;
    this.facts.push({
      time,
      principal: r.principal,
      tool: r.tool,
      used,
      allowed,
      ...(typeof r.code === 'string' ? { code: r.code } : {}),
      ...(typeof up?.bytes === 'number' ? { bytes: up.bytes } : {}),
      ...resultSize(r),
    });
  }
}

/** `responseBytes` (audit: digest), else the length the audit's cut excerpt names, else the excerpt's. */
function resultSize(r: Record<string, unknown>): { resultBytes?: number } {
  if (typeof r.responseBytes === 'number') return { resultBytes: r.responseBytes };
  if (typeof r.response !== 'string') return {};
  const cut = /\u2026\[(\d+) chars\]$/.exec(r.response);
  return { resultBytes: cut ? Number(cut[1]) : Buffer.byteLength(r.response) };
}

export interface RightsizeInput {
  policy: LoadedPolicy;
  catalog: Catalog;
  usage: Usage;
  callers: readonly CallerGrant[];
  /** Printed in the evidence: `30d`. */
  windowLabel: string;
}

export interface RightsizeResult {
  changes: Change[];
  /** Candidates dropped, with why (a check found they would touch a used grant, or the file could not be edited). */
  skipped: string[];
  /** What the evidence covers and what was not judged. */
  notes: string[];
  /** What the operator must look at before trusting the proposal (many calls to tools the catalogue does not know). */
  warnings: string[];
  /** The tightened policy's text (the input's when there is no change). */
  text: string;
  /** How the text was made: `in place`, or `re-rendered` when the layout could not be edited in place. */
  rendering: 'in place' | 're-rendered';
}

/** Proposals never go below these. */
export const FLOORS = { calls: 10, bytes: 64 * 1024 } as const;

export function rightsize(input: RightsizeInput): RightsizeResult {
  const { policy, catalog, usage } = input;
  const raw = parseDocument(policy.text.replace(/^\uFEFF/, '')).toJS() as Record<string, unknown>;
  const before = evaluatePolicy(catalog, { doc: policy.doc });
  const byName = new Map(before.map((d) => [d.tool.name, d]));
  // Calls that got past the grant checks (used their grants), and those refused at them.
  const used = usage.facts.filter((f) => f.used && byName.has(f.tool));
  const refused = usage.facts.filter((f) => !f.used && byName.has(f.tool));
  const unknownUsed = usage.facts.filter((f) => f.used && !byName.has(f.tool));
  const usedTools = new Set(used.map((f) => f.tool));
  const notes: string[] = [];
  const warnings: string[] = [];
  const skipped: string[] = [];
  if (usage.first !== undefined && usage.first > usage.since)
    notes.push(
      `the audit starts at ${iso(usage.first)}, after the window's start (${iso(usage.since)}): the evidence covers less than ${input.windowLabel}`,
    );
  const unknownRefused = usage.facts.filter((f) => !f.used && !byName.has(f.tool));
  if (unknownRefused.length)
    notes.push(
      `${unknownRefused.length} call(s) to ${new Set(unknownRefused.map((f) => f.tool)).size} name(s) the catalogue does not know were refused at the grant checks (they used no grant; not judged)`,
    );
  if (unknownUsed.length) {
    const names = namesCounted(unknownUsed);
    const who = [...new Set(unknownUsed.map((f) => f.principal))];
    notes.push(
      `${unknownUsed.length} call(s) in the window used ${names.count} tool(s) the catalogue does not know (${names.text}), by ${who.slice(0, 10).join(', ')}${who.length > 10 ? ` and ${who.length - 10} more` : ''}: what they used cannot be judged, so those callers' scopes are not narrowed and no enable, credential or limit change is proposed`,
    );
    if (unknownUsed.length > UNKNOWN_WARN)
      warnings.push(
        `${unknownUsed.length} calls in the window used ${names.count} tool(s) the catalogue does not know (${names.text}): the spec (or its version, or the API set's prefixes) probably differs from the one the gateway served; rerun with the served --spec`,
      );
  }
  if (used.length === 0 && unknownUsed.length === 0)
    return {
      changes: [],
      skipped,
      notes: [
        ...notes,
        `no proposal: the window (${input.windowLabel}, since ${iso(usage.since)}) holds no call that used its grants${refused.length ? ` (${refused.length} call(s) refused at the grant checks do not count: they used no grant)` : ''}, so there is no evidence to judge any grant unused by`,
      ],
      warnings,
      text: policy.text,
      rendering: 'in place',
    };

  const ctx: Ctx = { input, raw, byName, used, refused, unknownUsed, usedTools, skipped };
  // With calls to unknown tools, only the scopes of callers that made none are judged (scopeChanges).
  const candidates = [
    ...scopeChanges(ctx),
    ...(unknownUsed.length
      ? []
      : [...enableChanges(ctx), ...credentialChanges(ctx), ...rateChanges(ctx), ...byteChanges(ctx)]),
  ];
  const idleReads = before.filter(
    (d) => !d.blockers.length && d.kind === 'read' && !usedTools.has(d.tool.name),
  );
  if (idleReads.length)
    notes.push(
      `${idleReads.length} exposed read tool(s) saw no call that used its grants; reads are on by default and are not disabled here (callers' scopes are narrowed instead)`,
    );
  if ([...used, ...unknownUsed].some((f) => f.principal.startsWith('jwt:')))
    notes.push("JWT callers' scopes come from their tokens: narrow them at the identity provider");
  if (policy.doc.callers?.apiKeysFile)
    notes.push(`keys in ${policy.doc.callers.apiKeysFile} (callers.apiKeysFile) are not rightsized here`);

  // Each change is checked on the policy with every change accepted before it.
  // (Paths are the original file's: every candidate is applied to it with those accepted before.)
  const changes: Change[] = [];
  let current = raw;
  const guard = usedGuard(ctx);
  for (const c of candidates) {
    const next = applyOps(raw, [...changes.flatMap((x) => x.ops), ...c.ops]);
    const why = guard(next);
    if (why) {
      skipped.push(`${c.what}: not proposed, ${why}`);
      continue;
    }
    current = next;
    changes.push(c);
  }
  if (!changes.length) return { changes, skipped, notes, warnings, text: policy.text, rendering: 'in place' };

  const ops = changes.flatMap((c) => c.ops);
  const json = /^\s*[{[]/.test(policy.text.replace(/^\uFEFF/, ''));
  let text = spliceOps(policy.text, ops, json);
  let rendering: RightsizeResult['rendering'] = 'in place';
  if (text === undefined || !sameJs(text, current)) {
    text = renderOps(policy.text, ops, json);
    rendering = 're-rendered';
    notes.push(
      'the file could not be edited in place: it was re-rendered (comments kept, layout normalised)',
    );
    if (!sameJs(text, current))
      throw new WardenError('INTERNAL', 'rightsize: the edited policy does not hold the proposed values');
  }
  const loaded = parsePolicy(text, policy.file);
  const errors = checkPolicy(catalog, loaded).filter((p) => p.level === 'error');
  if (errors.length)
    throw new WardenError(
      'INTERNAL',
      `rightsize: the proposed policy fails its check: ${errors[0]!.message}`,
    );
  return { changes, skipped, notes, warnings, text, rendering };
}

interface Ctx {
  input: RightsizeInput;
  raw: Record<string, unknown>;
  byName: Map<string, ToolDecision>;
  /** Calls to catalogue tools that got past the grant checks. */
  used: Fact[];
  /** Calls to catalogue tools refused at the grant checks (`NO_USE`). */
  refused: Fact[];
  /** Calls that got past the grant checks to tools the catalogue does not know. */
  unknownUsed: Fact[];
  usedTools: Set<string>;
  skipped: string[];
}

function scopeChanges(ctx: Ctx): Change[] {
  const { input, byName, used, refused } = ctx;
  const required = input.policy.doc.callers?.requiredScopes ?? [];
  const out: Change[] = [];
  for (const c of input.callers) {
    const who = c.principals.join(', ');
    const unknown = ctx.unknownUsed.filter((f) => c.principals.includes(f.principal));
    if (unknown.length) {
      const names = namesCounted(unknown);
      ctx.skipped.push(
        `${renderPath(c.path)} (${who}): not judged, ${unknown.length} call(s) in the window used ${names.count} tool(s) the catalogue does not know (${names.text})`,
      );
      continue;
    }
    const mine = used.filter((f) => c.principals.includes(f.principal));
    const tools = [...new Set(mine.map((f) => f.tool))];
    const needed = new Set(tools.flatMap((t) => byName.get(t)!.scopes));
    if (c.http && mine.length) for (const s of required) needed.add(s);
    const drop = c.scopes.map((s, i) => ({ s, i })).filter(({ s }) => !needed.has(s));
    if (!drop.length) continue;
    const names = [...new Set(drop.map((d) => d.s))];
    const evidence = [
      mine.length
        ? `${who}: ${mine.length} call(s) used its grants, to ${tools.length} tool(s) in the window (last ${iso(mine.reduce((t, f) => Math.max(t, f.time), 0))}): ${tools.join(', ')}; they need ${[...needed].join(', ') || 'no scope'}`
        : `${who}: no call used its grants in the window${lastEver(input.usage, c.principals)}`,
    ];
    const stopped = mine.filter((f) => !f.allowed);
    if (stopped.length)
      evidence.push(
        `${stopped.length} of them stopped after the grant checks, and count as use: ${countBy(stopped.map((f) => `${f.tool} ${f.code ?? 'denied'}`))}`,
      );
    const mineRefused = refused.filter(
      (f) =>
        c.principals.includes(f.principal) &&
        (!mine.length || byName.get(f.tool)!.scopes.some((s) => names.includes(s))),
    );
    if (mineRefused.length)
      evidence.push(
        `${mineRefused.length} call(s) refused at the grant checks do not count (they used no grant): ${countBy(mineRefused.map((f) => `${f.tool} ${f.code ?? 'denied'}`))}`,
      );
    out.push({
      what: `${renderPath(c.path)} (${who}): remove ${names.join(', ')}`,
      evidence,
      ops:
        drop.length === c.scopes.length
          ? [{ op: 'set', path: c.path, value: [] }]
          : drop.map((d) => ({ op: 'remove' as const, path: [...c.path, d.i] })),
    });
  }
  return out;
}

/** Rules that enable writes none of which saw a call that used its grants. */
function enableChanges(ctx: Ctx): Change[] {
  const { input, raw, usedTools, byName } = ctx;
  const out: Change[] = [];
  for (const { rule, path } of effectiveRules(input.policy.doc)) {
    if (rule.enabled !== true) continue;
    const matches = compileMatch(rule.match);
    // The policy's kind, not the classification's: a POST a rule treats as a read is a read here.
    const writes = input.catalog.tools.filter((t) => matches(t) && byName.get(t.name)!.kind !== 'read');
    if (!writes.length || writes.some((t) => usedTools.has(t.name))) continue;
    const keys = Object.keys((getIn(raw, path) as Record<string, unknown>) ?? {});
    const whole = keys.every((k) => k === 'match' || k === 'enabled');
    out.push({
      what: `${renderPath(path)}: ${whole ? 'remove the rule' : 'remove enabled: true'} (enables ${writes.map((t) => t.name).join(', ')})`,
      evidence: writes.map((t) => toolEvidence(ctx, t)),
      ops: [{ op: 'remove', path: whole ? path : [...path, 'enabled'] }],
    });
  }
  return out;
}

/** Credential entries no call used (in any environment), with the rules that name them. */
function credentialChanges(ctx: Ctx): Change[] {
  const { input, raw, byName, used } = ctx;
  const doc = input.policy.doc;
  const out: Change[] = [];
  const usedDecisions = [...new Set(used.map((f) => f.tool))].map((t) => byName.get(t)!);
  const scopes: Array<{ api?: string; base: PolicyPath; entries: Record<string, unknown> }> = [];
  if (doc.credentials) scopes.push({ base: ['credentials'], entries: doc.credentials });
  for (const [name, api] of Object.entries(doc.apis ?? {}))
    if (api.credentials)
      scopes.push({ api: name, base: ['apis', name, 'credentials'], entries: api.credentials });
  for (const s of scopes) {
    const names = Object.keys(s.entries);
    const unused = names.filter(
      (n) =>
        !usedDecisions.some(
          (d) =>
            d.tool.api === s.api &&
            ENVIRONMENTS.some((env) => credentialChoice(doc, d, env).entries.some((e) => e.entry === n)),
        ),
    );
    for (const n of unused) {
      const ops: Op[] = [];
      // The rules that name it (for tools of this scope) lose `credential`, or go when nothing else is left.
      for (const { rule, path } of effectiveRules(doc)) {
        if (rule.credential !== n) continue;
        if (path[0] === 'apis' ? path[1] !== s.api : s.api !== undefined) continue;
        const keys = Object.keys((getIn(raw, path) as Record<string, unknown>) ?? {});
        ops.push({
          op: 'remove',
          path: keys.every((k) => k === 'match' || k === 'credential') ? path : [...path, 'credential'],
        });
      }
      const who = input.catalog.tools.filter(
        (t) =>
          t.api === s.api &&
          ENVIRONMENTS.some((env) =>
            credentialChoice(doc, byName.get(t.name)!, env).entries.some((e) => e.entry === n),
          ),
      );
      out.push({
        what: `${renderPath([...s.base, n])}: remove the credential${ops.length ? ` and the rule key(s) naming it (${ops.map((o) => renderPath(o.path)).join(', ')})` : ''}`,
        evidence: [
          `no call in the window used it${who.length ? `; the tools that would: ${who.map((t) => `${t.name} (${callsOf(ctx, t.name)})`).join(', ')}` : ' (no tool of the catalogue uses it)'}`,
        ],
        ops: [...ops, { op: 'remove', path: [...s.base, n] }],
      });
    }
  }
  // A credentials map emptied entirely: remove the key itself (an empty map is not a policy value).
  for (const s of scopes) {
    const mine = out.filter((c) => c.ops.at(-1)!.path.slice(0, -1).join('\0') === s.base.join('\0'));
    if (mine.length && mine.length === Object.keys(s.entries).length)
      for (const c of mine) c.ops[c.ops.length - 1] = { op: 'remove', path: s.base };
  }
  return out;
}

const RATE_KEYS = ['perTool', 'perPrincipal', 'perToolPrincipal'] as const;

/** Rate limits set in the policy at least twice what twice the observed peak would be. */
function rateChanges(ctx: Ctx): Change[] {
  const { input, raw, used } = ctx;
  const places: Array<{ path: PolicyPath; tools: Tool[] }> = [
    { path: ['rateLimit'], tools: input.catalog.tools },
    ...effectiveRules(input.policy.doc).map(({ rule, path }) => ({
      path: [...path, 'rateLimit'],
      tools: input.catalog.tools.filter(compileMatch(rule.match)),
    })),
  ];
  const out: Change[] = [];
  for (const { path, tools } of places) {
    const set = getIn(raw, path) as Record<string, { calls?: unknown; perSeconds?: unknown }> | undefined;
    if (!set || typeof set !== 'object') continue;
    const names = new Set(tools.map((t) => t.name));
    // Calls past the grant checks reached the limiter (refused ones included: a higher peak, never a lower one).
    const facts = used.filter((f) => names.has(f.tool));
    const limited = facts.filter((f) => f.code === 'RATE_LIMITED');
    for (const key of RATE_KEYS) {
      const r = set[key];
      if (typeof r?.calls !== 'number' || typeof r.perSeconds !== 'number') continue;
      const where = renderPath([...path, key]);
      if (limited.length) {
        ctx.skipped.push(
          `${where}: not lowered, ${limited.length} call(s) were refused RATE_LIMITED in the window (the limit is reached)`,
        );
        continue;
      }
      const group = (f: Fact) =>
        key === 'perTool' ? f.tool : key === 'perPrincipal' ? f.principal : `${f.principal}\0${f.tool}`;
      const peak = peakIn(facts, group, r.perSeconds * 1000);
      const proposal = Math.max(FLOORS.calls, nice(2 * peak.count));
      if (r.calls < 2 * proposal) continue;
      const per = `${r.perSeconds} s`;
      out.push({
        what: `${where}.calls: ${r.calls} → ${proposal} per ${per}`,
        evidence: [
          `peak ${peak.count} call(s) in ${per}${peak.at !== undefined ? ` (${iso(peak.at)}${peak.group ? `, ${peak.group.replace('\0', ' on ')}` : ''})` : ''} over ${facts.length} call(s) past the grant checks in the window; proposed 2× the peak, rounded up, at least ${FLOORS.calls}`,
        ],
        ops: [
          {
            op: 'set',
            path: [...path, key, 'calls'],
            value: proposal,
            comment: `rightsize: peak ${peak.count} per ${per} in ${input.windowLabel}; was ${r.calls}`,
          },
        ],
      });
    }
  }
  return out;
}

const SIZE_KEYS = [
  { key: 'maxResponseBytes', of: 'bytes', what: 'upstream response', cut: 'UPSTREAM_TOO_LARGE' },
  { key: 'maxResultBytes', of: 'resultBytes', what: 'result to the agent', cut: undefined },
] as const;

/**
 * `maxResponseBytes` and `maxResultBytes` set in the policy far above the largest upstream response
 * or result of their tools. (A result cut at its limit shows as a peak at the limit, so it is never
 * lowered; `maxItems` is not judged: the audit does not count items.)
 */
function byteChanges(ctx: Ctx): Change[] {
  const { input, raw, used } = ctx;
  const doc = input.policy.doc;
  const places: Array<{ path: PolicyPath; tools: Tool[] }> = [
    { path: ['defaults'], tools: input.catalog.tools },
    ...Object.keys(doc.apis ?? {}).map((a) => ({
      path: ['apis', a],
      tools: input.catalog.tools.filter((t) => t.api === a),
    })),
    ...effectiveRules(doc).map(({ rule, path }) => ({
      path,
      tools: input.catalog.tools.filter(compileMatch(rule.match)),
    })),
  ];
  const out: Change[] = [];
  for (const { path, tools } of places)
    for (const { key, of, what, cut } of SIZE_KEYS) {
      const current = (getIn(raw, path) as Record<string, unknown> | undefined)?.[key];
      if (typeof current !== 'number') continue;
      const names = new Set(tools.map((t) => t.name));
      const where = renderPath([...path, key]);
      if (cut && input.usage.facts.some((f) => names.has(f.tool) && f.code === cut)) {
        ctx.skipped.push(`${where}: not lowered, a response in the window was cut (${cut})`);
        continue;
      }
      const facts = used.filter((f) => names.has(f.tool) && f[of] !== undefined);
      if (!facts.length) continue;
      const top = facts.reduce((a, b) => (b[of]! > a[of]! ? b : a));
      const peak = top[of]!;
      const proposal = Math.max(FLOORS.bytes, niceKiB(2 * peak));
      if (current < 2 * proposal) continue;
      out.push({
        what: `${where}: ${current} → ${proposal}`,
        evidence: [
          `peak ${what} ${peak} bytes (${top.tool}, ${iso(top.time)}) over ${facts.length} call(s) in the window; proposed 2× the peak, rounded up to KiB, at least ${FLOORS.bytes}`,
        ],
        ops: [
          {
            op: 'set',
            path: [...path, key],
            value: proposal,
            comment: `rightsize: peak ${peak} bytes in ${input.windowLabel}; was ${current}`,
          },
        ],
      });
    }
  return out;
}

/**
 * The check every change passes before it is proposed: on the policy with it applied, every tool a
 * call of the window used (got past the grant checks of) is still exposed, needs the same scopes and presents the same
 * credential in every environment, and every caller the policy names still holds what its calls need.
 */
function usedGuard(ctx: Ctx): (next: Record<string, unknown>) => string | undefined {
  const { input, byName, used, usedTools } = ctx;
  const doc0 = input.policy.doc;
  return (next) => {
    const parsed = policySchema.safeParse(next);
    if (!parsed.success) return `the result would not be a valid policy (${parsed.error.issues[0]?.message})`;
    const doc: PolicyDoc = parsed.data;
    const problem = checkPolicy(input.catalog, {
      doc,
      text: '',
      file: input.policy.file,
      lineOf: () => undefined,
    }).find((p) => p.level === 'error');
    if (problem) return `the result would fail policy check (${problem.message})`;
    const after = new Map(evaluatePolicy(input.catalog, { doc }).map((d) => [d.tool.name, d]));
    for (const name of usedTools) {
      const a = after.get(name)!;
      const b = byName.get(name)!;
      if (a.blockers.length) return `${name} (used) would be hidden: ${a.blockers[0]!.reason}`;
      if (!isDeepStrictEqual([...a.scopes].sort(), [...b.scopes].sort()))
        return `${name} (used) would need other scopes`;
      for (const env of ENVIRONMENTS)
        if (!isDeepStrictEqual(credentialChoice(doc, a, env).entries, credentialChoice(doc0, b, env).entries))
          return `${name} (used) would present another credential in ${env}`;
    }
    for (const c of input.callers) {
      const held = new Set((getIn(next, c.path) as string[] | undefined) ?? []);
      for (const f of used)
        if (c.principals.includes(f.principal))
          for (const s of after.get(f.tool)!.scopes)
            if (!held.has(s)) return `${f.principal} would lose ${s}, which its calls to ${f.tool} need`;
    }
    return undefined;
  };
}

// --- evidence helpers ---

function toolEvidence(ctx: Ctx, t: Tool): string {
  const refused = ctx.refused.filter((f) => f.tool === t.name);
  const last = ctx.input.usage.lastUsed.get(t.name);
  return `${t.name}: 0 calls used it in the window; last use: ${last !== undefined ? iso(last) : 'none in the audit'}${refused.length ? `; ${refused.length} call(s) refused at the grant checks do not count (they used no grant): ${countBy(refused.map((f) => f.code ?? 'denied'))}` : ''}`;
}

function callsOf(ctx: Ctx, tool: string): string {
  const n = ctx.refused.filter((f) => f.tool === tool).length;
  return `0 calls used it${n ? `, ${n} refused at the grant checks` : ''}`;
}

function lastEver(usage: Usage, principals: readonly string[]): string {
  let last: number | undefined;
  for (const [k, t] of usage.lastUsed)
    if (principals.some((p) => k.startsWith(`${p}\0`)) && (last === undefined || t > last)) last = t;
  return last !== undefined ? `; last use: ${iso(last)}` : '; no use in the audit';
}

/** The tool names of some calls, each with its count (the ten most called), and how many names. */
function namesCounted(facts: readonly Fact[]): { count: number; text: string } {
  const m = new Map<string, number>();
  for (const f of facts) m.set(f.tool, (m.get(f.tool) ?? 0) + 1);
  const top = [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const shown = top.slice(0, 10).map(([k, n]) => `${JSON.stringify(k)} ×${n}`);
  return {
    count: m.size,
    text: `${shown.join(', ')}${top.length > 10 ? `, and ${top.length - 10} more` : ''}`,
  };
}

function countBy(items: string[]): string {
  const m = new Map<string, number>();
  for (const i of items) m.set(i, (m.get(i) ?? 0) + 1);
  return [...m].map(([k, n]) => `${k} ×${n}`).join(', ');
}

const iso = (t: number) => new Date(t).toISOString();

/** The most calls of one group within any `windowMs`, where and when. */
export function peakIn(
  facts: readonly Fact[],
  group: (f: Fact) => string,
  windowMs: number,
): { count: number; at?: number; group?: string } {
  const byGroup = new Map<string, number[]>();
  for (const f of facts) {
    const k = group(f);
    const list = byGroup.get(k);
    if (list) list.push(f.time);
    else byGroup.set(k, [f.time]);
  }
  let best: { count: number; at?: number; group?: string } = { count: 0 };
  for (const [k, times] of byGroup) {
    times.sort((a, b) => a - b);
    let lo = 0;
    for (let hi = 0; hi < times.length; hi++) {
      while (times[hi]! - times[lo]! >= windowMs) lo++;
      if (hi - lo + 1 > best.count) best = { count: hi - lo + 1, at: times[lo]!, group: k };
    }
  }
  return best;
}

/** Rounded up to 1, 2 or 5 × a power of ten. */
export function nice(n: number): number {
  if (n <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

/** Bytes rounded up to a whole number of KiB in 1, 2 or 5 × a power of ten. */
function niceKiB(bytes: number): number {
  return nice(Math.ceil(bytes / 1024)) * 1024;
}

// --- applying the changes ---

function getIn(obj: unknown, path: PolicyPath): unknown {
  let cur = obj;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return cur;
}

/** The plain document with the ops applied (removals from the highest index down). */
export function applyOps(obj: Record<string, unknown>, ops: readonly Op[]): Record<string, unknown> {
  const out = structuredClone(obj);
  for (const o of sortOps(ops)) {
    const parent = getIn(out, o.path.slice(0, -1)) as
      | Record<string | number, unknown>
      | unknown[]
      | undefined;
    const key = o.path.at(-1)!;
    if (!parent || typeof parent !== 'object') continue;
    if (o.op === 'set') (parent as Record<string | number, unknown>)[key] = o.value;
    else if (Array.isArray(parent)) parent.splice(Number(key), 1);
    else delete (parent as Record<string, unknown>)[String(key)];
  }
  return out;
}

/** Removals deepest and highest index first, so earlier indices stay valid; a removal under a removed node is dropped. */
function sortOps(ops: readonly Op[]): Op[] {
  const removed = ops.filter((o) => o.op === 'remove').map((o) => o.path);
  const under = (p: PolicyPath) => removed.some((r) => r.length < p.length && r.every((k, i) => k === p[i]));
  return ops
    .filter((o) => !under(o.path))
    .filter((o, i, all) => all.findIndex((x) => isDeepStrictEqual(x.path, o.path)) === i)
    .sort((a, b) => comparePaths(b.path, a.path));
}

function comparePaths(a: PolicyPath, b: PolicyPath): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return a.length - b.length;
}

function sameJs(text: string, expected: unknown): boolean {
  const d = parseDocument(text.replace(/^\uFEFF/, ''));
  return d.errors.length === 0 && isDeepStrictEqual(d.toJS(), expected);
}

/**
 * The ops as edits of the text itself, so that everything else (comments, blank lines, quoting,
 * flow or block style) stays as it was. Undefined when a layout is not one this handles.
 */
export function spliceOps(text: string, ops: readonly Op[], json: boolean): string | undefined {
  const doc = parseDocument(text.replace(/^\uFEFF/, ''));
  if (doc.errors.length) return undefined;
  const bom = text.startsWith('\uFEFF') ? 1 : 0;
  const src = text.slice(bom);
  const edits: Array<{ from: number; to: number; insert: string }> = [];
  const lineStart = (i: number) => src.lastIndexOf('\n', i - 1) + 1;
  const lineEnd = (i: number) => {
    const nl = src.indexOf('\n', i);
    return nl < 0 ? src.length : nl + 1;
  };
  /** The comment lines right above `from` (they describe what is removed). */
  const withComments = (from: number) => {
    let at = from;
    while (at > 0) {
      const prev = lineStart(at - 1);
      if (!/^[ \t]*#/.test(src.slice(prev, at))) break;
      at = prev;
    }
    return at;
  };
  /** `key: []` in place of the value at `path` (ending at `end`), from the key's end to the value's last character. */
  const emptied = (path: PolicyPath, end: number | undefined) => {
    const parent = doc.getIn(path.slice(0, -1), true);
    if (!isMap(parent) || end === undefined) return undefined;
    const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === path.at(-1)) as
      | Pair<Node, Node>
      | undefined;
    if (!pair?.key.range) return undefined;
    let to = end;
    while (to > pair.key.range[1] && /\s/.test(src[to - 1]!)) to--;
    return { from: pair.key.range[1], to, insert: ': []' };
  };
  const sorted = sortOps(ops);
  const groups = new Map<string, { parent: PolicyPath; keys: Array<string | number> }>();
  for (const o of sorted) {
    if (o.op === 'set') {
      const node = doc.getIn(o.path, true) as Node | undefined;
      if (!node?.range) return undefined;
      if (Array.isArray(o.value)) {
        const edit = emptied(o.path, node.range[1]);
        if (edit === undefined) return undefined;
        edits.push(edit);
        continue;
      }
      if (!isScalar(node)) return undefined;
      edits.push({ from: node.range[0], to: node.range[1], insert: String(o.value) });
      const end = lineEnd(node.range[1]);
      const rest = src.slice(node.range[1], end);
      if (o.comment && !json && !rest.includes('#')) {
        const at = rest.endsWith('\n') ? end - 1 : end;
        edits.push({ from: at, to: at, insert: `  # ${o.comment}` });
      }
      continue;
    }
    const parent = o.path.slice(0, -1);
    const k = JSON.stringify(parent);
    const g = groups.get(k) ?? { parent, keys: [] };
    g.keys.push(o.path.at(-1)!);
    groups.set(k, g);
  }
  for (const { parent, keys } of groups.values()) {
    const node = doc.getIn(parent, true);
    if (isSeq(node)) {
      const items = node.items as Node[];
      const gone = new Set(keys.map(Number));
      if (items.some((n) => !n.range)) return undefined;
      if (node.flow) {
        const kept = items.filter((_, i) => !gone.has(i)).map((n) => src.slice(n.range![0], n.range![1]));
        edits.push({ from: items[0]!.range![0], to: items.at(-1)!.range![1], insert: kept.join(', ') });
        continue;
      }
      if (gone.size === items.length) {
        // Emptied: `key: []` (a key with nothing under it would read as null), its comments with it.
        const to = emptied(parent, node.range?.[1]);
        if (to === undefined) return undefined;
        edits.push(to);
        continue;
      }
      for (const i of gone) {
        const n = items[i]!;
        const from = lineStart(n.range![0]);
        if (!/^[ \t]*-[ \t]*$/.test(src.slice(from, n.range![0]))) return undefined;
        edits.push({
          from: withComments(from),
          to: lineEnd(Math.max(n.range![0], n.range![1] - 1)),
          insert: '',
        });
      }
      continue;
    }
    if (isMap(node)) {
      const pairs = node.items as Array<Pair<Node, Node | null>>;
      const gone = new Set(keys.map(String));
      if (pairs.some((p) => !p.key?.range)) return undefined;
      const span = (p: Pair<Node, Node | null>) =>
        [p.key.range![0], p.value?.range?.[1] ?? p.key.range![1]] as const;
      if (node.flow) {
        const kept = pairs.filter((p) => !gone.has(String((p.key as { value?: unknown }).value)));
        edits.push({
          from: span(pairs[0]!)[0],
          to: span(pairs.at(-1)!)[1],
          insert: kept.map((p) => src.slice(...span(p))).join(', '),
        });
        continue;
      }
      for (const p of pairs) {
        if (!gone.has(String((p.key as { value?: unknown }).value))) continue;
        const [s, e] = span(p);
        const from = lineStart(s);
        if (!/^[ \t]*$/.test(src.slice(from, s))) return undefined;
        edits.push({ from: withComments(from), to: lineEnd(Math.max(s, e - 1)), insert: '' });
      }
      continue;
    }
    return undefined;
  }
  edits.sort((a, b) => b.from - a.from || b.to - a.to);
  for (let i = 1; i < edits.length; i++) if (edits[i]!.to > edits[i - 1]!.from) return undefined;
  let out = src;
  for (const e of edits) out = out.slice(0, e.from) + e.insert + out.slice(e.to);
  return (bom ? '\uFEFF' : '') + out;
}

/** The fallback: the ops applied to the YAML document, which is then printed whole (comments kept). */
function renderOps(text: string, ops: readonly Op[], json: boolean): string {
  const doc = parseDocument(text.replace(/^\uFEFF/, ''));
  if (json) return `${JSON.stringify(applyOps(doc.toJS() as Record<string, unknown>, ops), null, 2)}\n`;
  for (const o of sortOps(ops)) {
    if (o.op === 'remove') doc.deleteIn(o.path);
    else {
      const node = doc.createNode(o.value);
      if (o.comment && isScalar(node)) node.comment = ` ${o.comment}`;
      if (isSeq(node)) node.flow = true;
      doc.setIn(o.path, node);
    }
  }
  return doc.toString({ lineWidth: 0 });
}
