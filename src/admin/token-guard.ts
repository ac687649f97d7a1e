import { RateLimiterMemory, RateLimiterRes } from '../lib/rate-limiters.js';

/** Wrong tokens an address may send per minute (bearer header and login form together). */
export const WRONG_TOKENS_PER_MINUTE = 5;
/** Addresses tallied one by one; refusals from more addresses at once share one tally, so the audit stays bounded. */
const MAX_SOURCES = 1000;
export const OTHER_SOURCES = 'other addresses';
const MINUTE = 60_000;

export type Refusal = 'ADMIN_DENIED' | 'ADMIN_THROTTLED';

export interface TokenGuardOptions {
  /** Every refused token, as it happens (metrics and alerts). */
  onRefused: (code: Refusal, source: string) => void;
  /**
   * Bearer-header refusals for the audit, bounded: the first from an address at once (`wrong` or
   * `throttled` is 1), then at most one record per address per minute with the counts since.
   */
  onTally: (source: string, counts: { wrong: number; throttled: number }) => void;
  now?: () => number;
}

interface Tally {
  since: number;
  wrong: number;
  throttled: number;
}

/**
 * The admin port's defence against token guessing, shared by the bearer header and the dashboard's
 * login form: five wrong tokens a minute per source address, then every token from that address,
 * the right one included, is refused (429 with Retry-After) until the minute is over, so the token
 * cannot be guessed faster through either door. Each refusal is counted; bearer-header refusals are
 * also audited, in bulk, so a flood of guesses cannot flood the audit.
 */
export class TokenGuard {
  private readonly limiter = new RateLimiterMemory({ points: WRONG_TOKENS_PER_MINUTE, duration: 60 });
  private readonly tallies = new Map<string, Tally>();
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly o: TokenGuardOptions) {
    this.now = o.now ?? Date.now;
    this.sweeper = setInterval(() => this.sweep(false), 10_000);
    this.sweeper.unref();
  }

  /**
   * Takes one try from `source`'s budget before its token is looked at: undefined when it may try,
   * else the seconds until it may. Taking the try first (not checking, then counting a failure) means
   * tries sent in parallel cannot all slip in before the first failure is counted.
   */
  async attempt(source: string): Promise<number | undefined> {
    try {
      await this.limiter.consume(source, 1);
      return undefined;
    } catch (e) {
      if (e instanceof RateLimiterRes) return Math.max(1, Math.ceil(e.msBeforeNext / 1000));
      throw e;
    }
  }

  /** A token refused (its try is already counted by `attempt`). */
  refused(code: Refusal, source: string, via: 'bearer' | 'login'): void {
    this.o.onRefused(code, source);
    if (via === 'bearer' || code === 'ADMIN_THROTTLED') this.tally(source, code);
  }

  /** The right token: the address starts over (its try is given back). */
  async accepted(source: string): Promise<void> {
    await this.limiter.delete(source);
  }

  /** Writes out every tally still waiting (shutdown). */
  close(): void {
    clearInterval(this.sweeper);
    this.sweep(true);
  }

  private tally(address: string, code: Refusal): void {
    const now = this.now();
    const source = this.tallies.has(address) || this.tallies.size < MAX_SOURCES ? address : OTHER_SOURCES;
    const t = this.tallies.get(source);
    if (t) {
      if (code === 'ADMIN_DENIED') t.wrong++;
      else t.throttled++;
      if (now - t.since >= MINUTE) this.sweep(false);
      return;
    }
    // The first refusal from an address is audited at once; the rest wait for the minute's record.
    this.tallies.set(source, { since: now, wrong: 0, throttled: 0 });
    this.o.onTally(source, {
      wrong: code === 'ADMIN_DENIED' ? 1 : 0,
      throttled: code === 'ADMIN_THROTTLED' ? 1 : 0,
    });
  }

  /** One record per address whose minute is over (all of them with `all`); quiet addresses are forgotten. */
  private sweep(all: boolean): void {
    const now = this.now();
    for (const [source, t] of this.tallies) {
      if (!all && now - t.since < MINUTE) continue;
      if (t.wrong + t.throttled > 0) {
        this.o.onTally(source, { wrong: t.wrong, throttled: t.throttled });
        if (!all) {
          this.tallies.set(source, { since: now, wrong: 0, throttled: 0 });
          continue;
        }
      }
      this.tallies.delete(source);
    }
  }
}
