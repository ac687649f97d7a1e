import type { KillSwitch, ReplayGuard, StateStore, Toggle } from '../model/state.js';

/**
 * Runtime switches that change without a redeploy: per-tool toggles and the kill switch. This is the
 * embedded, single-process store; a shared store (Redis) implements the same interface so several
 * instances see one state. Readers use the synchronous snapshot: the hot path never waits on it.
 */
export function createMemoryState(): StateStore {
  let kill: KillSwitch = 'none';
  const toggles = new Map<string, Toggle>();
  const listeners: Array<() => void> = [];
  const changed = () => {
    for (const l of listeners) l();
  };
  return {
    snapshot: () => ({ kill, toggles: new Map(toggles) }),
    async setToggle(tool, value) {
      if (value === undefined) toggles.delete(tool);
      else toggles.set(tool, value);
      changed();
    },
    async setKill(value) {
      kill = value;
      changed();
    },
    onChange(listener) {
      listeners.push(listener);
    },
    async close() {},
  };
}

/**
 * Single use for confirmation tokens: `consume` answers true the first time an id is seen and false
 * ever after (until it has expired anyway). A shared store makes this hold across instances.
 */
export function createMemoryReplayGuard(maxEntries = 100_000): ReplayGuard {
  const used = new Map<string, number>();
  return {
    consume(id, expiresAt) {
      const now = Date.now();
      if (used.size >= maxEntries) for (const [k, exp] of used) if (exp <= now) used.delete(k);
      // Still full of live tokens: refuse rather than forget one (forgetting would allow a replay).
      if (used.size >= maxEntries) return false;
      if (used.has(id)) return false;
      used.set(id, expiresAt);
      return true;
    },
  };
}
