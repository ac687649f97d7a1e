import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { type JoiningAuditSink, openJsonlAudit } from '../audit/jsonl.js';
import { requireSecret, urlOrRef } from '../lib/secret-ref.js';
import type { ReadinessCheck } from '../observe/health.js';
import type { Logger } from '../observe/log.js';
import type { PolicyDoc } from '../policy/schema.js';

export interface AuditSinksOptions {
  /** Absolute path of the JSONL file. */
  file: string;
  config: PolicyDoc['audit'];
  /** PostgreSQL URL or reference from the command line; wins over the policy's. */
  databaseUrl?: string;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** Told of each append's duration and of each failure (metrics and alerts hang here). */
  onWrite: (seconds: number) => void;
  onFailure: () => void;
}

export interface AuditSinks {
  /** Where every record goes: the file, then the database mirror; timed, failures reported. */
  sink: JoiningAuditSink;
  /** Resolves when every record so far is in the database mirror (when there is one). */
  flush(): Promise<void>;
  /** `audit` (the file can take records) and, with a mirror, `audit-db` (the database answers). */
  readiness: ReadinessCheck[];
}

/** Opens the audit file (and its database mirror) as the policy says. */
export async function openAuditSinks(o: AuditSinksOptions): Promise<AuditSinks> {
  const cfg = o.config;
  const dbRef = o.databaseUrl ?? cfg?.postgres;
  // pg is loaded only with a mirror configured (issue 22: start-up).
  const mirror = dbRef
    ? await (await import('../audit/postgres.js')).openPgMirror({
        url: urlOrRef(dbRef, o.env, 'audit.postgres'),
        instance: cfg?.instance ?? `${hostname()}:${sha256(o.file).slice(0, 8)}`,
        onError: (e) =>
          o.logger.warn({ err: e.message.split('\n')[0] }, 'audit database write failed; retrying'),
      })
    : undefined;
  const file = openJsonlAudit(o.file, {
    ...(mirror ? { mirror } : {}),
    fsync: cfg?.fsync ?? 'batch',
    ...(cfg?.fsyncIntervalMs ? { fsyncIntervalMs: cfg.fsyncIntervalMs } : {}),
    ...(cfg?.rotateMb ? { rotateBytes: cfg.rotateMb * 1024 * 1024 } : {}),
    ...(cfg?.rotateHours ? { rotateAgeMs: cfg.rotateHours * 3_600_000 } : {}),
    ...(cfg?.retain ? { retain: cfg.retain } : {}),
    ...(cfg?.checkpointEvery ? { checkpointEvery: cfg.checkpointEvery } : {}),
    ...(cfg?.signingKey ? { signingKey: requireSecret(cfg.signingKey, o.env, 'audit.signingKey') } : {}),
    onAnchorMismatch: (detail) =>
      o.logger.warn({ detail }, 'the audit files do not match their head anchor: records may have been cut'),
  });
  const sink: JoiningAuditSink = {
    writeJoined(record) {
      const t0 = performance.now();
      // Timed as the append itself (not the wait for the end of the turn), as `write` is.
      return file.writeJoined(record).then(
        (ms) => {
          o.onWrite(ms / 1000);
          return ms;
        },
        (e: unknown) => {
          o.onFailure();
          o.onWrite((performance.now() - t0) / 1000);
          throw e;
        },
      );
    },
    write(record) {
      const t0 = performance.now();
      try {
        file.write(record);
      } catch (e) {
        o.onFailure();
        throw e;
      } finally {
        o.onWrite((performance.now() - t0) / 1000);
      }
    },
    close: async () => {
      await file.close();
      await mirror?.close();
    },
  };
  const readiness: ReadinessCheck[] = [{ name: 'audit', probe: () => file.writable() }];
  if (mirror) readiness.push({ name: 'audit-db', probe: () => mirror.reachable() });
  return { sink, flush: async () => await mirror?.flush(), readiness };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
