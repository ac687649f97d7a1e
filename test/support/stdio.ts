import { type ChildProcessWithoutNullStreams, execFile, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { CLI, tempTree } from './paths.js';
import { SHOP_SPEC, type Shop, shopEnv, startShop } from './shop.js';

/** An environment with only PATH and `extra`: the CLI sees nothing of the test runner's. */
export const cliEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH ?? '',
  ...extra,
});

export interface ServeArgs {
  spec: string;
  baseUrl: string;
  policy?: string;
  auditFile: string;
  logLevel?: string;
  /** More flags, after the others. */
  extra?: string[];
}

/** `serve --stdio` with its flags, in the order the CLI documents them. */
export function serveArgs(o: ServeArgs): string[] {
  return [
    'serve',
    '--stdio',
    '--spec',
    o.spec,
    '--base-url',
    o.baseUrl,
    ...(o.policy !== undefined ? ['--policy', o.policy] : []),
    '--audit-file',
    o.auditFile,
    ...(o.logLevel !== undefined ? ['--log-level', o.logLevel] : []),
    ...(o.extra ?? []),
  ];
}

/**
 * A stdio transport that spawns the built CLI (PATH and `env` only), for a real MCP client;
 * `stderr()` is everything the gateway logged so far.
 */
export function stdioTransport(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { transport: StdioClientTransport; stderr: () => string } {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, ...args],
    env: cliEnv(env) as Record<string, string>,
    stderr: 'pipe',
  });
  let logs = '';
  transport.stderr?.on('data', (d: Buffer) => {
    logs += d.toString();
  });
  return { transport, stderr: () => logs };
}

export interface StdioShop {
  shop: Shop;
  /** Where the audit goes (the policy, if any, is warden.yaml beside it). */
  auditFile: string;
  policyFile: string;
  /** What the gateway logged so far. */
  stderr(): string;
  /** Closes the client (which ends the child), then the shop if it was started here. */
  close(): Promise<void>;
}

/**
 * Connects `client` to the built CLI serving the demo shop over stdio: the way a desktop agent runs
 * the gateway. The shop is started unless one is given; files go to a fresh temp directory.
 */
export async function connectShopStdio(
  client: Client,
  o: { policy?: string; shop?: Shop; auditFile?: string; logLevel?: string } = {},
): Promise<StdioShop> {
  const shop = o.shop ?? (await startShop());
  const dir = tempTree(o.policy !== undefined ? { 'warden.yaml': o.policy } : {});
  const policyFile = join(dir, 'warden.yaml');
  const auditFile = o.auditFile ?? join(dir, 'a.jsonl');
  const { transport, stderr } = stdioTransport(
    serveArgs({
      spec: SHOP_SPEC,
      baseUrl: shop.url,
      ...(o.policy !== undefined ? { policy: policyFile } : {}),
      auditFile,
      ...(o.logLevel ? { logLevel: o.logLevel } : {}),
    }),
    shopEnv(shop),
  );
  await client.connect(transport);
  return {
    shop,
    auditFile,
    policyFile,
    stderr,
    close: async () => {
      await client.close();
      if (!o.shop) await shop.close();
    },
  };
}

/** The built CLI as a child speaking raw JSON-RPC on stdin/stdout (for tests below the client). */
export function spawnCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  stderr: 'pipe' | 'ignore' = 'pipe',
): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [CLI, ...args], {
    env: cliEnv(env),
    stdio: ['pipe', 'pipe', stderr],
  }) as ChildProcessWithoutNullStreams;
}

/** Hands each JSON message written to `stream` (one per line; blank lines skipped) to `onMessage`. */
export function onJsonLines(stream: Readable, onMessage: (msg: Record<string, unknown>) => void): void {
  let buf = '';
  stream.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim()) onMessage(JSON.parse(line));
    }
  });
}

/** Writes one JSON-RPC message (jsonrpc: 2.0 added) to the child's stdin. */
export function sendJson(child: ChildProcessWithoutNullStreams, msg: object): void {
  child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...msg })}\n`);
}

/** Runs the CLI to its end. `env` given: PATH and `env` only; absent: the runner's environment. */
export function runCli(
  args: string[],
  env?: NodeJS.ProcessEnv,
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 256 * 1024 * 1024,
    ...(env ? { env: cliEnv(env) } : {}),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI without blocking the event loop (needed when it talks to a gateway in this process). */
export function runCliAsync(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, [CLI, ...args], { env });
}
