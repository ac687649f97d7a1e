const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

/** Longest key worth reading (`id`, `method`; escapes included) and longest `id` value kept. */
const MAX_KEY_BYTES = 32;
const MAX_ID_BYTES = 1024;

/**
 * Reads the top-level `id` and whether there is a top-level `method` from a JSON-RPC frame fed to it
 * in pieces, without keeping the frame: an over-size frame is thrown away as it streams in, yet its
 * sender can still be answered by id. Memory stays constant whatever the frame's size; bytes are
 * scanned once. Quotes and backslashes never occur inside a multi-byte UTF-8 character, so a byte
 * scan tracks strings exactly. Like `JSON.parse`, the last of duplicate `id` keys wins.
 */
export class FrameIdScanner {
  /** The top-level `id` when it is a string, a number or null; undefined when absent or unusable. */
  id: string | number | null | undefined;
  /** Whether the frame has a top-level `method` key (a request or notification, not a response). */
  hasMethod = false;

  private started = false;
  private notObject = false;
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** At depth 1: a key comes next (after `{` or `,`), or a value does (after `:`). */
  private expectKey = false;
  private awaitingValue = false;
  private key: string | undefined;
  private capture: { kind: 'key' | 'id-string' | 'id-bare'; bytes: number[]; over: boolean } | undefined;

  feed(chunk: Uint8Array): void {
    for (let i = 0; i < chunk.length && !this.notObject; i++) this.step(chunk[i]!);
  }

  /** The frame ended: a bare `id` value running to the very end is complete now. */
  finish(): void {
    if (this.capture?.kind === 'id-bare') this.endBare();
  }

  private step(b: number): void {
    if (this.inString) {
      this.stringByte(b);
      return;
    }
    if (this.capture?.kind === 'id-bare') {
      if (isBareByte(b)) {
        this.keep(b);
        return;
      }
      this.endBare();
    }
    if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) return;
    if (!this.started) {
      this.started = true;
      if (b !== LBRACE) this.notObject = true;
      this.depth = 1;
      this.expectKey = true;
      return;
    }
    const top = this.depth === 1;
    const idValue = top && this.awaitingValue && this.key === 'id';
    if (b === QUOTE) {
      this.inString = true;
      if (top && this.expectKey) this.begin('key');
      else if (idValue) this.begin('id-string');
    } else if (b === LBRACE || b === LBRACKET) {
      if (idValue) this.id = undefined;
      this.depth++;
    } else if (b === RBRACE || b === RBRACKET) {
      this.depth--;
    } else if (b === COMMA) {
      if (top) this.expectKey = true;
    } else if (b === COLON) {
      if (top) this.expectKey = false;
      this.awaitingValue = top;
      return;
    } else if (idValue) {
      this.begin('id-bare');
      this.keep(b);
    }
    this.awaitingValue = false;
  }

  private stringByte(b: number): void {
    if (this.escaped) this.escaped = false;
    else if (b === BACKSLASH) this.escaped = true;
    else if (b === QUOTE) {
      this.inString = false;
      this.endString();
      return;
    }
    this.keep(b);
  }

  private begin(kind: 'key' | 'id-string' | 'id-bare'): void {
    this.capture = { kind, bytes: [], over: false };
  }

  private keep(b: number): void {
    const c = this.capture;
    if (!c) return;
    if (c.bytes.length < (c.kind === 'key' ? MAX_KEY_BYTES : MAX_ID_BYTES)) c.bytes.push(b);
    else c.over = true;
  }

  private endString(): void {
    const c = this.capture;
    this.capture = undefined;
    if (!c) return;
    const text = c.over ? undefined : decodeString(c.bytes);
    if (c.kind === 'key') {
      this.key = text;
      if (text === 'method') this.hasMethod = true;
    } else this.id = text;
  }

  private endBare(): void {
    const c = this.capture!;
    this.capture = undefined;
    let v: unknown;
    try {
      v = c.over ? undefined : JSON.parse(Buffer.from(c.bytes).toString('latin1'));
    } catch {
      v = undefined;
    }
    this.id = typeof v === 'number' || v === null ? v : undefined;
  }
}

/** Bytes a number or literal (`true`, `false`, `null`) is made of. */
function isBareByte(b: number): boolean {
  return (
    (b >= 0x30 && b <= 0x39) ||
    (b >= 0x61 && b <= 0x7a) ||
    b === 0x2d ||
    b === 0x2b ||
    b === 0x2e ||
    b === 0x45
  );
}

function decodeString(bytes: number[]): string | undefined {
  try {
    const v: unknown = JSON.parse(`"${Buffer.from(bytes).toString('utf8')}"`);
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}
