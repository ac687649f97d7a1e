import type { IncomingHttpHeaders } from 'node:http';
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
  function attempt(ctx: CallContext, headers: Record<string, string>): Promise<UpstreamResponse> {
    const out = ctx.outbound!;
    const limits = ctx.decision?.limits;
    const timeoutMs = limits?.timeoutMs ?? defaultTimeoutMs;
    const headersTimeout = Math.min(timeoutMs, limits?.headersTimeoutMs ?? timeoutMs);
    const cap = limits?.maxResponseBytes ?? defaultCap;
    const client = ctx.input.signal;
    if (client?.aborted) return Promise.reject(upstreamError(abortError(), false, timeoutMs));
    return new Promise((resolve, reject) => {
      const exchange = new Exchange(cap, timeoutMs, client, resolve, reject);
      // `dispatch`, not `request`: the body is gathered from the handler's chunks, with no Readable
      // stream per response (measured: ~15 % of an upstream call's CPU). Redirects are not followed
      // either way (no redirect interceptor is composed into the dispatcher).
      try {
        dispatcher.dispatch(
          {
            origin: out.origin,
            path: out.pathAndQuery,
            method: out.method as Dispatcher.HttpMethod,
            headers,
            body: out.body ?? null,
            // The total timer above is the real bound; the body one only keeps undici from cutting in first.
            headersTimeout,
            bodyTimeout: timeoutMs + 1_000,
          },
          exchange,
        );
      } catch (e) {
        // undici reports bad options through the handler; a throw here ends the try the same way
        // (its timer and the client's abort listener released), never a call left waiting.
        exchange.onResponseError(undefined, e as Error);
      }
    });
  }

  return Object.assign(send, {
    // A pool passed in is shared (by the pipelines a spec reload replaces): its owner closes it.
    close: async () => {
      if (!options.dispatcher) await dispatcher.close();
    },
  });
}

/**
 * One upstream try as undici's dispatch handler: one object with every field declared up front. It
 * aborts once, on the total timer or when the client cancels (before the request is on a socket, the
 * call is refused at once and the request dropped unsent when it gets one); it reads the body
 * up to the cap and drops the connection beyond it, the response then marked truncated.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private status = 0;
  private headers: Record<string, string | string[] | undefined> = {};
  private chunks: Buffer[] = [];
  private size = 0;
  private truncated = false;
  private timedOut = false;
  private settled = false;
  private controller: Dispatcher.DispatchController | undefined = undefined;
  private reason: Error | undefined = undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly t0 = performance.now();

  constructor(
    private readonly cap: number,
    private readonly timeoutMs: number,
    private readonly client: AbortSignal | undefined,
    private readonly resolve: (res: UpstreamResponse) => void,
    private readonly reject: (e: unknown) => void,
  ) {
    this.timer = setTimeout(this.onTimeout, timeoutMs);
    client?.addEventListener('abort', this.onCancel, { once: true });
  }

  private readonly onTimeout = (): void => {
    this.timedOut = true;
    this.stop(Object.assign(new Error('upstream timeout'), { code: 'UND_ERR_ABORTED' }));
  };

  private readonly onCancel = (): void => this.stop(abortError());

  private stop(reason: Error): void {
    if (this.settled || this.reason) return;
    this.reason = reason;
    if (this.controller) {
      this.controller.abort(reason);
      return;
    }
    // Still waiting for a connection (a full pool): the call is refused now, not when one frees up;
    // the request is dropped unsent when it reaches one (`onRequestStart`).
    this.settled = true;
    this.release();
    this.reject(upstreamError(reason, this.timedOut, this.timeoutMs));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.reason) controller.abort(this.reason);
  }

  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    // 1xx (informational): the final answer follows.
    if (status < 200) return;
    this.status = status;
    this.headers = headers;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    if (this.size + chunk.length > this.cap) {
      this.chunks.push(chunk.subarray(0, this.cap - this.size));
      this.size = this.cap;
      this.truncated = true;
      this.finish();
      // Stops the download and drops the connection: nothing past the cap is read.
      controller.abort(abortError());
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  onResponseEnd(): void {
    if (!this.settled) this.finish();
  }

  onResponseError(_c: Dispatcher.DispatchController | undefined, e: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.release();
    this.reject(upstreamError(e, this.timedOut, this.timeoutMs));
  }

  private finish(): void {
    this.settled = true;
    this.release();
    const ct = this.headers['content-type'];
    const { chunks } = this;
    this.resolve({
      status: this.status,
      contentType: (Array.isArray(ct) ? ct[0] : ct) ?? '',
      headers: this.headers,
      body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.size),
      truncated: this.truncated,
      ms: performance.now() - this.t0,
    });
  }

  private release(): void {
    clearTimeout(this.timer);
    this.client?.removeEventListener('abort', this.onCancel);
  }
}

function abortError(): Error {
  return Object.assign(new Error('aborted'), { name: 'AbortError' });
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
