import type { Redis } from 'ioredis';

/** One completed connect flow: its id (the URL elicitation's `elicitationId`) and whose it was. */
export interface FlowCompleted {
  id: string;
  principal: string;
}

/** Tells every instance that a connect flow completed, so the one holding the client's session can say so. */
export interface CompletionBus {
  publish(m: FlowCompleted): Promise<void>;
  onMessage(listener: (m: FlowCompleted) => void): void;
  close(): Promise<void>;
}

/**
 * Completed connect flows on the shared Redis, on `<prefix>:elicitation-complete` (pub/sub, with a
 * subscriber connection of its own). Best effort: a message missed while Redis is down only means
 * the client is not told; the flow itself is complete.
 */
export async function createRedisCompletions(o: { client: Redis; prefix: string }): Promise<CompletionBus> {
  const channel = `${o.prefix}:elicitation-complete`;
  const sub = o.client.duplicate({ lazyConnect: true });
  sub.on('error', () => {});
  const listeners: Array<(m: FlowCompleted) => void> = [];
  sub.on('message', (ch: string, raw: string) => {
    if (ch !== channel) return;
    let m: unknown;
    try {
      m = JSON.parse(raw);
    } catch {
      return;
    }
    const { id, principal } = (m ?? {}) as Record<string, unknown>;
    if (typeof id !== 'string' || typeof principal !== 'string') return;
    for (const l of listeners) l({ id, principal });
  });
  await sub.connect();
  await sub.subscribe(channel);
  return {
    async publish(m) {
      await o.client.publish(channel, JSON.stringify({ id: m.id, principal: m.principal }));
    },
    onMessage(listener) {
      listeners.push(listener);
    },
    async close() {
      sub.disconnect();
    },
  };
}
