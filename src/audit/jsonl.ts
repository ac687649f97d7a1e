import { createWriteStream, type WriteStream } from 'node:fs';
import { WardenError } from '../errors.js';

/** One audit record per tool call (allowed, denied or failed). */
export interface AuditRecord {
  kind: 'call';
  time: string;
  id: string;
  tool: string;
  decision: 'allowed' | 'denied';
  /** `ok` or the error code of a denied or failed call. */
  outcome: 'ok' | 'error';
  code?: string;
  principal: string;
  client?: string;
  args?: unknown;
  /** audit: digest — what was sent and received, as hashes and sizes. */
  argsDigest?: string;
  argsBytes?: number;
  responseDigest?: string;
  responseBytes?: number;
  /** audit: full — the result as the agent saw it (masked, redacted), cut to 4 KiB. */
  response?: string;
  /** What was masked, dropped or redacted in this call, by kind (`masked:email`, `aws-access-key`…). */
  redactions?: Record<string, number>;
  upstream?: { method: string; path: string; status?: number; ms?: number; bytes?: number };
  /** Gateway time for the whole call, upstream included. */
  ms: number;
  notes?: string[];
  /** The policy version that decided the call. */
  policyVersion?: number;
  /** How a call that needed confirmation was confirmed. */
  confirmed?: 'token' | 'elicitation' | 'input_required';
}

/** One control-plane change: who changed what, before → after. */
export interface ControlRecord {
  kind: 'control';
  time: string;
  actor: string;
  action: string;
  target?: string;
  before?: unknown;
  after?: unknown;
  detail?: string;
}

export interface AuditSink {
  write(record: AuditRecord | ControlRecord): void;
  close(): Promise<void>;
}

/**
 * Appends JSON Lines to a file (created 0600: the audit names principals and arguments). Writes are
 * buffered by the stream; durability guarantees (fsync, write-ahead) arrive with the full audit.
 */
export async function openJsonlAudit(path: string): Promise<AuditSink> {
  const stream: WriteStream = createWriteStream(path, { flags: 'a', mode: 0o600 });
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', (e) =>
      reject(
        new WardenError(
          'CONFIG_INVALID',
          `cannot open the audit file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
        ),
      ),
    );
  });
  let failed: Error | undefined;
  stream.on('error', (e) => {
    failed = e;
  });
  return {
    write(record) {
      if (failed) throw new WardenError('INTERNAL', 'the audit file cannot be written', { cause: failed });
      stream.write(`${JSON.stringify(record)}\n`);
    },
    close() {
      return new Promise<void>((resolve) => stream.end(() => resolve()));
    },
  };
}
