import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * What readiness names when it fails: the catalogue, the audit file, its database mirror, the shared
 * state, and in an API set each API (`api:<name>`).
 */
export type Dependency = 'spec' | 'audit' | 'audit-db' | 'state' | `api:${string}`;

/** One named readiness check. */
export interface ReadinessCheck {
  name: Dependency;
  /**
   * An optional dependency (an API of a set with `required: false`): when it fails, readiness names
   * it under `degraded` and stays ready, since the rest is served.
   */
  optional?: boolean;
  /** True when the dependency can be used now; false, a throw or no answer in time is "not ready". */
  probe(): boolean | Promise<boolean>;
}

export interface HealthOptions {
  /** How long one check's answer is reused (default 1000 ms): a probe storm is not a Redis storm. */
  cacheMs?: number;
  /** A check with no answer by then counts as failing (default 500 ms), so a hung dependency is "not ready". */
  timeoutMs?: number;
  /** Told when the set of failing (or degraded) dependencies changes (for the log). */
  onChange?: (failing: readonly Dependency[], degraded: readonly Dependency[]) => void;
  now?: () => number;
}

export const LIVENESS_PATH = '/healthz';
export const READINESS_PATH = '/readyz';

/** Whether `path` is one of the two probes (their answers are the same on every port). */
export function isProbePath(path: string): boolean {
  return path === LIVENESS_PATH || path === READINESS_PATH;
}

interface Entry {
  check: ReadinessCheck;
  ok: boolean;
  /** When `ok` was learnt; undefined until the first answer. */
  at: number | undefined;
  running: Promise<boolean> | undefined;
}

/**
 * Liveness and readiness, answered alike on the MCP port and the admin port. Liveness is "this
 * process answers"; readiness runs every named check (in parallel, each cached for `cacheMs`, each
 * bounded by `timeoutMs`) and names the ones failing. The answers say up or down and which dependency,
 * nothing else: no version, no tool, no error text, no host name, so they need no authentication.
 */
export class Health {
  private readonly entries: Entry[];
  private readonly cacheMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private last = '|';

  constructor(
    checks: readonly ReadinessCheck[] = [],
    private readonly o: HealthOptions = {},
  ) {
    this.entries = checks.map((check) => ({ check, ok: false, at: undefined, running: undefined }));
    this.cacheMs = o.cacheMs ?? 1000;
    this.timeoutMs = o.timeoutMs ?? 500;
    this.now = o.now ?? Date.now;
  }

  /** The dependencies failing now (empty: ready), in the order the checks were given. */
  async failing(): Promise<Dependency[]> {
    return (await this.state()).failing;
  }

  /** The required dependencies failing (not ready when any), and the optional ones (`degraded`). */
  async state(): Promise<{ failing: Dependency[]; degraded: Dependency[] }> {
    const results = await Promise.all(this.entries.map((e) => this.ask(e)));
    const down = this.entries.filter((_, i) => !results[i]).map((e) => e.check);
    const failing = down.filter((c) => !c.optional).map((c) => c.name);
    const degraded = down.filter((c) => c.optional).map((c) => c.name);
    const key = [...failing, '|', ...degraded].join(',');
    if (key !== this.last) {
      this.last = key;
      this.o.onChange?.(failing, degraded);
    }
    return { failing, degraded };
  }

  /**
   * Answers `GET`/`HEAD` of `/healthz` and `/readyz` (with `headers` added, e.g. a port's security
   * headers); false for any other request, which the port handles as usual.
   */
  async answer(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    headers: Readonly<Record<string, string>> = {},
  ): Promise<boolean> {
    if (!isProbePath(path) || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    let status = 200;
    let body: object = { status: 'ok' };
    if (path === READINESS_PATH) {
      const { failing, degraded } = await this.state();
      status = failing.length ? 503 : 200;
      body = {
        ...(failing.length ? { status: 'not ready', failing } : { status: 'ready' }),
        ...(degraded.length ? { degraded } : {}),
      };
    }
    const text = JSON.stringify(body);
    req.resume();
    res.writeHead(status, {
      ...headers,
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(text)),
      'cache-control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : text);
    return true;
  }

  /** One check's answer: cached, or the one already running, or a new run bounded by the timeout. */
  private ask(e: Entry): Promise<boolean> {
    if (e.at !== undefined && this.now() - e.at < this.cacheMs) return Promise.resolve(e.ok);
    e.running ??= this.run(e.check).then((ok) => {
      e.ok = ok;
      e.at = this.now();
      e.running = undefined;
      return ok;
    });
    return e.running;
  }

  private run(check: ReadinessCheck): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      // Fail closed: a check that hangs is a dependency that does not answer.
      const timer = setTimeout(() => resolve(false), this.timeoutMs);
      timer.unref();
      const done = (ok: boolean) => {
        clearTimeout(timer);
        resolve(ok);
      };
      try {
        Promise.resolve(check.probe()).then(
          (ok) => done(ok === true),
          () => done(false),
        );
      } catch {
        done(false);
      }
    });
  }
}
