/**
 * Runtime switches that change without a redeploy: per-tool toggles and the kill switch. This is the
 * embedded, single-process store; a shared store (Redis) implements the same interface so several
 * instances see one state. Readers use the synchronous snapshot: the hot path never waits on it.
 */
export type KillSwitch = 'none' | 'read-only' | 'off';
export type Toggle = 'enabled' | 'disabled';

export interface RuntimeSnapshot {
  kill: KillSwitch;
  toggles: ReadonlyMap<string, Toggle>;
}

/** Tool-definition pins kept where every instance sees them (Redis). */
export interface SharedPins {
  /** Pinned definition hashes by tool name, as last read (kept current by the store). */
  get(): ReadonlyMap<string, string>;
  /** Pins these hashes for every instance. */
  set(entries: ReadonlyMap<string, string>): Promise<void>;
}

export interface StateStore {
  snapshot(): RuntimeSnapshot;
  /** Present when approvals are shared by instances; otherwise pins stay in this process or its file. */
  pins?: SharedPins;
  setToggle(tool: string, value: Toggle | undefined): Promise<void>;
  setKill(value: KillSwitch): Promise<void>;
  /** Called after every change, local or (for shared stores) from another instance. */
  onChange(listener: () => void): void;
  close(): Promise<void>;
}

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
export interface ReplayGuard {
  consume(id: string, expiresAt: number): boolean | Promise<boolean>;
}

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
