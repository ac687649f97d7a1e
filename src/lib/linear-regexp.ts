import { RE2JS, RE2JSException } from 're2js';

/**
 * Regular expressions from a spec run in linear time. A `pattern` is matched against every argument
 * and every upstream string it covers; with a backtracking engine, a pattern such as `^(a|aa)+$` lets
 * one crafted 40-character string freeze the gateway. RE2 (here its pure-JavaScript port, RE2JS)
 * never backtracks: matching is linear in the input whatever the pattern. The price: lookarounds and
 * backreferences do not exist in RE2, so a pattern using them is not enforced (with a warning).
 */

/** ECMA-262 spellings RE2 writes differently: `\uXXXX` is `\x{XXXX}`. Other escapes pass through. */
export function toRe2Syntax(pattern: string): string {
  return pattern.replace(/\\(u([0-9a-fA-F]{4})|[\s\S])/g, (m, _e: string, hex: string | undefined) =>
    hex ? `\\x{${hex}}` : m,
  );
}

/** The compiled pattern, or undefined when RE2 cannot run it (lookaround, backreference, bad syntax). */
export function compileLinear(pattern: string): RE2JS | undefined {
  // Read outside the catch: in the bundle re2js is evaluated at this first read, and an engine that
  // failed to load must fail the build, not make every pattern look unenforceable (dropped: fail open).
  const engine = RE2JS;
  if (typeof engine?.compile !== 'function')
    throw new Error('the regular expression engine (re2js) did not load');
  try {
    return engine.compile(toRe2Syntax(pattern));
  } catch (e) {
    // What RE2 refuses (lookaround, backreference, bad syntax) or a pattern nested too deep to parse.
    if (e instanceof RE2JSException || e instanceof RangeError) return undefined;
    throw e;
  }
}

/** Ajv's `code.regExp` engine: every `pattern` and `patternProperties` key goes through RE2. */
export const linearRegExp = Object.assign(
  (pattern: string, _flags: string) => {
    const re = RE2JS.compile(toRe2Syntax(pattern));
    // Ajv caches compiled patterns by `toString()`: each must say which pattern it is.
    return { test: (s: string) => re.matcher(s).find(), toString: () => `/${pattern}/` };
  },
  { code: 'linearRegExp' },
);
