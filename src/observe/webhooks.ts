import type { IPolicy } from 'cockatiel';
import { cjsExports } from '../lib/cjs-exports.js';
import { loadUndici } from '../lib/undici.js';
import type { AlertsDoc } from '../policy/schema.js';
import type { Logger } from './log.js';

/** How alerts are posted: every number is bounded, so a dead receiver costs little and never blocks. */
export interface DeliveryOptions {
  /** Tries per alert and webhook, the first included (default 5). */
  attempts?: number;
  /** First backoff (default 1 s); it grows exponentially with jitter up to `maxDelayMs` (default 30 s). */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** One try's limit, answer and body included (default 5 s). */
  timeoutMs?: number;
  /** The most `flush` waits for deliveries in flight before giving them up (default 2 s). */
  flushLimitMs?: number;
}

export const DELIVERY_DEFAULTS: Required<DeliveryOptions> = {
  attempts: 5,
  initialDelayMs: 1000,
  maxDelayMs: 30_000,
  timeoutMs: 5000,
  flushLimitMs: 2000,
};

/** Deliveries in flight at once; more are dropped (and logged) rather than queued without bound. */
const MAX_IN_FLIGHT = 200;

/** An answer that another try would not change (a 4xx other than 408/429, a redirect). */
class Refused extends Error {}

type Webhook = NonNullable<AlertsDoc['webhooks']>[number];

/**
 * Posts alerts to the configured webhooks in the background: each delivery is retried with
 * exponential backoff and jitter on a network error, a time-out, 408, 429 or 5xx (cockatiel), and
 * given up after a bounded number of tries. Nobody waits for a delivery except `flush`, which waits at
 * most `flushLimitMs` and then cancels what is left, so a hung receiver cannot hold a shutdown.
 * Logs never carry a webhook's URL (a Slack URL is a secret), only its position in the list.
 */
export class Webhooks {
  private readonly opts: Required<DeliveryOptions>;
  /** Made at the first delivery: a gateway without webhooks never loads cockatiel (issue 22: start-up). */
  private policy: Promise<IPolicy> | undefined;
  private readonly inFlight = new Map<Promise<void>, AbortController>();

  constructor(
    private readonly hooks: readonly Webhook[],
    private readonly logger: Logger,
    options: DeliveryOptions = {},
  ) {
    this.opts = { ...DELIVERY_DEFAULTS, ...options };
  }

  private retryPolicy(): Promise<IPolicy> {
    this.policy ??= import('cockatiel').then(
      (m) => {
        const { ExponentialBackoff, handleWhen, retry, TimeoutStrategy, timeout, wrap } = cjsExports(m);
        const retries = retry(
          handleWhen((e) => !(e instanceof Refused)),
          {
            maxAttempts: this.opts.attempts - 1,
            backoff: new ExponentialBackoff({
              initialDelay: this.opts.initialDelayMs,
              maxDelay: this.opts.maxDelayMs,
            }),
          },
          // A pending backoff must not keep a stopping process alive.
        ).dangerouslyUnref();
        retries.onRetry((r) =>
          this.logger.debug(
            { err: 'error' in r ? (r.error as Error).message : undefined, delayMs: r.delay },
            'alert webhook failed; retrying',
          ),
        );
        return wrap(retries, timeout(this.opts.timeoutMs, TimeoutStrategy.Aggressive));
      },
      (e: unknown) => {
        // Not kept: the next alert tries to load it again (this one is reported undelivered).
        this.policy = undefined;
        throw e;
      },
    );
    return this.policy;
  }

  /** Starts one delivery per webhook and returns at once. */
  post(body: { generic: object; slackText: string }): void {
    this.hooks.forEach((hook, index) => {
      if (this.inFlight.size >= MAX_IN_FLIGHT) {
        this.logger.warn({ webhook: index }, 'alert webhook backlog full: alert not posted');
        return;
      }
      const payload = JSON.stringify(hook.format === 'slack' ? { text: body.slackText } : body.generic);
      const stop = new AbortController();
      const p = this.deliver(hook.url, payload, stop.signal)
        .catch((e: Error) => {
          // Given up by `flush`: it has said so already, once for all.
          if (!stop.signal.aborted)
            this.logger.warn(
              { webhook: index, err: e.message, attempts: this.opts.attempts },
              'alert webhook: alert undelivered',
            );
        })
        .finally(() => this.inFlight.delete(p));
      this.inFlight.set(p, stop);
    });
  }

  /**
   * Waits until every delivery in flight has ended, at most `flushLimitMs`; then cancels the rest (no
   * retry after it). Shutdown calls this, so it is bounded whatever the receivers do.
   */
  async flush(): Promise<void> {
    if (this.inFlight.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<true>((r) => {
      timer = setTimeout(() => r(true), this.opts.flushLimitMs);
    });
    const gaveUp = await Promise.race([
      Promise.allSettled([...this.inFlight.keys()]).then(() => false),
      late,
    ]);
    clearTimeout(timer);
    if (!gaveUp) return;
    const left = [...this.inFlight.values()];
    for (const stop of left) stop.abort();
    this.logger.warn(
      { undelivered: left.length, limitMs: this.opts.flushLimitMs },
      'alert webhooks: deliveries still in flight given up',
    );
  }

  private async deliver(url: string, payload: string, signal: AbortSignal): Promise<void> {
    const policy = await this.retryPolicy();
    signal.throwIfAborted();
    await policy.execute(async ({ signal: attempt }) => {
      const res = await (await loadUndici()).request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: payload,
        signal: attempt,
      });
      await res.body.dump({ limit: 64 * 1024, signal: attempt });
      const s = res.statusCode;
      if (s >= 200 && s < 300) return;
      if (s === 408 || s === 429 || s >= 500) throw new Error(`HTTP ${s}`);
      throw new Refused(`the receiver refused the alert: HTTP ${s}`);
    }, signal);
  }
}
