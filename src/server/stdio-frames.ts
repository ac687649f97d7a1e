import type { Readable, Writable } from 'node:stream';
import { type JSONRPCMessage, serializeMessage, type Transport } from '@modelcontextprotocol/server';
import { type ErrorCode, jsonRpcError } from '../errors/index.js';
import { tooDeep } from '../lib/json-depth.js';
import { FrameIdScanner } from '../lib/json-frame-id.js';
import { parseMessage } from './direct-requests.js';

export interface FrameCaps {
  /** Largest frame (one line, without its newline) read; the HTTP body cap (default 1 MiB). */
  maxFrameBytes?: number;
  /** Deepest JSON nesting accepted; the HTTP depth cap (default 64). */
  maxJsonDepth?: number;
}

export interface CappedStdioOptions extends FrameCaps {
  stdin: Readable;
  stdout: Writable;
  /** Told of each refused frame (for the log): its code and whether its sender was answered. */
  onRefused?: (code: ErrorCode, answered: boolean) => void;
  /**
   * Start held (serve.ts, before the gateway is ready): each message goes to the SDK only if
   * `early` lets it through; the others wait, in order, for `release()` (or `fail()`).
   */
  hold?: {
    early(message: JSONRPCMessage): boolean;
  };
}

// While held, stdin is paused past this many waiting messages or bytes (the pipe then pushes back on
// the client, as when nothing read stdin during a load): a client flooding frames cannot grow memory.
const MAX_HELD_MESSAGES = 1024;
const HELD_BYTES_PER_FRAME_CAP = 16;
// Stdin ended while requests were held: after release, how long their answers are waited for before
// the transport closes anyway.
const DRAIN_MS = 30_000;

/** A request's answer (an error) from its id: what `fail` sends each request it answers. */
export type Refusal = (id: string | number) => JSONRPCMessage;

/** What a refused frame was: a request (answered by id), a response (failed locally), or neither. */
interface Refused {
  id: string | number | null | undefined;
  hasMethod: boolean;
}

/**
 * Stdio framing with the HTTP transport's caps, handed to the SDK's `serveStdio` as its transport.
 * The SDK's own stdio reader buffers a line of up to 10 MB, closes the connection (the server
 * exits) on a longer one, and has no depth cap. Here each newline-delimited frame is read only up to
 * `maxFrameBytes` (the rest is discarded as it streams in, keeping only its id), parsed once and
 * depth-checked before the SDK sees it. A refused request is answered with the HTTP side's code and
 * JSON-RPC error, under its own id; a refused response (a client's answer to the gateway's own
 * request, e.g. an elicitation) fails that request at once instead of leaving it to time out. The
 * connection stays up either way.
 */
export class CappedStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  private readonly maxBytes: number;
  private readonly maxDepth: number;
  private pieces: Buffer[] = [];
  private size = 0;
  /** Set while an over-size frame streams past: it reads the id, nothing is kept. */
  private skipping: FrameIdScanner | undefined;
  private closed = false;
  /** While held: the messages waiting for `release()`. */
  private held: JSONRPCMessage[] | undefined;
  /** Their frames' bytes (what pauses stdin past the bound). */
  private heldBytes = 0;
  private paused = false;
  /** Stdin ended while held: after release, the transport closes once the released requests are answered. */
  private endedHeld = false;
  /** Those requests' ids, each with how many are unanswered (a client may reuse an id). */
  private draining: Map<string | number, number> | undefined;
  private closedNow!: () => void;
  /** Settles when the transport has closed (stdin's end, a stdout failure, or `close()`). */
  readonly whenClosed = new Promise<void>((resolve) => {
    this.closedNow = resolve;
  });
  /** After `fail()` found nothing waiting: the next request is answered with it. */
  private failing: { refusal: Refusal; answered: (ok: boolean) => void } | undefined;

  constructor(private readonly o: CappedStdioOptions) {
    this.maxBytes = o.maxFrameBytes ?? 1024 * 1024;
    this.maxDepth = o.maxJsonDepth ?? 64;
    if (o.hold) this.held = [];
  }

  /**
   * The held messages go to the SDK in the order they came, and every later one as it comes. When
   * stdin has ended meanwhile, the transport closes once each of them is answered (at most DRAIN_MS).
   */
  release(): void {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    this.heldBytes = 0;
    this.resumeInput();
    if (this.endedHeld) {
      this.draining = new Map();
      for (const m of held) if (isRequest(m)) this.draining.set(m.id, (this.draining.get(m.id) ?? 0) + 1);
      setTimeout(() => this.close().catch(() => {}), DRAIN_MS).unref();
    }
    for (const m of held) {
      if (this.closed) return;
      this.onmessage?.(m);
    }
    this.closeIfDrained();
  }

  /** After release with stdin ended: closes once no released request is unanswered. */
  private closeIfDrained(): void {
    if (this.draining && this.draining.size === 0)
      // Not from inside send(): the SDK is still handling the answer being written.
      setImmediate(() => this.close().catch(() => {}));
  }

  /** An answer written: one fewer released request waiting (see release). */
  private answered(message: JSONRPCMessage): void {
    const m = message as { id?: unknown; method?: unknown };
    if (m.method !== undefined || (typeof m.id !== 'string' && typeof m.id !== 'number')) return;
    const left = this.draining!.get(m.id);
    if (left === undefined) return;
    if (left > 1) this.draining!.set(m.id, left - 1);
    else this.draining!.delete(m.id);
    this.closeIfDrained();
  }

  private resumeInput(): void {
    if (!this.paused) return;
    this.paused = false;
    if (!this.closed) this.o.stdin.resume();
  }

  /**
   * The gateway could not start: every held request is answered with `refusal` (its id), none goes
   * to the SDK. With none held, the next request to come within `waitMs` is (resolves at once at
   * stdin's end). Resolves once the answers are written (flushed to stdout).
   */
  async fail(refusal: Refusal, waitMs: number): Promise<void> {
    const held = this.held ?? [];
    this.held = [];
    this.heldBytes = 0;
    // Requests still coming are read (and refused) from here on.
    this.resumeInput();
    const requests = held.filter(isRequest);
    if (requests.length > 0 || this.endedHeld || this.closed) {
      for (const m of requests) await this.send(refusal(m.id)).catch(() => {});
    } else {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => settle(false), waitMs);
        const settle = (_answered: boolean) => {
          clearTimeout(timer);
          this.failing = undefined;
          resolve();
        };
        this.failing = { refusal, answered: settle };
      });
    }
    await new Promise<void>((resolve) => this.afterWritten(resolve, false));
  }

  /**
   * Runs `f` once stdout has taken every line sent before it — with `later`, also those sent by the
   * work under way now (a handler's answer is sent in a later microtask). For work that holds the
   * event loop (loading modules after the first list): a pipe takes 64 KiB at a time, and the rest of
   * a big answer waits for the loop (a 0.8 MB list came out 89–243 ms later behind the warm-up:
   * bench/list-arrival.mjs).
   */
  afterWritten(f: () => void, later = true): void {
    const check = () => {
      const { stdout } = this.o;
      // Taken already, or never will be: nothing to wait for (an error reached onStdoutError).
      if (stdout.destroyed || stdout.writableEnded || stdout.writableLength === 0) f();
      // Behind every write before it: its callback runs once they are all out (or failed).
      else stdout.write('', () => f());
    };
    if (later) setImmediate(check);
    else check();
  }

  async start(): Promise<void> {
    this.o.stdin.on('data', this.onData);
    this.o.stdin.on('error', this.onStreamError);
    this.o.stdin.on('end', this.onEnd);
    this.o.stdin.on('close', this.onEnd);
    this.o.stdout.on('error', this.onStdoutError);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.o.stdin.off('data', this.onData);
    this.o.stdin.off('error', this.onStreamError);
    this.o.stdin.off('end', this.onEnd);
    this.o.stdin.off('close', this.onEnd);
    // A late EPIPE after close is expected; it must not become an uncaught 'error'.
    this.o.stdout.off('error', this.onStdoutError);
    this.o.stdout.on('error', () => {});
    if (this.o.stdin.listenerCount('data') === 0) this.o.stdin.pause();
    this.pieces = [];
    this.skipping = undefined;
    this.onclose?.();
    this.closedNow();
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (this.closed) return Promise.reject(new Error('stdio transport is closed'));
    const { stdout } = this.o;
    if (stdout.destroyed || stdout.writableEnded) return Promise.reject(new Error('stdout is closed'));
    if (this.draining) this.answered(message);
    // As the SDK's own stdio transport: settled once the stream has taken the line, or at its next
    // 'drain' (backpressure). Not at the write's callback: waiting for it cost ~15 µs a call (issue 22).
    // A failed write reaches the 'error' listener (onStdoutError: reported, transport closed).
    if (stdout.write(serializeMessage(message))) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const settle = (e?: Error) => {
        stdout.off('drain', drained);
        stdout.off('close', gone);
        if (e) reject(e);
        else resolve();
      };
      const drained = () => settle();
      const gone = () => settle(new Error('stdout is closed'));
      stdout.once('drain', drained);
      stdout.once('close', gone);
    });
  }

  private readonly onData = (chunk: Buffer): void => {
    let from = 0;
    while (from <= chunk.length && !this.closed) {
      const nl = chunk.indexOf(0x0a, from);
      const end = nl === -1 ? chunk.length : nl;
      if (end > from) this.take(chunk.subarray(from, end));
      if (nl === -1) return;
      this.endFrame();
      from = nl + 1;
    }
  };

  /** One piece of the current frame: kept while under the cap, scanned for its id past it. */
  private take(piece: Buffer): void {
    if (this.skipping) {
      this.skipping.feed(piece);
      return;
    }
    if (this.size + piece.length <= this.maxBytes) {
      this.pieces.push(piece);
      this.size += piece.length;
      return;
    }
    const scanner = new FrameIdScanner();
    for (const p of this.pieces) scanner.feed(p);
    scanner.feed(piece);
    this.pieces = [];
    this.size = 0;
    this.skipping = scanner;
  }

  private endFrame(): void {
    const skipped = this.skipping;
    this.skipping = undefined;
    if (skipped) {
      skipped.finish();
      this.refuse('HTTP_BODY_TOO_LARGE', `Frame larger than ${this.maxBytes} bytes.`, skipped);
      return;
    }
    // One piece (the usual case: a frame within one chunk) is decoded as it is, without a copy.
    const { pieces } = this;
    const whole = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, this.size);
    const end = whole.length > 0 && whole[whole.length - 1] === 0x0d ? whole.length - 1 : whole.length;
    const text = whole.toString('utf8', 0, end);
    this.pieces = [];
    this.size = 0;
    if (/\S/.test(text)) this.deliver(text);
  }

  /** One whole frame under the size cap: parsed once, depth-checked, then handed to the SDK. */
  private deliver(text: string): void {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      // As the SDK's reader does: a line that is not JSON has no id to answer; it is reported only.
      this.onerror?.(new Error('stdio frame is not valid JSON'));
      return;
    }
    if (tooDeep(value, this.maxDepth)) {
      this.refuse(
        'HTTP_BAD_REQUEST',
        `The JSON frame nests deeper than ${this.maxDepth} levels.`,
        idOf(value),
      );
      return;
    }
    let message: JSONRPCMessage;
    try {
      // The SDK's parse, remembered: directRequests then dispatches a request without a second one.
      message = parseMessage(value);
    } catch (e) {
      this.onerror?.(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    if (this.held !== undefined) this.holdOrPass(message, text.length);
    else this.onmessage?.(message);
  }

  /** Before the gateway is ready: what `hold.early` lets through goes on, the rest waits; after a failure, refused. */
  private holdOrPass(message: JSONRPCMessage, bytes: number): void {
    const failing = this.failing;
    if (failing) {
      if (!isRequest(message)) return;
      this.send(failing.refusal(message.id)).then(
        () => failing.answered(true),
        () => failing.answered(false),
      );
      return;
    }
    if (this.o.hold?.early(message)) {
      this.onmessage?.(message);
      return;
    }
    this.held!.push(message);
    this.heldBytes += bytes;
    if (
      !this.paused &&
      (this.held!.length >= MAX_HELD_MESSAGES || this.heldBytes >= HELD_BYTES_PER_FRAME_CAP * this.maxBytes)
    ) {
      this.paused = true;
      this.o.stdin.pause();
    }
  }

  private refuse(code: ErrorCode, message: string, frame: Refused): void {
    const { id } = frame;
    const usable = id !== undefined && id !== null;
    if (usable && frame.hasMethod) {
      // A request: its sender gets the HTTP side's error, under its own id.
      this.send(jsonRpcError({ code, message }, id) as JSONRPCMessage).catch((e) => this.onerror?.(e));
    } else if (usable) {
      // A response to the gateway's own request: that request fails now (fail closed), not at its timeout.
      this.onmessage?.(jsonRpcError({ code, message }, id) as JSONRPCMessage);
    }
    this.o.onRefused?.(code, usable);
  }

  private readonly onEnd = (): void => {
    if (this.held !== undefined) {
      // 'end' and 'close' both come here: told once.
      if (this.endedHeld) return;
      if (this.failing) {
        this.failing.answered(false);
        return;
      }
      // Requests waiting for the gateway are still answered, then the transport closes (release).
      // With none, the load still finishes: a failure is reported (stderr, exit code) as it was
      // before stdin was read early, and a success stores the spec cache for the next start. A
      // version probe's sibling is ended by the client's SIGTERM, not by this.
      this.endedHeld = true;
      return;
    }
    this.close().catch(() => {});
  };
  private readonly onStreamError = (e: Error): void => {
    this.onerror?.(e);
  };
  private readonly onStdoutError = (e: Error): void => {
    this.onerror?.(e);
    this.close().catch(() => {});
  };
}

function isRequest(m: JSONRPCMessage): m is JSONRPCMessage & { id: string | number; method: string } {
  const r = m as { id?: unknown; method?: unknown };
  return typeof r.method === 'string' && (typeof r.id === 'string' || typeof r.id === 'number');
}

/** The top-level id of a parsed frame, as the scanner reads it from an unparsed one. */
function idOf(value: unknown): Refused {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return { id: undefined, hasMethod: false };
  const v = value as Record<string, unknown>;
  const id = typeof v.id === 'string' || typeof v.id === 'number' || v.id === null ? v.id : undefined;
  return { id, hasMethod: 'method' in v };
}
