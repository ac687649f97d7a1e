/**
 * Text from a spec lands in a model's context, so it is treated as hostile: terminal escapes,
 * control characters and invisible code points (zero-width, bidi overrides, Unicode tags — the
 * usual carriers of hidden instructions) are removed before anything else sees it.
 */

// ANSI/VT escape sequences: CSI (ESC [ … final), OSC (ESC ] … BEL|ST), and two-byte ESC forms.
const ANSI =
  /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]|\u009b[0-?]*[ -/]*[@-~]/g;
// C0 controls except \t \n, DEL, C1 controls.
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
// Zero-width, joiners, bidi embeddings/overrides/isolates, word joiner & invisible operators,
// BOM, soft hyphen, Mongolian vowel separator, interlinear annotations, variation selectors,
// and the Unicode tag block.
// Each code point is matched on its own, on purpose.
const INVISIBLE =
  // biome-ignore lint/suspicious/noMisleadingCharacterClass: combining marks are matched one by one on purpose.
  /[\u00ad\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\u{e0000}-\u{e007f}\u{e0100}-\u{e01ef}]/gu;

// Anything but printable ASCII, tab and newline: every character the three patterns remove is one.
const NOT_PLAIN = /[^\t\n\u0020-\u007e]/;

export function stripUnsafeText(input: string): string {
  // Most spec text is plain ASCII: one scan finds nothing to remove instead of three (one of them
  // a Unicode-mode pattern), and the text comes back as it is.
  if (!NOT_PLAIN.test(input)) return input;
  return input.replace(ANSI, '').replace(CONTROL, '').replace(INVISIBLE, '');
}

/** Sanitises, normalises line endings and collapses runs of blank lines; caps at `max` characters. */
export function cleanDescription(input: string | undefined, max: number): string {
  if (!input) return '';
  let s = stripUnsafeText(htmlToText(input.replace(/\r\n?/g, '\n')))
    .replace(/[ \t]+\n/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
  if (s.length > max) {
    // Cut on a code point boundary, never in the middle of a surrogate pair.
    s = `${Array.from(s.slice(0, max))
      .join('')
      .replace(/[\ud800-\udbff]$/, '')
      .trimEnd()}…`;
  }
  return s;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/**
 * Descriptions written as HTML (Stripe's `<p>Creates a new <code>tax_id</code>…</p>`) cost a model
 * tokens and say nothing more: tags become text (block ends become line breaks), entities become
 * characters. Only the tag shapes of real markup are touched, so `a < b` or `List<String>` stay.
 */
export function htmlToText(s: string): string {
  if (!s.includes('<') && !s.includes('&')) return s;
  return s
    .replace(/<(br|\/p|\/li|\/div|\/h[1-6])\s*\/?>/gi, '\n')
    .replace(/<li\b[^<>]{0,200}>/gi, '\n- ')
    .replace(
      /<\/?(p|a|code|b|i|em|strong|ul|ol|div|span|h[1-6]|pre|small|sup|sub|table|tr|td|th)\b[^<>]{0,500}>/gi,
      '',
    )
    .replace(/&(amp|lt|gt|quot|apos|nbsp);/g, (_, e: string) => ENTITIES[e]!)
    .replace(/&#(\d{1,6});/g, (m, n: string) => {
      const c = Number(n);
      return c > 0 && c < 0x110000 ? String.fromCodePoint(c) : m;
    });
}

/** A single-line label (summary, title). */
export function cleanLine(input: string | undefined, max: number): string {
  return cleanDescription(input, max).replace(/\s+/g, ' ');
}

/**
 * Splits identifiers into lower-case words: `listAPIKeys` → list, api, keys; `ssh_signing-keys` →
 * ssh, signing, keys. Used by every name-based rule, so rules match words, never substrings.
 */
export function words(input: string): string[] {
  return asciiWords(input) ?? wordsByPattern(input);
}

/** `words` as three regular-expression passes: the definition (and the path for non-ASCII text). */
export function wordsByPattern(input: string): string[] {
  return input
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w.length > 0);
}

/**
 * `words` in one pass over ASCII text, without the intermediate strings (undefined for any other:
 * lower-casing some non-ASCII letters gives ASCII ones, which the patterns then split on). Word
 * ends are where the patterns put them: between a lower-case letter or digit and a capital, and
 * before the last capital of a run of two or more followed by a lower-case letter (`APIKeys`).
 */
function asciiWords(input: string): string[] | undefined {
  const out: string[] = [];
  const n = input.length;
  let start = -1;
  for (let i = 0; i < n; i++) {
    const c = input.charCodeAt(i);
    if (c > 0x7f) return undefined;
    const upper = c >= 0x41 && c <= 0x5a;
    const alnum = upper || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39);
    if (!alnum) {
      if (start >= 0) out.push(input.slice(start, i).toLowerCase());
      start = -1;
      continue;
    }
    if (start < 0) {
      start = i;
      continue;
    }
    if (!upper) continue;
    const prev = input.charCodeAt(i - 1);
    const prevUpper = prev >= 0x41 && prev <= 0x5a;
    const next = i + 1 < n ? input.charCodeAt(i + 1) : 0;
    // A capital after a lower-case letter or digit, or the last capital of a run before a lower-case letter.
    if (!prevUpper || (next >= 0x61 && next <= 0x7a)) {
      out.push(input.slice(start, i).toLowerCase());
      start = i;
    }
  }
  if (start >= 0) out.push(input.slice(start).toLowerCase());
  return out;
}
