/**
 * Runtime switches that change without a redeploy: per-tool toggles and the kill switch. The embedded
 * store keeps them in this process; a shared store (Redis) implements the same interface so several
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

export interface ReplayGuard {
  consume(id: string, expiresAt: number): boolean | Promise<boolean>;
}
