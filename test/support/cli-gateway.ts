import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { spawnCli } from './stdio.js';
import { waitFor } from './wait.js';

export interface CliGatewayOptions {
  /** Holds `warden.yaml` (a `tempTree`), and `spec.json` and `audit.jsonl` unless given below. */
  dir: string;
  /** The spec file (default `<dir>/spec.json`). */
  spec?: string;
  /** The audit file (default `<dir>/audit.jsonl`). */
  auditFile?: string;
  baseUrl: string;
  port: number;
  adminPort?: number;
  env?: NodeJS.ProcessEnv;
  logLevel?: string;
  /** Names the instance in failure messages. */
  name?: string;
  /** How long it may take to be ready (ms). */
  timeout?: number;
}

export interface CliGateway {
  child: ChildProcessWithoutNullStreams;
  origin: string;
  mcpUrl: string;
  adminUrl: string | undefined;
  auditFile: string;
  /** Everything the process has written to stderr so far. */
  readonly stderr: string;
  /** SIGTERM, then waits for the process to close (nothing if it has ended already). */
  stop(): Promise<void>;
}

/**
 * The built CLI serving Streamable HTTP (and the admin API when `adminPort` is given), ready: its
 * `/readyz` answered 200. Fails at once if the process exits while starting, with the end of its log
 * (never a secret: the log is redacted).
 */
export async function startCliGateway(o: CliGatewayOptions): Promise<CliGateway> {
  const auditFile = o.auditFile ?? join(o.dir, 'audit.jsonl');
  const child = spawnCli(
    [
      'serve',
      '--spec',
      o.spec ?? join(o.dir, 'spec.json'),
      '--base-url',
      o.baseUrl,
      '--policy',
      join(o.dir, 'warden.yaml'),
      '--audit-file',
      auditFile,
      '--port',
      String(o.port),
      ...(o.adminPort !== undefined ? ['--admin-port', String(o.adminPort)] : []),
      ...(o.logLevel !== undefined ? ['--log-level', o.logLevel] : []),
    ],
    o.env,
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const origin = `http://127.0.0.1:${o.port}`;
  const gateway: CliGateway = {
    child,
    origin,
    mcpUrl: `${origin}/mcp`,
    adminUrl: o.adminPort !== undefined ? `http://127.0.0.1:${o.adminPort}` : undefined,
    auditFile,
    get stderr() {
      return stderr;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const closed = new Promise((r) => child.once('close', r));
      child.kill('SIGTERM');
      await closed;
    },
  };
  const name = o.name ?? 'the gateway';
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`${name} exited (${code})`))),
  );
  exited.catch(() => {});
  const ready = waitFor(async () => (await fetch(`${origin}/readyz`)).ok, {
    what: `${name} to be ready`,
    timeout: o.timeout ?? 30_000,
    interval: 100,
  });
  await Promise.race([ready, exited]).catch(async (e: Error) => {
    await gateway.stop();
    throw new Error(`${e.message}; its log ends: ${stderr.slice(-800)}`);
  });
  return gateway;
}
