import type { CompletionBus, FlowCompleted } from '../state/redis-completions.js';

interface Waiting {
  principal: string;
  expiresAt: number;
  notify: () => Promise<void>;
}

const MAX_WAITING = 10_000;

/**
 * `notifications/elicitation/complete` (MCP 2025-11-25 URL elicitation): the connect links this
 * instance sent to its clients as URL elicitations, each waiting for its flow's callback. The
 * callback may land here or, with shared state, on any instance: then it is published on Redis and
 * the instance holding the session tells its client. Without shared state it is local only.
 */
export class ElicitationCompletions {
  private readonly waiting = new Map<string, Waiting>();
  private readonly now: () => number;

  constructor(private readonly o: { bus?: CompletionBus; now?: () => number } = {}) {
    this.now = o.now ?? Date.now;
    o.bus?.onMessage((m) => void this.deliver(m));
  }

  /** A URL elicitation for flow `id` was sent to a client of this instance; `notify` tells it. */
  expect(id: string, principal: string, expiresAt: number, notify: () => Promise<void>): void {
    const now = this.now();
    for (const [k, w] of this.waiting) if (w.expiresAt <= now) this.waiting.delete(k);
    // Bounded like the pending flows: the oldest go first.
    while (this.waiting.size >= MAX_WAITING) this.waiting.delete(this.waiting.keys().next().value!);
    this.waiting.set(id, { principal, expiresAt, notify });
  }

  /** Flow `id` of `principal` completed on this instance: tell the client that was asked, here or elsewhere. */
  async completed(m: FlowCompleted): Promise<void> {
    if (await this.deliver(m)) return;
    // Best effort: the connection is stored either way; the client only misses the hint.
    await this.o.bus?.publish(m).catch(() => undefined);
  }

  private async deliver(m: FlowCompleted): Promise<boolean> {
    const w = this.waiting.get(m.id);
    // The principal must match too: a flow id alone never reaches another caller's session.
    if (!w || w.principal !== m.principal) return false;
    this.waiting.delete(m.id);
    try {
      await w.notify();
    } catch {
      // The client went away: nothing to tell.
    }
    return true;
  }

  async close(): Promise<void> {
    this.waiting.clear();
    await this.o.bus?.close();
  }
}
