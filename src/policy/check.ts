import picomatch from 'picomatch';
import type { Catalog } from '../model/catalog.js';
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
  const names = catalog.tools.map((t) => t.name);
  const tags = [...new Set(catalog.tools.flatMap((t) => t.source.tags))];
  const schemes = [...new Set(catalog.tools.flatMap((t) => t.auth.alternatives.flat().map((r) => r.scheme)))];
  const credNames = Object.keys(doc.credentials ?? {});

  doc.rules.forEach((rule, i) => {
    const line = policy.lineOf(['rules', i, 'match']);
    const { name, tag, path, method } = rule.match;
    if (name !== undefined) {
      const isGlob = /[*?[\]]/.test(name);
      if (!isGlob && !names.includes(name))
        problems.push({
          level: 'error',
          ...at(line),
          message: `rules[${i}]: no tool named "${name}"${didYouMean(name, names)}`,
        });
      if (
        isGlob &&
        !names.some((n) => picomatch.isMatch(n, name, { nobrace: true, noextglob: true, dot: true }))
      )
        problems.push({ level: 'warning', ...at(line), message: `rules[${i}]: "${name}" matches no tool` });
    }
    if (tag !== undefined && !tags.includes(tag))
      problems.push({
        level: 'error',
        ...at(line),
        message: `rules[${i}]: no operation has tag "${tag}"${didYouMean(tag, tags)}`,
      });
    if (path !== undefined && !/[*?[\]]/.test(path) && !catalog.tools.some((t) => t.source.path === path)) {
      const paths = [...new Set(catalog.tools.map((t) => t.source.path))];
      problems.push({
        level: 'error',
        ...at(line),
        message: `rules[${i}]: no path "${path}"${didYouMean(path, paths)}`,
      });
    }
    if (method !== undefined && !catalog.tools.some((t) => t.source.method === method))
      problems.push({
        level: 'warning',
        ...at(line),
        message: `rules[${i}]: no operation uses ${method.toUpperCase()}`,
      });
    if (rule.credential !== undefined && !credNames.includes(rule.credential))
      problems.push({
        level: 'error',
        ...at(policy.lineOf(['rules', i, 'credential'])),
        message: `rules[${i}]: no credential named "${rule.credential}" under credentials${didYouMean(rule.credential, credNames)}`,
      });
  });
  for (const [name, cred] of Object.entries(doc.credentials ?? {}))
    if (!schemes.includes(cred.scheme))
      problems.push({
        level: 'error',
        ...at(policy.lineOf(['credentials', name, 'scheme'])),
        message: `credentials.${name}: the spec has no security scheme "${cred.scheme}"${didYouMean(cred.scheme, schemes)}`,
      });
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
