import type { EventEmitter } from 'node:events';
import type { Dispatcher } from 'undici';
import { WardenError } from '../errors/index.js';
import { createHttpAgent } from '../lib/http-agent.js';
import type { CallContext, OutboundRequest, UpstreamResponse, UpstreamSpan } from './context.js';
import { createResilience, type ResilienceOptions } from './resilience.js';

export interface SendOptions extends ResilienceOptions {
  /** Whole-call budget: connect, headers and body (default 10 s). */
  timeoutMs?: number;
  /** Bytes read from a response before reading stops and the result is marked truncated (default 1 MiB). */
  maxResponseBytes?: number;
  /** Keep-alive connections per upstream origin (default 64). */
  connections?: number;
  /** A dispatcher to use instead of the gateway's own pooled agent (tests, proxies). */
  dispatcher?: Dispatcher;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;

/**
 * Writes `ctx.response`. One pooled keep-alive agent for every upstream origin. Redirects are never
 * followed (the answer stage reports them), so a `Location` header cannot send a credentialed request
 * to another host. The response is read up to the cap and the connection dropped beyond it.
 */
export function createSend(options: SendOptions = {}) {
  const defaultTimeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const defaultCap = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const dispatcher =
    options.dispatcher ??
    createHttpAgent({
      ...(options.connections !== undefined ? { connections: options.connections } : {}),
      connectTimeoutMs: Math.min(defaultTimeoutMs, 5_000),
    });

  const resilience = createResilience(options);

  async function send(ctx: CallContext): Promise<void> {
    if (!ctx.trace) {
      ctx.response = await resilience(ctx, () => attempt(ctx, ctx.outbound!.headers));
      return;
    }
    let resend = 0;
    ctx.response = await resilience(ctx, () => tracedAttempt(ctx, resend++));
  }

  /** One try inside its CLIENT span, which the upstream learns as its parent through `traceparent`. */
  async function tracedAttempt(ctx: CallContext, resend: number): Promise<UpstreamResponse> {
    const out = ctx.outbound!;
    const span = ctx.trace!.upstream({
      method: out.method,
      origin: out.origin,
      template: ctx.request?.template ?? '',
      resend,
    });
    try {
      const res = await attempt(ctx, traceHeaders(out, span));
      span.end({ status: res.status });
      return res;
    } catch (e) {
      span.end({ error: (e as { code?: string }).code ?? 'INTERNAL' });
      throw e;
    }
  }

  /** One try: the request, its timer, and the body read up to the cap. */
  async function attempt(ctx: CallContext, headers: Record<string, string>): Promise<UpstreamResponse> {
    const out = ctx.outbound!;
    const limits = ctx.decision?.limits;
    const timeoutMs = limits?.timeoutMs ?? defaultTimeoutMs;
    const headersTimeout = Math.min(timeoutMs, limits?.headersTimeoutMs ?? timeoutMs);
    const cap = limits?.maxResponseBytes ?? defaultCap;
    // undici takes an EventEmitter as its abort signal; one such object and one timer per call cost
    // far less than AbortSignal.timeout + AbortSignal.any, which showed up in profiles of the hot path.
    const abort = new AbortEmitter();
    const timer = setTimeout(abort.timeout, timeoutMs);
    const client = ctx.input.signal;
    const onCancel = abort.cancel;
    client?.addEventListener('abort', onCancel, { once: true });
    const t0 = performance.now();
    let res: Dispatcher.ResponseData;
    try {
      if (client?.aborted) throw Object.assign(new Error('aborted'), { name: 'AbortError' });
      res = await dispatcher.request({
        origin: out.origin,
        path: out.pathAndQuery,
        method: out.method as Dispatcher.HttpMethod,
        headers,
        body: out.body ?? null,
        signal: abort as unknown as EventEmitter,
        // The total timer above is the real bound; the body one only keeps undici from cutting in first.
        headersTimeout,
        bodyTimeout: timeoutMs + 1_000,
      });
    } catch (e) {
      clearTimeout(timer);
      client?.removeEventListener('abort', onCancel);
      throw upstreamError(e, abort.timedOut, timeoutMs);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;
    const declared = Number(res.headers['content-length']);
    try {
      if (declared >= 0 && declared <= cap) {
        // Announced size within the cap: one read (undici still stops at the announced length).
        const whole = Buffer.from(await res.body.arrayBuffer());
        chunks.push(whole);
        size = whole.length;
      } else {
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          if (size + chunk.length > cap) {
            chunks.push(chunk.subarray(0, cap - size));
            size = cap;
            truncated = true;
            break;
          }
          chunks.push(chunk);
          size += chunk.length;
        }
      }
    } catch (e) {
      throw upstreamError(e, abort.timedOut, timeoutMs);
    } finally {
      clearTimeout(timer);
      client?.removeEventListener('abort', onCancel);
      // Stops the download (and frees the connection) when the cap cut it short.
      if (truncated) res.body.destroy();
    }
    const ct = res.headers['content-type'];
    return {
      status: res.statusCode,
      contentType: (Array.isArray(ct) ? ct[0] : ct) ?? '',
      headers: res.headers,
      body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size),
      truncated,
      ms: performance.now() - t0,
    };
  }

  return Object.assign(send, {
    // A pool passed in is shared (by the pipelines a spec reload replaces): its owner closes it.
    close: async () => {
      if (!options.dispatcher) await dispatcher.close();
    },
  });
}

/**
 * What undici uses of an EventEmitter given as a request's `signal` (`on`, `once`, `removeListener`
 * of `'abort'`), without an EventEmitter per call. It aborts once, on the total timer (`timeout`,
 * which also records that the time ran out) or when the client cancels (`cancel`).
 */
class AbortEmitter {
  timedOut = false;
  private fired = false;
  private listeners: Array<() => void> = [];
  readonly timeout = (): void => {
    this.timedOut = true;
    this.fire();
  };
  readonly cancel = (): void => this.fire();
  on(event: string, listener: () => void): this {
    if (event === 'abort' && !this.fired) this.listeners.push(listener);
    return this;
  }
  once(event: string, listener: () => void): this {
    // Fired at most once anyway: every listener runs once.
    return this.on(event, listener);
  }
  removeListener(event: string, listener: () => void): this {
    if (event === 'abort') {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    }
    return this;
  }
  private fire(): void {
    if (this.fired) return;
    this.fired = true;
    const listeners = this.listeners;
    this.listeners = [];
    for (const l of listeners) l();
  }
}

/**
 * The request's headers with the gateway's own trace context: any `traceparent`/`tracestate` already
 * there (whatever put it there) is dropped, so only this span can be named as the upstream's parent.
 */
function traceHeaders(out: OutboundRequest, span: UpstreamSpan): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(out.headers)) {
    const lower = k.toLowerCase();
    if (lower !== 'traceparent' && lower !== 'tracestate') headers[k] = v;
  }
  return Object.assign(headers, span.headers);
}

function upstreamError(e: unknown, timedOut: boolean, timeoutMs: number): WardenError {
  const code = (e as { code?: string } | null)?.code ?? '';
  if (timedOut || /TIMEOUT/.test(code))
    return new WardenError(
      'UPSTREAM_TIMEOUT',
      `The upstream API did not answer within ${timeoutMs / 1000} s.`,
      { cause: e },
    );
  if ((e as { name?: string } | null)?.name === 'AbortError' || code === 'UND_ERR_ABORTED')
    return new WardenError('CANCELLED', 'The call was cancelled.', { cause: e });
  return new WardenError('UPSTREAM_UNAVAILABLE', 'The upstream API could not be reached.', { cause: e });
}
