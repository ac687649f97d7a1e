import picomatch from 'picomatch';
import type { TagClass } from '../classify/data-classes.js';
import type { ApprovalMode } from '../model/approval.js';
import type { AuthRequirement, Catalog, DataClass, Tool } from '../model/catalog.js';
import { type MaskAction, type MaskRules, maskRules } from '../protect/mask.js';
import {
  budgetName,
  type CredentialDef,
  type CredentialKind,
  credentialKindOf,
  DEFAULT_SCOPES,
  type Environment,
  type PolicyDoc,
  type PolicyMatch,
  type PolicyRule,
  RESTRICTED_RISKS,
  type UserOAuthSource,
} from './schema.js';

/** What kind of call a tool makes, which decides its default treatment. */
export type ToolKind = 'read' | 'write' | 'destructive';

/**
 * Something keeping a tool hidden. `disabled` is the only kind a runtime `enable` can lift: risk,
 * mode and credential blockers come from the policy's secure defaults and the environment.
 */
export interface Blocker {
  kind: 'risk' | 'mode' | 'disabled' | 'credential' | 'unapproved' | 'toolset';
  reason: string;
}

export interface ExplainStep {
  /** `default`, or `rules[2] (warden.yaml:14)`. */
  by: string;
  what: string;
}

export interface Rate {
  calls: number;
  perSeconds: number;
}
export interface RateLimits {
  perTool?: Rate;
  perPrincipal?: Rate;
  perToolPrincipal?: Rate;
}
export type BreakerConfig = { failures: number; halfOpenAfterSeconds: number } | false;
export type RetryConfig = { attempts: number; baseMs: number } | false;

/** With no configuration: generous for reads, tighter for writes, and a cap per caller overall. */
export const DEFAULT_RATE_LIMITS: Record<'read' | 'write', RateLimits> = {
  read: { perToolPrincipal: { calls: 120, perSeconds: 60 }, perPrincipal: { calls: 600, perSeconds: 60 } },
  write: { perToolPrincipal: { calls: 20, perSeconds: 60 }, perPrincipal: { calls: 600, perSeconds: 60 } },
};

export interface Limits {
  timeoutMs?: number;
  headersTimeoutMs?: number;
  concurrency?: number;
  maxResponseBytes?: number;
  maxPageSize?: number;
  maxItems?: number;
  maxResultBytes?: number;
  /** What protect does with a field the screen flagged (default annotate). */
  untrusted?: 'annotate' | 'redact' | 'withhold';
}

export type AuditDetail = 'full' | 'digest' | 'none';

/** The policy's verdict on one tool: computed once per policy version, explained step by step. */
export interface ToolDecision {
  tool: Tool;
  kind: ToolKind;
  blockers: Blocker[];
  /** Every scope a caller needs to see and call the tool. */
  scopes: string[];
  confirm: boolean;
  /**
   * How a confirmed call is approved (meaningful when `confirm`): `auto` elicits where the client
   * can and parks for an operator otherwise; `approvers: 2` always means `operator`.
   */
  approval: ApprovalMode;
  /** Distinct operators who must approve (operator mode). */
  approvers: 1 | 2;
  /** Name of the `credentials` entry presented upstream, when a rule or a scheme names one. */
  credential?: string;
  limits: Limits;
  /** Response masking: the action per class and the operator's field tags. */
  masking: MaskRules;
  audit: AuditDetail;
  rateLimit: RateLimits;
  breaker: BreakerConfig;
  retries: RetryConfig;
  /** Taint guard: whether the tool can send data out (default: writes and destructive tools). */
  egress?: boolean;
  /** Taint guard settings (`taint:`, the same for every tool); absent: the defaults. */
  taint?: TaintPolicy;
  /** The `budgets` that count this tool's calls (docs/budgets.md); absent: none. */
  budgets?: ToolBudget[];
  /** A POST a rule's `treatAs: read` decides as a read: that rule's reason and where it is. */
  treatAs?: { reason: string; by: string };
  steps: ExplainStep[];
}

/** One budget counting a tool's calls, per caller: `limit` units (calls or records) per window. */
export interface ToolBudget {
  name: string;
  class?: string;
  unit: 'calls' | 'records';
  limit: number;
  perSeconds: number;
}

/** `taint:` with its defaults applied. */
export interface TaintPolicy {
  mode: 'off' | 'refuse' | 'park';
  windowSeconds: number;
  classes: ReadonlyArray<'pii' | 'secret' | 'financial' | 'untrusted'>;
  per: 'session' | 'principal';
}

/** The taint guard with no `taint:` in the policy: on, parking outward calls for an operator. */
export const DEFAULT_TAINT: TaintPolicy = {
  mode: 'park',
  windowSeconds: 3600,
  classes: ['pii', 'secret', 'financial', 'untrusted'],
  per: 'session',
};

export interface PolicySource {
  doc: PolicyDoc;
  /** Display name of the file (for `explain`), and where each rule starts. */
  file?: string;
  lineOf?: (path: ReadonlyArray<string | number>) => number | undefined;
}

/** The policy that applies with no file at all: the secure defaults, nothing else. */
export const DEFAULT_POLICY: PolicyDoc = { version: 1, mode: 'read-only', rules: [] };

export function kindOf(tool: Pick<Tool, 'risk'>): ToolKind {
  if (tool.risk.classes.includes('destructive')) return 'destructive';
  if (tool.risk.classes.includes('write')) return 'write';
  return 'read';
}

/** Compiles a match once; testing a tool is then a few string tests. */
export function compileMatch(match: PolicyMatch): (t: Tool) => boolean {
  const { name, tag, method, path, api } = match;
  const glob = (p: string) =>
    /[*?[\]]/.test(p) ? picomatch(p, { nobrace: true, noextglob: true, dot: true }) : (s: string) => s === p;
  const nameOk = name !== undefined ? glob(name) : undefined;
  const pathOk = path !== undefined ? glob(path) : undefined;
  return (t) =>
    (nameOk === undefined || nameOk(t.name)) &&
    (tag === undefined || t.source.tags.includes(tag)) &&
    (method === undefined || t.source.method === method) &&
    (pathOk === undefined || pathOk(t.source.path)) &&
    (api === undefined || t.api === api);
}

/**
 * The rules in the order they cascade, each with how `explain` names it: in an API set, every API's
 * own `rules` (with `match.api` implied) first, in the order of `apis:`, then the top-level `rules`,
 * which so have the last word over every API.
 */
export function effectiveRules(doc: PolicyDoc): Array<{ rule: PolicyRule; path: Array<string | number> }> {
  const out: Array<{ rule: PolicyRule; path: Array<string | number> }> = [];
  for (const [name, api] of Object.entries(doc.apis ?? {}))
    api.rules.forEach((rule, i) => {
      out.push({ rule: { ...rule, match: { ...rule.match, api: name } }, path: ['apis', name, 'rules', i] });
    });
  doc.rules.forEach((rule, i) => {
    out.push({ rule, path: ['rules', i] });
  });
  return out;
}

/**
 * Applies the policy to every tool. Rules cascade in file order: each matching rule sets the fields it
 * names, a later rule overriding an earlier one, and every step is recorded so `explain` can say which
 * rule decided what. The secure defaults hold whatever the rules say unless lifted explicitly:
 * restricted risks need `allowRisk` + `reason`, writes need `mode: read-write` and `enabled: true`,
 * destructive tools are confirmed unless `confirm: false` + `reason`.
 */
export function evaluatePolicy(catalog: Catalog, source: PolicySource): ToolDecision[] {
  const { doc } = source;
  const ctx: PolicyContext = {
    doc,
    rules: effectiveRules(doc).map(({ rule, path }) => ({ rule, path, matches: compileMatch(rule.match) })),
    where: (path) => {
      const line = source.lineOf?.(path);
      return `${renderPath(path)}${source.file ? ` (${source.file}${line ? `:${line}` : ''})` : ''}`;
    },
    baseScopes: { ...DEFAULT_SCOPES, ...(doc.scopes ?? {}) },
    taint: doc.taint ? { ...DEFAULT_TAINT, ...doc.taint } : DEFAULT_TAINT,
  };
  ctx.budgets = (doc.budgets ?? []).map((b, i) => {
    const match = b.match ? compileMatch(b.match) : () => true;
    return {
      budget: {
        name: budgetName(b),
        ...(b.class !== undefined ? { class: b.class } : {}),
        unit: b.calls !== undefined ? 'calls' : 'records',
        limit: b.calls ?? b.records!,
        perSeconds: b.perSeconds,
      },
      matches: (t: Tool) => (b.class === undefined || t.risk.classes.includes(b.class)) && match(t),
      where: ctx.where(['budgets', i]),
    };
  });
  return catalog.tools.map((tool) => decideTool(ctx, tool));
}

/** The policy, compiled once for all its tools. */
interface PolicyContext {
  doc: PolicyDoc;
  rules: Array<{ rule: PolicyRule; path: Array<string | number>; matches: (t: Tool) => boolean }>;
  /** How `explain` names a rule: `rules[2] (warden.yaml:14)`, `apis.crm.rules[0] (warden.yaml:9)`. */
  where: (path: ReadonlyArray<string | number>) => string;
  baseScopes: Record<ToolKind | 'admin', readonly string[]>;
  /** `budgets:`, compiled once: each budget, which tools it counts, how `explain` names it. */
  budgets?: Array<{ budget: ToolBudget; matches: (t: Tool) => boolean; where: string }>;
  taint: TaintPolicy;
}

/** What the rules cascade into for one tool, starting from the defaults. */
interface Settings {
  enabled: boolean | undefined;
  scopes: string[] | undefined;
  confirm: boolean | undefined;
  approval: ApprovalMode | undefined;
  approvers: 1 | 2 | undefined;
  credential: string | undefined;
  audit: AuditDetail;
  actions: Partial<Record<DataClass, MaskAction>>;
  fields: Record<string, TagClass>;
  rateLimit: RateLimits;
  breaker: BreakerConfig;
  retries: RetryConfig;
  /** Restricted risks a rule lets through, with the rule's reason. */
  allowed: Map<string, string>;
  limits: Limits;
  egress: boolean | undefined;
}

const LIMIT_KEYS = [
  'timeoutMs',
  'headersTimeoutMs',
  'concurrency',
  'maxResponseBytes',
  'maxPageSize',
  'maxItems',
  'maxResultBytes',
  'untrusted',
] as const;

function decideTool(ctx: PolicyContext, tool: Tool): ToolDecision {
  const classified = kindOf(tool);
  const steps: ExplainStep[] = [classificationStep(tool, classified)];
  const treatAs = treatAsRead(ctx, tool, classified, steps);
  const kind: ToolKind = treatAs ? 'read' : classified;
  const s = defaultSettings(ctx.doc, kind);
  const api = tool.api !== undefined ? ctx.doc.apis?.[tool.api] : undefined;
  if (api) {
    // The API's own limits: defaults for its tools, under any rule.
    const set: string[] = [];
    for (const k of LIMIT_KEYS)
      if (api[k] !== undefined) {
        (s.limits as Record<string, unknown>)[k] = api[k];
        set.push(`${k}: ${api[k]}`);
      }
    if (set.length) steps.push({ by: ctx.where(['apis', tool.api!]), what: set.join('; ') });
  }
  for (const { rule, path, matches } of ctx.rules) {
    if (!matches(tool)) continue;
    const set = applyRule(s, rule);
    steps.push({ by: ctx.where(path), what: set.length ? set.join('; ') : 'matches, sets nothing' });
  }

  const masking = maskRules(s.actions, s.fields);
  const blockers = riskBlockers(tool, s.allowed, masking, steps);
  blockers.push(...switchBlockers(kind, ctx.doc.mode, s.enabled));

  const effectiveScopes = s.scopes ?? [
    ...ctx.baseScopes[kind],
    ...(tool.risk.classes.includes('admin') ? ctx.baseScopes.admin : []),
  ];
  if (!s.scopes) steps.push({ by: 'default', what: `scopes: [${effectiveScopes.join(', ')}] (by risk)` });
  // A rule that names an approval mode or approvers asks for an approval: never silently none.
  const asked = s.approval !== undefined || s.approvers !== undefined;
  const effectiveConfirm = s.confirm ?? (kind === 'destructive' || asked);
  if (s.confirm === undefined && effectiveConfirm)
    steps.push({
      by: 'default',
      what: `confirm: true (${kind === 'destructive' ? 'destructive' : 'the rule names an approval'})`,
    });
  const approvers = s.approvers ?? 1;
  // Two people can only be operators: a second approver implies operator whatever the mode said.
  const approval: ApprovalMode = approvers === 2 ? 'operator' : (s.approval ?? 'auto');
  if (effectiveConfirm) {
    if (approvers === 2 && s.approval !== 'operator')
      steps.push({ by: 'default', what: 'approval: operator (approvers: 2 needs two operators)' });
    else if (s.approval === undefined)
      steps.push({
        by: 'default',
        what: 'approval: auto (the user through the client where it can elicit, otherwise a human operator)',
      });
  }

  const budgets = (ctx.budgets ?? []).filter((b) => b.matches(tool));
  for (const { budget: b, where } of budgets)
    steps.push({
      by: where,
      what: `budget ${b.name}: ${b.limit} ${b.unit} per ${b.perSeconds} s per caller (then read-only for that caller)`,
    });

  return {
    tool,
    kind,
    blockers,
    scopes: [...new Set(effectiveScopes)],
    confirm: effectiveConfirm,
    approval,
    approvers,
    ...(s.credential !== undefined ? { credential: s.credential } : {}),
    limits: s.limits,
    masking,
    audit: s.audit,
    rateLimit: s.rateLimit,
    breaker: s.breaker,
    // Never retried: a write may have happened even when its answer was lost.
    retries: kind === 'read' && ['get', 'head', 'options'].includes(tool.source.method) ? s.retries : false,
    ...(budgets.length ? { budgets: budgets.map((b) => b.budget) } : {}),
    // An outward channel for the taint guard: any write unless a rule says otherwise (a read leaks
    // only through its query, which the guard does not claim to catch).
    // A POST decided a read (`treatAs: read`) still sends its body: outward unless a rule says not.
    egress: s.egress ?? (kind !== 'read' || !['get', 'head', 'options'].includes(tool.source.method)),
    taint: ctx.taint,
    ...(treatAs ? { treatAs } : {}),
    steps,
  };
}

/**
 * `treatAs: read` (the last matching rule that says it): a POST that only reads is decided as a read
 * — exposed in read-only mode, read scopes and limits, no confirmation by default — and is still
 * sent as a POST, never retried. Only a plain write POST qualifies: a destructive tool, or another
 * method, stays what it is (the step says why), and restricted risks still need `allowRisk`.
 */
function treatAsRead(
  ctx: PolicyContext,
  tool: Tool,
  classified: ToolKind,
  steps: ExplainStep[],
): { reason: string; by: string } | undefined {
  let found: { rule: PolicyRule; path: Array<string | number> } | undefined;
  for (const r of ctx.rules) if (r.rule.treatAs === 'read' && r.matches(tool)) found = r;
  if (!found) return undefined;
  const by = ctx.where(found.path);
  const refuse = (why: string) => {
    steps.push({ by, what: `treatAs: read ignored: ${why}` });
    return undefined;
  };
  if (tool.source.method !== 'post')
    return refuse(`only a POST can be treated as a read (this is ${tool.source.method.toUpperCase()})`);
  if (classified !== 'write') return refuse(`the tool is classified ${classified}`);
  const reason = found.rule.reason ?? '';
  const hint = tool.risk.readLike
    ? `recognised as read-like by its verb "${tool.risk.readLike.verb}"`
    : 'not recognised as read-like';
  steps.push({
    by,
    what: `treatAs: read because "${reason}" (${hint}): decided as a read, still sent as a POST`,
  });
  return { reason, by };
}

/** `['apis', 'crm', 'rules', 0]` → `apis.crm.rules[0]`, as a user points at a key. */
export function renderPath(path: ReadonlyArray<string | number>): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

function classificationStep(tool: Tool, kind: ToolKind): ExplainStep {
  const classes = tool.risk.classes.filter((c) => c !== 'read');
  return {
    by: 'classification',
    what: `${kind}${classes.length ? ` (risk: ${classes.join(', ')})` : ''}${tool.risk.unbounded ? ', unbounded list' : ''}`,
  };
}

function defaultSettings(doc: PolicyDoc, kind: ToolKind): Settings {
  return {
    enabled: undefined,
    scopes: undefined,
    confirm: undefined,
    approval: undefined,
    approvers: undefined,
    credential: undefined,
    audit: 'full',
    actions: {},
    fields: { ...(doc.fields ?? {}) },
    rateLimit: { ...DEFAULT_RATE_LIMITS[kind === 'read' ? 'read' : 'write'], ...(doc.rateLimit ?? {}) },
    breaker: { failures: 5, halfOpenAfterSeconds: 30 },
    retries: { attempts: 1, baseMs: 100 },
    allowed: new Map<string, string>(),
    limits: { ...(doc.defaults ?? {}) },
    egress: undefined,
  };
}

/** Applies one matching rule over the settings; returns what it set, in words, for `explain`. */
function applyRule(s: Settings, rule: PolicyRule): string[] {
  const set: string[] = [];
  if (rule.enabled !== undefined) {
    s.enabled = rule.enabled;
    set.push(`enabled: ${rule.enabled}`);
  }
  if (rule.scopes !== undefined) {
    s.scopes = rule.scopes;
    set.push(`scopes: [${rule.scopes.join(', ')}]`);
  }
  if (rule.allowRisk) {
    for (const r of rule.allowRisk) s.allowed.set(r, rule.reason ?? '');
    set.push(`allowRisk: [${rule.allowRisk.join(', ')}] because "${rule.reason}"`);
  }
  if (rule.confirm !== undefined) {
    s.confirm = rule.confirm;
    set.push(`confirm: ${rule.confirm}${rule.confirm ? '' : ` because "${rule.reason}"`}`);
  }
  if (rule.approval !== undefined) {
    s.approval = rule.approval;
    set.push(`approval: ${rule.approval}${rule.approval === 'agent' ? ` because "${rule.reason}"` : ''}`);
  }
  if (rule.approvers !== undefined) {
    s.approvers = rule.approvers;
    set.push(`approvers: ${rule.approvers}`);
  }
  // Decided before the cascade (the kind sets the defaults): named here so the rule is not silent.
  if (rule.treatAs !== undefined) set.push(`treatAs: ${rule.treatAs}`);
  if (rule.credential !== undefined) {
    s.credential = rule.credential;
    set.push(`credential: ${rule.credential}`);
  }
  if (rule.masking) {
    s.actions = { ...s.actions, ...rule.masking };
    set.push(`masking: ${JSON.stringify(rule.masking)}`);
  }
  if (rule.fields) {
    s.fields = { ...s.fields, ...rule.fields };
    set.push(`fields: ${JSON.stringify(rule.fields)}`);
  }
  if (rule.rateLimit) {
    s.rateLimit = { ...s.rateLimit, ...rule.rateLimit };
    set.push(`rateLimit: ${JSON.stringify(rule.rateLimit)}`);
  }
  if (rule.breaker !== undefined) {
    s.breaker = rule.breaker;
    set.push(`breaker: ${JSON.stringify(rule.breaker)}`);
  }
  if (rule.retries !== undefined) {
    s.retries = rule.retries;
    set.push(`retries: ${JSON.stringify(rule.retries)}`);
  }
  if (rule.audit) {
    s.audit = rule.audit;
    set.push(`audit: ${rule.audit}`);
  }
  if (rule.egress !== undefined) {
    s.egress = rule.egress;
    set.push(`egress: ${rule.egress}`);
  }
  for (const k of LIMIT_KEYS)
    if (rule[k] !== undefined) {
      (s.limits as Record<string, unknown>)[k] = rule[k];
      set.push(`${k}: ${rule[k]}`);
    }
  return set;
}

/** A restricted risk hides the tool unless a rule allowed it (or masking makes it moot). */
function riskBlockers(
  tool: Tool,
  allowed: ReadonlyMap<string, string>,
  masking: MaskRules,
  steps: ExplainStep[],
): Blocker[] {
  const blockers: Blocker[] = [];
  for (const cls of RESTRICTED_RISKS) {
    if (!tool.risk.classes.includes(cls) || allowed.has(cls)) continue;
    // A read that is "credential" only because its response has secret fields is safe once
    // masking drops them (the default): the agent never sees the secrets.
    const found = tool.risk.findings.filter((f) => f.class === cls);
    if (
      cls === 'credential' &&
      masking.actions.secret === 'drop' &&
      found.length > 0 &&
      found.every((f) => f.rule === 'credential-response')
    ) {
      steps.push({
        by: 'default',
        what: 'credential risk lifted: its secret response fields are dropped by masking',
      });
      continue;
    }
    const why = tool.risk.findings
      .filter((f) => f.class === cls)
      .map((f) => f.reason)
      .join('; ');
    blockers.push({
      kind: 'risk',
      reason: `${cls}: ${why || 'classified so'}; hidden unless a rule sets allowRisk: [${cls}] with a reason`,
    });
  }
  return blockers;
}

/** Writes need `mode: read-write` and `enabled: true`; any tool can be disabled by a rule. */
function switchBlockers(kind: ToolKind, mode: PolicyDoc['mode'], enabled: boolean | undefined): Blocker[] {
  const blockers: Blocker[] = [];
  if (kind !== 'read') {
    if (mode !== 'read-write')
      blockers.push({ kind: 'mode', reason: `${kind} tool and the policy mode is read-only` });
    if (enabled !== true)
      blockers.push({
        kind: 'disabled',
        reason:
          enabled === false
            ? `${kind} tool disabled by a rule`
            : `${kind} tool: writes need enabled: true in a rule`,
      });
  } else if (enabled === false) {
    blockers.push({ kind: 'disabled', reason: 'disabled by a rule' });
  }
  return blockers;
}

/** Which upstream credential a tool uses in an environment, and why: what `explain` shows. */
export interface CredentialChoice {
  /** `none`: the operation needs no upstream authentication. */
  kind: CredentialKind | 'none';
  /** The `credentials` entry used, per scheme of the chosen security alternative (absent: the environment variable). */
  entries: Array<{ scheme: string; entry?: string; kind: CredentialKind }>;
  step: ExplainStep;
}

const KIND_WORDS: Record<CredentialKind, string> = {
  service: "the gateway's own service credential (every caller acts upstream as the same account)",
  userOAuth: 'per-user OAuth (each caller acts upstream as their own connected account)',
  tokenExchange: "token exchange (the caller's token is exchanged for one minted for the upstream)",
};

/**
 * Where per-user OAuth finds the authorization server, in the order `serve` tries (see
 * authorizationServer in src/server/user-credentials.ts); read from the tool's scheme without the URLs.
 */
function serverFrom(src: UserOAuthSource, req: AuthRequirement): string {
  if (src.authorizationUrl !== undefined && src.tokenUrl !== undefined)
    return "the policy's authorizationUrl and tokenUrl";
  if (src.issuer !== undefined) return "discovery from the policy's issuer";
  if (req.type === 'oauth2' && req.flows?.includes('authorizationCode'))
    return "the spec's authorizationCode flow";
  if (req.type === 'openIdConnect') return "discovery from the spec's openIdConnectUrl";
  return 'none (add issuer, or authorizationUrl and tokenUrl)';
}

/**
 * Mirrors the resolution in src/upstream/credentials.ts without reading any secret: for the first
 * security alternative, each scheme's entry is the one the rules name (`credential`) if it is for
 * that scheme, else the first entry for the scheme, else `MCP_WARDEN_CRED_<SCHEME>` (a service
 * credential). The entry's source for `environment` decides the kind.
 */
export function credentialChoice(
  doc: PolicyDoc,
  decision: Pick<ToolDecision, 'tool' | 'credential'>,
  environment: Environment,
): CredentialChoice {
  const { tool, credential } = decision;
  const alt = tool.auth.public ? undefined : tool.auth.alternatives.find((a) => a.length > 0);
  if (!alt)
    return {
      kind: 'none',
      entries: [],
      step: { by: 'spec', what: 'credential: none (the operation needs no upstream authentication)' },
    };
  const own: Record<string, CredentialDef> =
    (tool.api !== undefined ? doc.apis?.[tool.api]?.credentials : doc.credentials) ?? {};
  const base = tool.api !== undefined ? `apis.${tool.api}.credentials` : 'credentials';
  const entries = alt.map((req) => {
    const named =
      credential !== undefined && own[credential]?.scheme === req.scheme
        ? credential
        : Object.keys(own).find((k) => own[k]!.scheme === req.scheme);
    const source = named !== undefined ? own[named]![environment] : undefined;
    return {
      scheme: req.scheme,
      ...(named !== undefined ? { entry: named } : {}),
      kind: source !== undefined ? credentialKindOf(source) : ('service' as const),
      why:
        named === undefined
          ? `no entry for scheme ${req.scheme}: its MCP_WARDEN_CRED_* environment variable`
          : `${base}.${named}.${environment}${credential === named ? ' (named by the rules)' : ` (the entry for scheme ${req.scheme})`}${source === undefined ? ', which has no source here' : ''}${typeof source === 'object' && source.userOAuth ? `; authorization server: ${serverFrom(source.userOAuth, req)}` : ''}`,
    };
  });
  // A person's identity wins the headline: one per-user scheme makes the call act as the caller.
  const kind = entries.find((e) => e.kind !== 'service')?.kind ?? 'service';
  return {
    kind,
    entries: entries.map(({ why: _why, ...e }) => e),
    step: {
      by: entries.map((e) => e.why).join('; '),
      what: `credential: ${KIND_WORDS[kind]}`,
    },
  };
}
