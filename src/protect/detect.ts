import type { DataClass } from '../model/catalog.js';

/**
 * Detection by value: finds secrets and personal data in any string, whatever field (or log line)
 * it sits in, and replaces each with a typed placeholder (`[REDACTED:aws-access-key]`).
 *
 * The patterns follow the maintained rule sets of gitleaks and secretlint (MIT), narrowed to what
 * can be matched in linear time: every pattern is a plain JavaScript regular expression without
 * nested or overlapping quantifiers (a test runs each through the `recheck` ReDoS checker), and
 * each rule first checks a cheap hint (a substring or a character class) so most strings are never
 * matched against most patterns. Checksums (Luhn for cards, mod-97 for IBANs) keep numbers that
 * merely look like cards from being redacted.
 */
export interface DetectRule {
  /** The placeholder kind: `[REDACTED:<kind>]`. */
  kind: string;
  class: DataClass;
  /** Global regex; if it has a capture group 1, only that group is replaced. */
  re: RegExp;
  /** Skip the regex unless the string contains one of these (case-sensitive) substrings. */
  hints?: readonly string[];
  /** …and also one of these (a second, independent gate). */
  also?: readonly string[];
  /** Skip unless the string has a run of digits (set once per string). */
  digits?: boolean;
  /** Extra check on the matched value (checksums). */
  valid?: (value: string) => boolean;
  /**
   * For greedy matches that may run past the real value ("DE89…3000 0", "a@b.org.0"): the length of
   * the longest valid prefix of the match, or 0. A regex replace cannot backtrack into a shorter
   * match once a check fails, so the rule finds it itself.
   */
  prefix?: (value: string) => number;
  /** A rule that scans by hand instead of by `re` (which then only names the candidates it looks at). */
  scan?: (s: string, counts: RedactionCounts | undefined) => string;
}

const upper = (hs: string[]) => [...hs, ...hs.map((h) => h.toUpperCase())];

/**
 * A candidate value: a run of token characters (base64, base64url, hex, most API key alphabets),
 * `=` padding at its end only. One character class with no nesting: linear.
 */
const CANDIDATE = /[A-Za-z0-9+/_.~-]{16,}={0,2}/g;
/** Longer runs are data (a base64 image, a hash chain), not a credential someone wrote down. */
const MAX_CANDIDATE = 256;
/** Bits of Shannon entropy per character: random base64/hex keys are above, words and names below. */
export const MIN_ENTROPY = 3.5;
/** How far before a candidate its keyword may stand (the label and the `": "` between). */
const LABEL_WINDOW = 48;
/** Names of secrets, found in a label (lower case, `-`, `.` and spaces read as `_`). */
const SECRET_KEYWORD =
  /secret|pass(?:w(?:or)?d)?|passphrase|pwd|token|api_?key|access_?key|private_?key|signing_?key|client_?key|master_?key|encryption_?key|credential|creds|auth/g;
/** A label that names one of these is about paging, tracing or retrying, not access. */
const NOT_SECRET_LABEL =
  /page|cursor|next|continuation|pagination|idempoten|trace|correlation|request_?id|csrf_?param|count|length|type|expir|usage/;
/**
 * Between the keyword and the value: the rest of the name (`_access_key`), quotes, and an assignment
 * (`:`, `=`, `=>`, `:=`, `->`, `is`), or just a space. Quotes and spaces are removed before the test.
 */
const ASSIGNMENT = /^[A-Za-z0-9_.-]{0,24}(?::|=|=>|:=|->|is|was)?$/;
/** A part of every `SECRET_KEYWORD` alternative (lower case). */
const KEYWORD_PARTS = /ecret|ass|wd|oken|key|redential|reds|uth/;
const AWS_KEY_ID = /(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}|\[REDACTED:aws-access-key\]/;

function redactGeneric(s: string, counts: RedactionCounts | undefined): string {
  if (s.length < 16) return s;
  let out = '';
  let from = 0;
  // `CANDIDATE`, matched by hand: one pass over the characters, each run looked at once.
  for (let i = 0; i < s.length; ) {
    if (!isTokenChar(s.charCodeAt(i))) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < s.length && isTokenChar(s.charCodeAt(j))) j++;
    let end = j;
    while (end < s.length && end - j < 2 && s.charCodeAt(end) === 61) end++;
    const run = end - i;
    const at = i;
    i = end;
    if (run < 16 || run > MAX_CANDIDATE) continue;
    const value = s.slice(at, end).replace(/[._~-]+$/, '');
    if (value.length < 16) continue;
    const kind = genericKind(s, at, value);
    if (!kind) continue;
    out += `${s.slice(from, at)}[REDACTED:${kind}]`;
    from = at + value.length;
    if (counts) counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return from === 0 ? s : out + s.slice(from);
}

const TOKEN_CHARS = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_.~-')
  TOKEN_CHARS[c.charCodeAt(0)] = 1;
const isTokenChar = (code: number): boolean => code < 128 && TOKEN_CHARS[code] === 1;

/** What the candidate at `at` is, from what stands around it and its own randomness; or nothing. */
function genericKind(s: string, at: number, value: string): string | undefined {
  // A bounded window each side; within one string of a joined batch, it stops at a NUL.
  const window = (from: number, to: number) => s.slice(Math.max(0, from), to).split('\0');
  if (value.length === 40 && /^[A-Za-z0-9/+]+$/.test(value) && entropy(value) >= 4) {
    const before = window(at - 2 * LABEL_WINDOW, at).pop()!;
    const after = window(at + 40, at + 40 + 2 * LABEL_WINDOW)[0]!;
    if (AWS_KEY_ID.test(before) || AWS_KEY_ID.test(after)) return 'aws-secret-key';
  }
  // Cheap first: no keyword can match unless one of these stands in the label window (every keyword
  // holds one, and the window holds the clause); most candidates in data (ids, hosts) have none.
  if (!KEYWORD_PARTS.test(s.slice(Math.max(0, at - LABEL_WINDOW), at).toLowerCase())) return undefined;
  if (!looksRandom(value)) return undefined;
  const label = window(at - LABEL_WINDOW, at).pop()!;
  // The label is the clause just before the value: a line break or a sentence's end starts another.
  const clause = label.slice(
    Math.max(label.lastIndexOf('\n'), label.lastIndexOf('. '), label.lastIndexOf(', ')) + 1,
  );
  const lower = clause.toLowerCase().replace(/[-. ]/g, '_');
  if (NOT_SECRET_LABEL.test(lower)) return undefined;
  let end = -1;
  SECRET_KEYWORD.lastIndex = 0;
  for (let k = SECRET_KEYWORD.exec(lower); k; k = SECRET_KEYWORD.exec(lower)) {
    const next = clause[k.index + k[0].length] ?? '';
    const prev = clause[k.index - 1] ?? '';
    // A whole word or the head of a compound (`secretKey`, `secret_key`), not part of a longer word;
    // short keywords also start a word or a camel-case part (`dbPass`, not `bypass` or `oauthor`).
    const short = k[0].length <= 4 && /[a-z]/.test(prev) && !/[A-Z]/.test(clause[k.index] ?? '');
    if ((!/[a-z]/.test(next) || next === 's') && !short) end = k.index + k[0].length;
  }
  if (end < 0) return undefined;
  return ASSIGNMENT.test(clause.slice(end).replace(/["'`\s]/g, '')) ? 'generic-secret' : undefined;
}

/** Random enough to be a key: high entropy, and letters mixed with digits (or both cases, longer). */
export function looksRandom(v: string): boolean {
  // An identifier made of words (`caching_sha2_password`, `read-only-access`) is a name, not a key.
  if (/^[a-z]+\d{0,2}(?:[_.-][a-z]+\d{0,2})+$/.test(v)) return false;
  const digit = /\d/.test(v);
  const lower = /[a-z]/.test(v);
  const upperCase = /[A-Z]/.test(v);
  if (!(digit && (lower || upperCase)) && !(lower && upperCase && v.length >= 20)) return false;
  return entropy(v) >= (digit ? MIN_ENTROPY : MIN_ENTROPY + 0.5);
}

/** Shannon entropy in bits per character. */
export function entropy(v: string): number {
  // Candidates are ASCII: counted in an array (a Map per candidate was most of this rule's cost).
  let ascii = true;
  for (let i = 0; i < v.length && ascii; i++) ascii = v.charCodeAt(i) < 128;
  if (ascii) {
    // Summed in order of first appearance, as the Map below iterates: the very same float.
    const counts = new Uint32Array(128);
    const order: number[] = [];
    for (let i = 0; i < v.length; i++) {
      const c = v.charCodeAt(i);
      if (counts[c]!++ === 0) order.push(c);
    }
    let h = 0;
    for (const c of order) h -= (counts[c]! / v.length) * Math.log2(counts[c]! / v.length);
    return h;
  }
  const freq = new Map<number, number>();
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    freq.set(c, (freq.get(c) ?? 0) + 1);
  }
  let h = 0;
  for (const n of freq.values()) h -= (n / v.length) * Math.log2(n / v.length);
  return h;
}

export const DETECT_RULES: readonly DetectRule[] = [
  // --- secrets (most specific first: a JWT inside "Bearer …" is named a JWT)
  {
    kind: 'private-key',
    class: 'secret',
    re: /-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY[ A-Z]{0,12}-----/g,
    hints: ['PRIVATE KEY'],
  },
  {
    kind: 'aws-access-key',
    class: 'secret',
    re: /\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b/g,
    hints: ['AKIA', 'ASIA', 'ABIA', 'ACCA', 'A3T'],
  },
  {
    kind: 'aws-secret-key',
    class: 'secret',
    re: /(?<![a-z0-9])aws[_.-]?secret(?:[_.-]?access)?(?:[_.-]?key)?["']?\s{0,3}[:=]\s{0,3}["']?([a-z0-9/+]{40})(?![a-z0-9/+])/gi,
    hints: ['aws', 'AWS', 'Aws'],
  },
  {
    kind: 'github-token',
    class: 'secret',
    re: /\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b/g,
    hints: ['gh', 'github_pat_'],
  },
  {
    kind: 'gitlab-token',
    class: 'secret',
    re: /\bgl(?:pat|ptt|dt|rt|soat|cbt|imt|agent|ffct|oas)-[A-Za-z0-9_-]{20,255}/g,
    hints: ['gl'],
  },
  { kind: 'slack-token', class: 'secret', re: /\bxox[abposre]-[A-Za-z0-9-]{10,255}/g, hints: ['xox'] },
  {
    kind: 'slack-webhook',
    class: 'secret',
    re: /https:\/\/hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9/_-]{20,255}/g,
    hints: ['hooks.slack.com'],
  },
  {
    kind: 'stripe-key',
    class: 'secret',
    re: /\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,255}\b/g,
    hints: ['_live_', '_test_'],
  },
  {
    kind: 'stripe-webhook-secret',
    class: 'secret',
    re: /\bwhsec_[A-Za-z0-9+/=]{20,255}/g,
    hints: ['whsec_'],
  },
  {
    kind: 'google-api-key',
    class: 'secret',
    re: /\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])/g,
    hints: ['AIza'],
  },
  { kind: 'google-oauth-token', class: 'secret', re: /\bya29\.[0-9A-Za-z_-]{20,2048}/g, hints: ['ya29.'] },
  {
    kind: 'openai-key',
    class: 'secret',
    // A key stands alone: not preceded by a key character either, so a long run such as
    // `sk-proj-sk-proj-…` is tried from its start only (from every `sk-` inside it, each try
    // would backtrack through up to 255 characters).
    re: /(?<![A-Za-z0-9_-])sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,255}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})(?![A-Za-z0-9_-])/g,
    hints: ['sk-'],
  },
  {
    kind: 'anthropic-key',
    class: 'secret',
    re: /\bsk-ant-[a-z]{2,10}\d{2}-[A-Za-z0-9_-]{20,255}/g,
    hints: ['sk-ant-'],
  },
  { kind: 'npm-token', class: 'secret', re: /\bnpm_[A-Za-z0-9]{36}\b/g, hints: ['npm_'] },
  {
    kind: 'mcp-warden-key',
    class: 'secret',
    re: /\bmwk_[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g,
    hints: ['mwk_'],
  },
  {
    kind: 'jwt',
    class: 'secret',
    re: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,4096}\.eyJ[A-Za-z0-9_-]{5,8192}\.[A-Za-z0-9_-]{0,2048}/g,
    hints: ['eyJ'],
  },
  {
    kind: 'authorization',
    class: 'secret',
    re: /\b(?:[Bb]earer|BEARER|[Bb]asic|BASIC|[Tt]oken|TOKEN)[ \t]{1,4}([A-Za-z0-9._~+/=-]{12,4096})/g,
    hints: upper(['earer', 'asic', 'oken']),
    // Credentials carry digits or symbols; prose after "Basic" or "Token" does not.
    valid: (v) => /[\d+/=._~-]/.test(v),
  },
  {
    kind: 'url-password',
    class: 'secret',
    re: /(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]{1,20}:\/\/[^\s\0/:@"'<>]{1,256}:([^\s\0/@"'<>]{1,256})@/g,
    hints: ['://'],
  },
  {
    kind: 'password',
    class: 'secret',
    re: /(?:[Pp]ass(?:word|wd)?|PASS(?:WORD|WD)?|[Pp]wd|PWD|[Ss]ecret|SECRET|[Aa]pi[_-]?[Kk]ey|API[_-]?KEY|[Aa]ccess[_-]?[Tt]oken|ACCESS[_-]?TOKEN|[Cc]lient[_-]?[Ss]ecret|CLIENT[_-]?SECRET)\\?["']?\s{0,3}[:=]\s{0,3}\\?["']?([^\s\0"'\\;,&]{6,256})/g,
    hints: upper(['ass', 'wd', 'ecret', 'key', 'Key', 'oken']),
    also: [':', '='],
  },
  {
    // Secrets of no known format: a high-entropy token right after a secret keyword, or a 40-character
    // AWS secret access key beside its access key id (as gitleaks' generic rule and detect-secrets do).
    kind: 'generic-secret',
    class: 'secret',
    re: CANDIDATE,
    // A keyword or a key id must be there (the keywords' common spellings; mixed case is missed).
    hints: [
      ...upper(['ecret', 'ass', 'wd', 'oken', 'key', 'redential', 'reds', 'uth']),
      'Key',
      'AKIA',
      'ASIA',
      'ABIA',
      'ACCA',
      'A3T',
      'aws-access-key',
    ],
    scan: redactGeneric,
  },
  // --- financial
  {
    kind: 'card-number',
    class: 'financial',
    // Not part of a longer run of digits. A decimal point after it does not save it: safety first
    // (only strings are scanned; JSON numbers are left alone), and Luhn keeps false hits rare.
    re: /(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)/g,
    digits: true,
    // Issuers' numbers start with 2–6 (Mastercard 2/5, Amex/Diners/JCB 3, Visa 4, Discover/UnionPay 6):
    // without that, one in ten 13-digit epoch-millisecond timestamps passed as a card.
    prefix: (v) => longestPrefix(v, /\d/, (p) => /^[2-6]/.test(p) && luhn(p.replace(/[ -]/g, ''))),
  },
  {
    kind: 'iban',
    class: 'financial',
    re: /\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b/g,
    digits: true,
    prefix: (v) => longestPrefix(v, /[A-Z0-9]/, (p) => ibanValid(p.replace(/ /g, ''))),
  },
  // --- personal data
  { kind: 'us-ssn', class: 'pii', re: /\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b/g, digits: true },
  {
    kind: 'email',
    class: 'pii',
    re: /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}(?![A-Za-z0-9-])/g,
    hints: ['@'],
    // The last label is the top-level domain: letters only ("a@b.org.0" is "a@b.org" and ".0").
    prefix: (v) => {
      for (let end = v.length; end > 0; end = v.lastIndexOf('.', end - 1)) {
        const head = v.slice(0, end);
        if (/@[^.]+(?:\.[^.]+)*\.[A-Za-z]{2,24}$/.test(head)) return end;
      }
      return 0;
    },
  },
  {
    kind: 'phone',
    class: 'pii',
    re: /(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]\d{2,4}){2,4}|(?<!\d)\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|(?<![\d-])\d{3}[.-]\d{3}[.-]\d{4})(?![\d-])/g,
    digits: true,
  },
];

/** Every digit rule needs ten or more digits and separators in a row: most strings have none. */
const DIGIT_RUN = /\d[\d ().+-]{8,}\d/;

/**
 * A character's bit (0–63) for a quick test that a string lacks a hint: a–z 0–25, A–Z 26–51,
 * 0–9 52–61, any other ASCII character 62, anything else 63. A hint can only be in a string that
 * has every bit of the hint's characters.
 */
const CHAR_BIT = new Uint8Array(128).fill(62);
for (let c = 0; c < 26; c++) {
  CHAR_BIT[97 + c] = c;
  CHAR_BIT[65 + c] = 26 + c;
}
for (let d = 0; d < 10; d++) CHAR_BIT[48 + d] = 52 + d;
/** The digits' bits in the high word. */
const DIGIT_BITS = 0x3ff << 20;
/** Strings up to this long get their characters summed before the hints are searched. */
const SHORT = 512;
const STRING_BITS = new Int32Array(2);

/** ORs the bits of `s`'s characters into `into[at]` (bits 0–31) and `into[at + 1]` (32–63). */
function charBits(s: string, into: Int32Array, at: number): void {
  let lo = into[at]!;
  let hi = into[at + 1]!;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const b = c < 128 ? CHAR_BIT[c]! : 63;
    if (b < 32) lo |= 1 << b;
    else hi |= 1 << (b - 32);
  }
  into[at] = lo;
  into[at + 1] = hi;
}

export type RedactionCounts = Record<string, number>;

export interface DetectOptions {
  /** Classes whose values are left alone (a tool whose policy allows, say, PII). */
  allow?: ReadonlySet<DataClass>;
}

/**
 * Scans and redacts. `redact` returns the string itself when nothing was found (no copy), and adds
 * to `counts` (by kind) what it replaced.
 */
export class Detector {
  private readonly rules: readonly DetectRule[];

  private readonly hints: string[] = [];
  private readonly hintCount: number;
  /** Per hint (same index as `hints`): the character bits of `charBits`, low and high word. */
  private readonly hintBits: Int32Array;
  /** Per rule (same index as `rules`): the ids of its `hints`, and of its `also` hints. */
  private readonly anyIds: ReadonlyArray<readonly number[]>;
  private readonly alsoIds: ReadonlyArray<readonly number[]>;
  /** `redact`'s memo of hints looked for, reused (it is not re-entered): no array per string. */
  private readonly found: Uint8Array;

  constructor(options: DetectOptions = {}, rules: readonly DetectRule[] = DETECT_RULES) {
    this.rules = options.allow?.size ? rules.filter((r) => !options.allow!.has(r.class)) : rules;
    const id = (h: string) => {
      let i = this.hints.indexOf(h);
      if (i < 0) i = this.hints.push(h) - 1;
      return i;
    };
    this.anyIds = this.rules.map((r) => (r.hints ?? []).map(id));
    this.alsoIds = this.rules.map((r) => (r.also ?? []).map(id));
    this.hintCount = this.hints.length;
    this.hintBits = new Int32Array(2 * this.hintCount);
    for (let i = 0; i < this.hintCount; i++) charBits(this.hints[i]!, this.hintBits, 2 * i);
    this.found = new Uint8Array(this.hintCount);
  }

  /**
   * Whether `s` holds one of the hints `ids` names; `found` remembers each hint looked for (0: not
   * yet, 1: absent, 2: present). `lo`/`hi`: the character bits of a short `s` (a hint with a
   * character `s` lacks is absent without a search), or -1/-1 (every hint is searched).
   */
  private hasAny(s: string, ids: readonly number[], found: Uint8Array, lo: number, hi: number): boolean {
    const bits = this.hintBits;
    for (let j = 0; j < ids.length; j++) {
      const i = ids[j]!;
      let f = found[i]!;
      if (f === 0) {
        f =
          (bits[2 * i]! & ~lo) === 0 && (bits[2 * i + 1]! & ~hi) === 0 && s.includes(this.hints[i]!) ? 2 : 1;
        found[i] = f;
      }
      if (f === 2) return true;
    }
    return false;
  }

  /**
   * Redacts many strings in one pass: joined by NUL (which no pattern crosses), scanned once, split
   * back. Far cheaper than one scan per string for the many short strings of a JSON response.
   */
  redactAll(strings: readonly string[], counts?: RedactionCounts, joined?: string): string[] {
    if (strings.length < 2) return strings.map((x) => this.redact(x, counts));
    // `joined`: the caller's own `strings.join('\0')`, when it has it already.
    joined ??= strings.join('\0');
    const local: RedactionCounts = {};
    const out = this.redact(joined, local);
    if (out === joined) return strings as string[];
    const parts = out.split('\0');
    // No pattern matches or removes a NUL, so a count mismatch means a string held a NUL of its own:
    // then each string is scanned alone.
    if (parts.length !== strings.length) return strings.map((x) => this.redact(x, counts));
    if (counts) for (const [k, n] of Object.entries(local)) counts[k] = (counts[k] ?? 0) + n;
    return parts;
  }

  redact(s: string, counts?: RedactionCounts): string {
    if (s.length < 6) return s;
    // Each hint is looked for once per string (a native substring search; measured faster here than
    // one alternation regex over all hints), and only for rules still in play. A short string's
    // characters are summed up first (one pass): most hints then need no search at all.
    const found = this.found;
    found.fill(0);
    let lo = -1;
    let hi = -1;
    if (s.length <= SHORT) {
      STRING_BITS[0] = 0;
      STRING_BITS[1] = 0;
      charBits(s, STRING_BITS, 0);
      lo = STRING_BITS[0]!;
      hi = STRING_BITS[1]!;
    }
    // Without a digit, `DIGIT_RUN` cannot match.
    let digits: boolean | undefined = (hi & DIGIT_BITS) === 0 ? false : undefined;
    let out = s;
    const { rules, anyIds, alsoIds } = this;
    for (let r = 0; r < rules.length; r++) {
      const rule = rules[r]!;
      const any = anyIds[r]!;
      if (any.length && !this.hasAny(s, any, found, lo, hi)) continue;
      const also = alsoIds[r]!;
      if (also.length && !this.hasAny(s, also, found, lo, hi)) continue;
      if (rule.digits) {
        digits ??= DIGIT_RUN.test(s);
        if (!digits) continue;
      }
      out = rule.scan
        ? rule.scan(out, counts)
        : rule.kind === 'private-key'
          ? redactPem(out, counts)
          : rule.kind === 'email'
            ? redactEmails(rule, out, counts)
            : apply(rule, out, counts);
    }
    return out;
  }
}

function apply(rule: DetectRule, s: string, counts: RedactionCounts | undefined): string {
  rule.re.lastIndex = 0;
  if (!rule.re.test(s)) return s;
  rule.re.lastIndex = 0;
  const placeholder = `[REDACTED:${rule.kind}]`;
  return s.replace(rule.re, (match: string, group: unknown) => {
    const value = typeof group === 'string' ? group : match;
    // A placeholder is not a secret: redacting twice (an error excerpt, then the runner) finds nothing new.
    if (value.startsWith('[REDACTED:')) return match;
    if (rule.valid && !rule.valid(value)) return match;
    if (rule.prefix) {
      const n = rule.prefix(match);
      if (n === 0) return match;
      if (counts) counts[rule.kind] = (counts[rule.kind] ?? 0) + 1;
      return `${placeholder}${match.slice(n)}`;
    }
    if (counts) counts[rule.kind] = (counts[rule.kind] ?? 0) + 1;
    if (typeof group !== 'string') return placeholder;
    // Keep what names the secret ("password=", "Bearer "), replace the value only.
    const at = match.lastIndexOf(group);
    return `${match.slice(0, at)}${placeholder}${match.slice(at + group.length)}`;
  });
}

const LOCAL = new Uint8Array(128);
for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-')
  LOCAL[c.charCodeAt(0)] = 1;
const DOMAIN = /[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}(?![A-Za-z0-9-])/y;

/**
 * Emails, found from each `@` outwards (the same match as the rule's pattern): a regex that starts
 * with a character class is tried at every position of the text, which cost more than all other
 * rules together on PII-heavy responses.
 */
function redactEmails(rule: DetectRule, s: string, counts: RedactionCounts | undefined): string {
  let at = s.indexOf('@');
  if (at < 0) return s;
  let out = '';
  let from = 0;
  while (at >= 0) {
    let start = at;
    while (start > 0 && at - start < 64 && LOCAL[s.charCodeAt(start - 1)] === 1) start--;
    // A local part longer than 64 characters is not an address (as the pattern's lookbehind says).
    const tooLong = start > 0 && LOCAL[s.charCodeAt(start - 1)] === 1;
    let next = at + 1;
    if (start < at && start >= from && !tooLong) {
      DOMAIN.lastIndex = at + 1;
      const m = DOMAIN.exec(s);
      if (m) {
        const candidate = s.slice(start, at + 1 + m[0].length);
        const n = rule.prefix ? rule.prefix(candidate) : candidate.length;
        if (n > 0) {
          out += `${s.slice(from, start)}[REDACTED:email]`;
          from = start + n;
          next = from;
          if (counts) counts.email = (counts.email ?? 0) + 1;
        }
      }
    }
    at = s.indexOf('@', next);
  }
  return from === 0 ? s : out + s.slice(from);
}

/**
 * A PEM private key runs from its BEGIN line to its END line: found with `indexOf`, not a lazy regex
 * (which would rescan for every BEGIN). With no END line, everything after BEGIN goes: failing safe.
 */
function redactPem(s: string, counts: RedactionCounts | undefined): string {
  const re = /-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY[ A-Z]{0,12}-----/g;
  let out = '';
  let from = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    // Within one string of a joined batch: the key ends at END, or at the string's end.
    const nul = s.indexOf('\0', m.index);
    const limit = nul >= 0 ? nul : s.length;
    let end = s.indexOf('-----END', m.index + m[0].length);
    if (end >= limit) end = -1;
    let stop = limit;
    if (end >= 0) {
      const close = s.indexOf('-----', end + 8);
      stop = close >= 0 && close < limit ? close + 5 : limit;
    }
    out += `${s.slice(from, m.index)}[REDACTED:private-key]`;
    if (counts) counts['private-key'] = (counts['private-key'] ?? 0) + 1;
    from = stop;
    re.lastIndex = stop;
  }
  return from === 0 ? s : out + s.slice(from);
}

/** The longest prefix that ends in a `unit` character and passes `ok` (bounded: at most 40 tries). */
function longestPrefix(v: string, unit: RegExp, ok: (p: string) => boolean): number {
  let tries = 0;
  for (let end = v.length; end > 0 && tries < 40; end--) {
    if (!unit.test(v[end - 1]!)) continue;
    tries++;
    if (ok(v.slice(0, end))) return end;
  }
  return 0;
}

export function luhn(digits: string): boolean {
  if (digits.length < 13 || digits.length > 19) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  // All-same digits (0000…) pass Luhn but are placeholders, not cards.
  return sum % 10 === 0 && !/^(\d)\1+$/.test(digits);
}

export function ibanValid(iban: string): boolean {
  if (iban.length < 15 || iban.length > 34) return false;
  const moved = iban.slice(4) + iban.slice(0, 4);
  let rem = 0;
  for (const ch of moved) {
    const code = ch.charCodeAt(0);
    const v = code >= 65 ? code - 55 : code - 48;
    rem = v > 9 ? (rem * 100 + v) % 97 : (rem * 10 + v) % 97;
  }
  return rem === 1;
}

/** Adds counts (in place). */
export function addCounts(into: RedactionCounts, from: RedactionCounts): void {
  for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n;
}

const DETECTORS = new Map<string, Detector>();
/** The detector for a tool: every class except those its policy allows. */
export function detectorFor(allow: readonly DataClass[]): Detector {
  const key = [...allow].sort().join(',');
  let d = DETECTORS.get(key);
  if (!d) {
    d = new Detector({ allow: new Set(allow) });
    DETECTORS.set(key, d);
  }
  return d;
}
