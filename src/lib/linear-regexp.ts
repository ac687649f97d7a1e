import { RE2JS, RE2JSException } from 're2js';

/**
 * Regular expressions from a spec run in linear time. A `pattern` is matched against every argument
 * and every upstream string it covers; with a backtracking engine, a pattern such as `^(a|aa)+$` lets
 * one crafted 40-character string freeze the gateway. RE2 (here its pure-JavaScript port, RE2JS)
 * never backtracks: matching is linear in the input whatever the pattern. The price: lookarounds and
 * backreferences do not exist in RE2, so a pattern using them is not enforced (with a warning).
 */

/**
 * What `\s` means in a JSON Schema `pattern` (ECMA-262 WhiteSpace and LineTerminator), as RE2 class
 * items: RE2's own `\s` is ASCII only, so `^\S+$` would let a no-break space or U+2028 through.
 */
const JS_SPACE =
  '\\t\\n\\x{0B}\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}';
/** ECMA-262's `.`: anything but a line terminator (RE2's excludes only `\n`). */
const JS_DOT = '[^\\n\\r\\x{2028}\\x{2029}]';

/**
 * The pattern in RE2's syntax with ECMA-262's meaning (what JSON Schema says a `pattern` means), or
 * undefined when that cannot be said for sure: the pattern is then not enforced, with a warning, like
 * any pattern RE2 refuses. Only a pattern ECMA-262 accepts is translated (Unicode mode, or failing
 * that the web's legacy mode, whose extra spellings are identity escapes and literal braces). Written
 * out: `\uXXXX` (a surrogate pair as its one code point), `\u{…}`, `\xHH` and `\0` as `\x{…}`; `.`,
 * `\s` and `\S` as the classes ECMA-262 means; counts without leading zeros (RE2 reads `{04}` as
 * text); `[` and `^` inside a class escaped (RE2 reads `[:alpha:]` as a POSIX class). Refused: any
 * escape the two engines may read differently (a letter or digit escape not listed here, `\b` in a
 * class, a lone surrogate), `\S` with anything else in a class, a class escape at a range's end, and
 * `[]` / `[^]` (ECMA-262's empty and any-character classes; RE2 reads the `]` as a member).
 */
export function toRe2Syntax(source: string): string | undefined {
  const pattern = inUnicodeMode(source);
  if (pattern === undefined) return undefined;
  let out = '';
  // Inside a class: where it starts in `out` and in the pattern, whether negated, its items, `\S`.
  let cls: { start: number; at: number; negated: boolean; items: number; nonSpace: boolean } | undefined;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const n = pattern[i + 1];
      if (n === undefined) return undefined;
      let piece: string;
      let len = 2;
      if (n === 'u') {
        const u = unicodeEscape(pattern, i);
        if (!u) return undefined;
        piece = `\\x{${u.code.toString(16)}}`;
        len = u.length;
      } else if (n === 'x') {
        const hex = /^[0-9a-fA-F]{2}/.exec(pattern.slice(i + 2, i + 4));
        if (!hex) return undefined;
        piece = `\\x{${hex[0]}}`;
        len = 4;
      } else if (n === '0') {
        if (/[0-9]/.test(pattern[i + 2] ?? '')) return undefined;
        piece = '\\x{0}';
      } else if (/[dDwWsS]/.test(n)) {
        // `[a-\d]`, `[\s-z]`: ECMA-262 (legacy mode) reads a literal `-`, RE2 a range or an error.
        if (cls && pattern[i - 1] === '-' && i - 1 > cls.at) return undefined;
        if (cls && pattern[i + 2] === '-' && pattern[i + 3] !== ']') return undefined;
        if (n === 's') piece = cls ? JS_SPACE : `[${JS_SPACE}]`;
        else if (n === 'S') {
          if (cls) {
            cls.nonSpace = true;
            i++;
            continue;
          }
          piece = `[^${JS_SPACE}]`;
        } else piece = c + n;
      } else if (/[tnrfv]/.test(n)) piece = c + n;
      else if (n === 'b' || n === 'B') {
        if (cls) return undefined;
        piece = c + n;
      } else if (/[ -/:-@[-`{-~]/.test(n)) piece = c + n;
      else return undefined;
      out += piece;
      if (cls) cls.items++;
      i += len - 1;
      continue;
    }
    if (cls) {
      if (c === ']') {
        const items = out.slice(cls.start);
        out = out.slice(0, cls.start);
        if (cls.nonSpace) {
          // `[\S]` alone; with anything else its other items would have to be re-read in a new class.
          if (cls.negated || cls.items > 0) return undefined;
          out += `[^${JS_SPACE}]`;
        } else out += `[${cls.negated ? '^' : ''}${items}]`;
        cls = undefined;
        continue;
      }
      out += c === '[' || c === '^' ? `\\${c}` : c;
      cls.items++;
      continue;
    }
    if (c === '[') {
      const negated = pattern[i + 1] === '^';
      if (negated) i++;
      if (pattern[i + 1] === ']') return undefined;
      cls = { start: out.length, at: i + 1, negated, items: 0, nonSpace: false };
      continue;
    }
    if (c === '.') {
      out += JS_DOT;
      continue;
    }
    if (c === '{') {
      const count = /^\{(\d+)(?:(,)(\d*))?\}/.exec(pattern.slice(i));
      if (count) {
        const n = (d: string) => d.replace(/^0+(?=\d)/, '');
        out += `{${n(count[1]!)}${count[2] ?? ''}${count[3] ? n(count[3]) : ''}}`;
        i += count[0].length - 1;
        continue;
      }
    }
    out += c;
  }
  return cls ? undefined : out;
}

/**
 * The pattern as ECMA-262's Unicode mode (Ajv's) reads it, or undefined if it does not. A pattern only
 * the web's legacy mode takes is taken when the difference is escaped punctuation that mode reads as
 * itself (`^[a-z0-9_\-\:]+$`, `\-` outside a class): written unescaped, it means the same in both.
 */
function inUnicodeMode(p: string): string | undefined {
  if (isPattern(p, 'u')) return p;
  if (!isPattern(p, '')) return undefined;
  let out = '';
  let inClass = false;
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '\\' && i + 1 < p.length) {
      const n = p[i + 1]!;
      out += LEGACY_IDENTITY.test(n) || (n === '-' && !inClass) ? n : c + n;
      i++;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === ']') inClass = false;
    out += c;
  }
  return isPattern(out, 'u') ? out : undefined;
}

/** ASCII punctuation (and space) the Unicode mode refuses to see escaped and the legacy mode reads as itself. */
const LEGACY_IDENTITY = /[ !"#%&',:;<=>@_`~]/;

function isPattern(p: string, flags: string): boolean {
  try {
    new RegExp(p, flags);
    return true;
  } catch {
    return false;
  }
}

/** `\uXXXX` (with a following low surrogate: the pair's code point) or `\u{…}` at `i`; undefined if lone or bad. */
function unicodeEscape(p: string, i: number): { code: number; length: number } | undefined {
  const braced = /^\{([0-9a-fA-F]{1,6})\}/.exec(p.slice(i + 2, i + 10));
  if (braced) {
    const code = Number.parseInt(braced[1]!, 16);
    return code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)
      ? undefined
      : { code, length: 2 + braced[0].length };
  }
  const four = /^[0-9a-fA-F]{4}/.exec(p.slice(i + 2, i + 6));
  if (!four) return undefined;
  const code = Number.parseInt(four[0], 16);
  if (code < 0xd800 || code > 0xdfff) return { code, length: 6 };
  const low = /^\\u([dD][c-fC-F][0-9a-fA-F]{2})/.exec(p.slice(i + 6, i + 12));
  if (code > 0xdbff || !low) return undefined;
  return { code: 0x10000 + ((code - 0xd800) << 10) + (Number.parseInt(low[1]!, 16) - 0xdc00), length: 12 };
}

/** The compiled pattern, or undefined when RE2 cannot run it (lookaround, backreference, bad syntax). */
export function compileLinear(pattern: string): RE2JS | undefined {
  // Read outside the catch: in the bundle re2js is evaluated at this first read, and an engine that
  // failed to load must fail the build, not make every pattern look unenforceable (dropped: fail open).
  const engine = RE2JS;
  if (typeof engine?.compile !== 'function')
    throw new Error('the regular expression engine (re2js) did not load');
  const re2 = toRe2Syntax(pattern);
  if (re2 === undefined) return undefined;
  try {
    return engine.compile(re2);
  } catch (e) {
    // What RE2 refuses (lookaround, backreference, bad syntax) or a pattern nested too deep to parse.
    if (e instanceof RE2JSException || e instanceof RangeError) return undefined;
    throw e;
  }
}

/**
 * Whether RE2 runs `pattern`: `compileLinear` succeeds. A pattern within a small subset of the
 * syntax both engines read alike is answered without compiling it: RE2JS's compile decodes its
 * Unicode case tables at the first literal character and compiles each pattern in full: the
 * verdicts of Stripe's 60 patterns took 25–40 ms of CPU in a fresh process (GitHub's 5: 13–23 ms),
 * against 1–2 ms from the subset. Anything outside the subset is compiled, as before. The subset
 * is narrower than RE2's, never wider (test/lib/linear-regexp.test.ts checks it against RE2 on
 * generated patterns), so no pattern RE2 refuses is ever taken for one it runs. The engine is still
 * read first: one that failed to load fails the catalogue, as `compileLinear` does.
 */
export function runsLinear(pattern: string): boolean {
  const engine = RE2JS;
  if (typeof engine?.compile !== 'function')
    throw new Error('the regular expression engine (re2js) did not load');
  return inPlainSubset(pattern) || compileLinear(pattern) !== undefined;
}

/** Characters that stand for themselves outside a class, in both engines (ASCII, no metacharacter). */
const PLAIN = /[ !"#%&',\-/:;<=>@_`~0-9A-Za-z]/;
/**
 * Escapes both engines read alike: the Perl classes, and any ASCII punctuation or space (`\.`, `\/`,
 * `\:`…), which RE2 takes as itself (its `parseEscape`: any ASCII character but a letter or digit).
 */
const CLASS_ESCAPE = /[dDsSwW]/;
const PUNCT_ESCAPE = /[ -/:-@[-`{-~]/;
/**
 * Most a counted repetition of the subset may say, and the most all of them may spell out: far
 * below RE2's own bounds (1,000 each; an expression size of 1.4 M), so that RE2 compiles them
 * quickly and without deep recursion (`a{0,1000}` nests a thousand optional copies).
 */
const MAX_COUNT = 100;
const MAX_WEIGHT = 10_000;
const MAX_NESTING = 20;

/**
 * The subset `runsLinear` answers without compiling: literals (PLAIN), `.`, `^`, `$`, `\b`, `\B`,
 * the escapes above, classes of literals, ranges and those escapes (`-` only first or last),
 * capturing and `(?:` groups, `|`, and `* + ? {n} {n,} {n,m}` (m ≤ 100, lazy or not) after an
 * atom, a counted one never inside another. No lookaround, backreference, flag group, named group,
 * Unicode class or escape, octal or hex escape, POSIX class, or character outside printable ASCII.
 */
export function inPlainSubset(p: string): boolean {
  if (p.length > 1000) return false;
  let i = 0;
  // Per open group: whether it holds a counted repetition, and where it started (its weight).
  const groups: Array<{ counted: boolean; start: number }> = [];
  let weight = 0;
  // The last atom: whether it may take a quantifier, and whether it holds a counted repetition.
  let quantifiable = false;
  let atomCounted = false;
  let atomStart = 0;
  while (i < p.length) {
    const c = p[i]!;
    if (c === '(') {
      if (groups.length >= MAX_NESTING) return false;
      if (p[i + 1] === '?') {
        if (p[i + 2] !== ':') return false;
        groups.push({ counted: false, start: i });
        i += 3;
      } else {
        groups.push({ counted: false, start: i });
        i++;
      }
      quantifiable = false;
      continue;
    }
    if (c === ')') {
      const g = groups.pop();
      if (!g) return false;
      // A group holding a counted repetition makes the group around it hold one too.
      const outer = groups[groups.length - 1];
      if (g.counted && outer) outer.counted = true;
      quantifiable = true;
      atomCounted = g.counted;
      atomStart = g.start;
      i++;
      continue;
    }
    if (c === '|') {
      quantifiable = false;
      i++;
      continue;
    }
    if (c === '*' || c === '+' || c === '?' || c === '{') {
      if (!quantifiable) return false;
      let counted = false;
      if (c === '{') {
        const m = /^\{(\d{1,4})(,(\d{1,4})?)?\}/.exec(p.slice(i, i + 11));
        if (!m) return false;
        const min = Number(m[1]);
        const max = m[3] !== undefined ? Number(m[3]) : min;
        if (min > MAX_COUNT || max > MAX_COUNT || min > max) return false;
        // A counted repetition inside another is what RE2 bounds by their product: left to RE2.
        if (atomCounted) return false;
        counted = true;
        weight += Math.max(min, max) * (i - atomStart);
        if (weight > MAX_WEIGHT) return false;
        i += m[0].length;
      } else i++;
      if (p[i] === '?') i++;
      if (counted) {
        const g = groups[groups.length - 1];
        if (g) g.counted = true;
      }
      // No quantifier right after another (`a**`, `a{2}{3}`): both engines refuse or differ.
      quantifiable = false;
      continue;
    }
    atomStart = i;
    atomCounted = false;
    if (c === '^' || c === '$') {
      quantifiable = false;
      i++;
      continue;
    }
    if (c === '.') {
      quantifiable = true;
      i++;
      continue;
    }
    if (c === '\\') {
      const e = p[i + 1];
      if (e === undefined) return false;
      if (e === 'b' || e === 'B') quantifiable = false;
      else if (CLASS_ESCAPE.test(e) || PUNCT_ESCAPE.test(e)) quantifiable = true;
      else return false;
      i += 2;
      continue;
    }
    if (c === '[') {
      const end = classEnd(p, i);
      if (end < 0) return false;
      quantifiable = true;
      i = end;
      continue;
    }
    if (!PLAIN.test(c)) return false;
    quantifiable = true;
    i++;
  }
  // The same written out for RE2 (`[^\S]` is in the subset's syntax but not sayable there).
  return groups.length === 0 && toRe2Syntax(p) !== undefined;
}

/** Where a class of the subset that opens at `start` ends (past its `]`), or -1 outside the subset. */
function classEnd(p: string, start: number): number {
  let i = start + 1;
  if (p[i] === '^') i++;
  const first = i;
  let items = 0;
  while (i < p.length) {
    const c = p[i]!;
    if (c === ']') return items > 0 ? i + 1 : -1;
    if (c === '-') {
      // Literal only as the first or the last item.
      if (i !== first && p[i + 1] !== ']') return -1;
      items++;
      i++;
      continue;
    }
    if (c === '\\') {
      const e = p[i + 1];
      if (e === undefined || !(CLASS_ESCAPE.test(e) || PUNCT_ESCAPE.test(e))) return -1;
      i += 2;
      items++;
      // An escape is never a range's end: `[\d-z]` reads differently in the two engines.
      if (p[i] === '-' && p[i + 1] !== ']') return -1;
      continue;
    }
    if (c === '[' || !isPrintableAscii(c)) return -1;
    if (p[i + 1] === '-' && p[i + 2] !== undefined && p[i + 2] !== ']') {
      const hi = p[i + 2]!;
      if (hi === '\\' || hi === '[' || hi === '-' || !isPrintableAscii(hi) || hi < c) return -1;
      i += 3;
    } else i++;
    items++;
  }
  return -1;
}

function isPrintableAscii(c: string): boolean {
  const code = c.charCodeAt(0);
  return code >= 0x20 && code <= 0x7e;
}

/** Ajv's `code.regExp` engine: every `pattern` and `patternProperties` key goes through RE2. */
export const linearRegExp = Object.assign(
  (pattern: string, _flags: string) => {
    // Ajv sees only patterns `runsLinear` took (src/catalog/schema.ts); anything else fails here, closed.
    const re = compileLinear(pattern);
    if (!re) throw new Error(`pattern ${JSON.stringify(pattern.slice(0, 200))} cannot be enforced`);
    // Ajv caches compiled patterns by `toString()`: each must say which pattern it is.
    return { test: (s: string) => re.matcher(s).find(), toString: () => `/${pattern}/` };
  },
  { code: 'linearRegExp' },
);
