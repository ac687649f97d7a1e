import picomatch from 'picomatch';
import type { Catalog } from '../model/catalog.js';
import { compileMatch, effectiveRules, kindOf, renderPath } from './evaluate.js';
import type { LoadedPolicy } from './load.js';
import { type AlertsDoc, effectiveAlerts } from './schema.js';

export interface PolicyProblem {
  level: 'error' | 'warning';
  line?: number;
  message: string;
}

/**
 * Checks a schema-valid policy against a spec: names that must exist do. An exact tool name, a
 * credential or a scheme that is not there is an error (a typo would otherwise silently match
 * nothing); a glob or tag matching nothing is a warning.
 */
export function checkPolicy(catalog: Catalog, policy: LoadedPolicy): PolicyProblem[] {
  const { doc } = policy;
  const problems: PolicyProblem[] = [];
  const apis = doc.apis ?? {};
  // An API of the set with no tool in the catalogue is out (its spec failed to load): its rules
  // cannot be checked now and are not errors; they are checked again when it comes back.
  const out = new Set(Object.keys(apis).filter((a) => !catalog.tools.some((t) => t.api === a)));
  // The set's APIs: the policy's `apis:`, or those of `serve --api` (named on the tools).
  const known = [
    ...new Set([...Object.keys(apis), ...catalog.tools.flatMap((t) => (t.api !== undefined ? [t.api] : []))]),
  ];
  const outPrefixes = [...out].map((a) => `${apis[a]!.prefix ?? a}_`).filter((p) => p !== '_');

  for (const { rule, path } of effectiveRules(doc)) {
    const where = renderPath(path);
    const line = policy.lineOf([...path, 'match']);
    const { name, tag, method, api } = rule.match;
    if (api !== undefined && !known.includes(api)) {
      problems.push({
        level: 'error',
        ...at(line),
        message: `${where}: no API named "${api}" under apis${didYouMean(api, known)}`,
      });
      continue;
    }
    if (api !== undefined && out.has(api)) continue;
    const tools = api !== undefined ? catalog.tools.filter((t) => t.api === api) : catalog.tools;
    const names = tools.map((t) => t.name);
    const tags = [...new Set(tools.flatMap((t) => t.source.tags))];
    if (name !== undefined) {
      const isGlob = /[*?[\]]/.test(name);
      if (!isGlob && !names.includes(name) && !outPrefixes.some((p) => name.startsWith(p)))
        problems.push({
          level: 'error',
          ...at(line),
          message: `${where}: no tool named "${name}"${didYouMean(name, names)}`,
        });
      if (
        isGlob &&
        !names.some((n) => picomatch.isMatch(n, name, { nobrace: true, noextglob: true, dot: true }))
      )
        problems.push({ level: 'warning', ...at(line), message: `${where}: "${name}" matches no tool` });
    }
    if (tag !== undefined && !tags.includes(tag))
      problems.push({
        level: out.size && api === undefined ? 'warning' : 'error',
        ...at(line),
        message: `${where}: no operation has tag "${tag}"${didYouMean(tag, tags)}`,
      });
    const p = rule.match.path;
    if (p !== undefined && !/[*?[\]]/.test(p) && !tools.some((t) => t.source.path === p)) {
      const paths = [...new Set(tools.map((t) => t.source.path))];
      problems.push({
        level: out.size && api === undefined ? 'warning' : 'error',
        ...at(line),
        message: `${where}: no path "${p}"${didYouMean(p, paths)}`,
      });
    }
    if (method !== undefined && !tools.some((t) => t.source.method === method))
      problems.push({
        level: 'warning',
        ...at(line),
        message: `${where}: no operation uses ${method.toUpperCase()}`,
      });
    if (rule.treatAs === 'read') {
      // Honoured only on a plain write POST (evaluate.ts): anything else would silently do nothing.
      const matches = compileMatch(rule.match);
      const hit = tools.filter((t) => matches(t));
      if (hit.length && !hit.some((t) => t.source.method === 'post' && isPlainWrite(t)))
        problems.push({
          level: 'warning',
          ...at(policy.lineOf([...path, 'treatAs'])),
          message: `${where}: treatAs: read has no effect: it matches no POST that is a plain write (destructive tools and other methods stay what they are)`,
        });
      // A broad match can sweep a real write in (`/accounts/*` takes `/accounts/transfer`): name
      // every POST it turns into a read that the catalogue did not recognise as read-like.
      const unlike = hit.filter((t) => t.source.method === 'post' && isPlainWrite(t) && !t.risk.readLike);
      if (unlike.length)
        problems.push({
          level: 'warning',
          ...at(policy.lineOf([...path, 'treatAs'])),
          message: `${where}: treatAs: read turns ${unlike.length} POST(s) with no read verb into reads: ${unlike
            .slice(0, 10)
            .map((t) => t.name)
            .join(', ')}${unlike.length > 10 ? ', …' : ''} — match them by name if that is meant`,
        });
    }
    if (rule.credential !== undefined) {
      const credLine = at(policy.lineOf([...path, 'credential']));
      if (doc.apis && api === undefined)
        problems.push({
          level: 'error',
          ...credLine,
          message: `${where}: in an API set a rule that names a credential says which API it is for (match.api, or put it under apis.<name>.rules)`,
        });
      else {
        const credNames = Object.keys((api !== undefined ? apis[api]!.credentials : doc.credentials) ?? {});
        const under = api !== undefined ? `apis.${api}.credentials` : 'credentials';
        if (!credNames.includes(rule.credential))
          problems.push({
            level: 'error',
            ...credLine,
            message: `${where}: no credential named "${rule.credential}" under ${under}${didYouMean(rule.credential, credNames)}`,
          });
      }
    }
  }
  // A taint guard that parks calls nobody can approve refuses them in disguise: say so.
  // Parking is also the default (no `taint:` block at all).
  if ((doc.taint?.mode ?? 'park') === 'park' && doc.mode === 'read-write' && !doc.admin)
    problems.push({
      level: 'warning',
      ...(doc.taint ? at(policy.lineOf(['taint', 'mode'])) : {}),
      message:
        'taint: mode park waits for an operator, and no admin is configured to approve: set admin (and serve --admin-port), or taint.mode: refuse',
    });
  // A budget that counts no tool protects nothing: a misspelt name is an error, an empty selection a warning.
  (doc.budgets ?? []).forEach((b, i) => {
    const where = `budgets[${i}]`;
    const line = at(policy.lineOf(['budgets', i]));
    const name = b.match?.name;
    const names = catalog.tools.map((t) => t.name);
    if (name !== undefined && !/[*?[\]]/.test(name) && !names.includes(name)) {
      problems.push({
        level: 'error',
        ...line,
        message: `${where}: no tool named "${name}"${didYouMean(name, names)}`,
      });
      return;
    }
    const matches = b.match ? compileMatch(b.match) : () => true;
    if (!catalog.tools.some((t) => (b.class === undefined || t.risk.classes.includes(b.class)) && matches(t)))
      problems.push({
        level: 'warning',
        ...line,
        message: `${where}: counts no tool${b.class !== undefined ? ` (no tool of class ${b.class}${b.match ? ' matches' : ''})` : ''}`,
      });
  });
  const schemesOf = (tools: Catalog['tools']) => [
    ...new Set(tools.flatMap((t) => t.auth.alternatives.flat().map((r) => r.scheme))),
  ];
  const checkSchemes = (
    defs: Record<string, { scheme: string }> | undefined,
    schemes: string[],
    path: string[],
  ) => {
    for (const [name, cred] of Object.entries(defs ?? {}))
      if (!schemes.includes(cred.scheme))
        problems.push({
          level: 'error',
          ...at(policy.lineOf([...path, name, 'scheme'])),
          message: `${[...path, name].join('.')}: the spec has no security scheme "${cred.scheme}"${didYouMean(cred.scheme, schemes)}`,
        });
  };
  checkSchemes(doc.credentials, schemesOf(catalog.tools), ['credentials']);
  for (const [name, api] of Object.entries(apis))
    if (!out.has(name))
      checkSchemes(api.credentials, schemesOf(catalog.tools.filter((t) => t.api === name)), [
        'apis',
        name,
        'credentials',
      ]);
  return problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
}

function at(line: number | undefined): { line?: number } {
  return line !== undefined ? { line } : {};
}

/** The closest candidate within a small edit distance, as a hint. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(word.length / 3)) + 1;
  const lw = word.toLowerCase();
  for (const c of candidates) {
    if (Math.abs(c.length - word.length) >= bestD) continue;
    const d = distance(lw, c.toLowerCase(), bestD);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined ? ` (did you mean "${best}"?)` : '';
}

/** Levenshtein distance, giving up once it exceeds `max` (names are short; this is a hint only). */
function distance(a: string, b: string, max: number): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      cur.push(v);
      rowMin = Math.min(rowMin, v);
    }
    if (rowMin > max) return max + 1;
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * The alert rules in force, one line each, as `policy check` and `explain` print them: every rule the
 * policy does not turn off with `false` keeps its defaults. Webhook URLs are left out (a Slack URL
 * is a secret); their hosts and formats are shown.
 */
export function alertRuleLines(alerts: AlertsDoc | undefined): string[] {
  const a = effectiveAlerts(alerts);
  const rule = <T>(name: string, r: T | false, say: (r: T) => string) =>
    `${name}: ${r === false ? 'off' : say(r)}`;
  const hooks = (a.webhooks ?? []).map((w) => `${hostOf(w.url)} (${w.format})`);
  return [
    rule(
      'errorRate',
      a.errorRate,
      (r) =>
        `a tool's calls fail upstream at ${Math.round(r.ratio * 100)}% or more, over at least ${r.minCalls} calls in ${r.windowSeconds} s`,
    ),
    rule(
      'deniedRate',
      a.deniedRate,
      (r) => `${r.count} or more denied calls by one principal in ${r.windowSeconds} s`,
    ),
    rule(
      'volume',
      a.volume,
      (r) =>
        `${r.minCalls} or more calls by one principal in ${r.windowSeconds} s, over ${r.factor}× its busiest of its last 12 windows`,
    ),
    rule(
      'adminAuthFailures',
      a.adminAuthFailures,
      (r) => `${r.count} or more refused admin tokens in ${r.windowSeconds} s`,
    ),
    rule('firstUse', a.firstUse, () => 'a principal calls a tool for the first time'),
    rule('auditFailing', a.auditFailing, () => 'the audit cannot be written'),
    rule('budgetExceeded', a.budgetExceeded, () => 'a caller hits a budget and is switched to read-only'),
    rule('taintBlocked', a.taintBlocked, () => 'the taint guard refuses or parks an outward call'),
    rule(
      'injectionSuspected',
      a.injectionSuspected,
      () => 'a response holds text that looks like instructions to the agent',
    ),
    'breakerOpen, stateDegraded: always on',
    `cooldown: ${a.cooldownSeconds} s; webhooks: ${hooks.length ? hooks.join(', ') : 'none (log and metrics only)'}`,
  ];
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid URL)';
  }
}

/** A write that is not destructive: what `treatAs: read` can turn into a read. */
function isPlainWrite(t: Catalog['tools'][number]): boolean {
  return kindOf(t) === 'write';
}
