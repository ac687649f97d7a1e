import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { exitCode, formatError, toProtocolError, toWardenError, WardenError } from '../errors/index.js';
import type { LoadOptions } from '../openapi/load.js';
import { boundHeapGrowth } from '../server/heap-growth.js';
import { type Gateway, type ServeOptions, startGateway } from '../server/serve.js';
import type { EarlyStdio } from '../server/transport.js';
import type { ApiArg } from './api-flags.js';

export interface ServeCliOptions {
  spec?: string;
  /** `--api name=spec[,base-url]`, parsed (cli/api-flags.ts). */
  api?: ApiArg[];
  baseUrl?: string;
  policy?: string;
  env?: 'dev' | 'staging' | 'prod';
  adminPort?: number;
  adminHost?: string;
  watch?: boolean;
  watchSpec?: boolean;
  pins?: string;
  auditFile?: string;
  /** Root of the per-spec default folders (the audit's, when --audit-file is not given). */
  stateDir?: string;
  stdio?: boolean;
  port?: number;
  host?: string;
  allowedHost?: string[];
  timeout?: number;
  maxResponseBytes?: number;
  maxPageSize?: number;
  logLevel?: string;
  remoteRefs?: LoadOptions['remoteRefs'];
  refRoot?: string;
  /** `--no-spec-cache`: false. */
  specCache?: boolean;
  toolsets?: string;
  dynamic?: boolean;
  /** Redis URL (or env:/file: reference): state shared by instances; overrides the policy's `state.redis`. */
  state?: string;
  /** PostgreSQL URL (or env:/file: reference): the audit mirror; overrides the policy's `audit.postgres`. */
  auditDb?: string;
}

export async function runServe(opts: ServeCliOptions, io: { stderr: (s: string) => void }): Promise<void> {
  if (Boolean(opts.stdio) === (opts.port !== undefined))
    throw new WardenError('USAGE', 'choose one transport: --stdio, or --port <n> for Streamable HTTP');
  const transport: ServeOptions['transport'] = opts.stdio
    ? { kind: 'stdio' }
    : {
        kind: 'http',
        port: opts.port!,
        ...(opts.host !== undefined ? { host: opts.host } : {}),
        ...(opts.allowedHost?.length ? { allowedHosts: opts.allowedHost } : {}),
      };
  let gw: Gateway;
  // Over stdio, read from right after the policy: the opening of either era is answered while the
  // spec loads (issue 22: a 2026-07-28 client's version probe, a v1 client's initialize).
  let early: EarlyStdio | undefined;
  const earlyStdio: ServeOptions['earlyStdio'] = {
    opened: (e) => {
      early = e;
    },
  };
  try {
    gw = await start(opts, transport, opts.stdio ? earlyStdio : undefined);
  } catch (e) {
    // Over stdio the client shows only what reaches it on stdout: answer its waiting (or next) request with the reason.
    if (opts.stdio) await failOverStdio(e, io, early);
    throw e;
  }
  // Serving from here on: the old generation is kept near what is live (src/server/heap-growth.ts).
  boundHeapGrowth();
  io.stderr(`mcp-warden: audit file ${gw.auditFile}\n`);
  if (gw.url) io.stderr(`mcp-warden: MCP endpoint ${gw.url}\n`);
  if (gw.adminUrl) io.stderr(`mcp-warden: admin API ${gw.adminUrl}\n`);
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    void gw.close().finally(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // stdio: the client closing our stdin ends the session. When it did so while the spec loaded, the
  // requests it sent before are answered first (stdio closes once they are).
  if (opts.stdio) {
    if (process.stdin.readableEnded) void (early?.closed ?? Promise.resolve()).then(stop);
    else process.stdin.once('end', stop);
  }
}

/** The CLI's options as `startGateway`'s. */
function start(
  opts: ServeCliOptions,
  transport: ServeOptions['transport'],
  earlyStdio: ServeOptions['earlyStdio'],
): Promise<Gateway> {
  return startGateway({
    ...(earlyStdio ? { earlyStdio } : {}),
    ...(opts.spec !== undefined ? { spec: opts.spec } : {}),
    ...(opts.api?.length ? { apis: opts.api } : {}),
    transport,
    ...(opts.baseUrl !== undefined ? { baseUrl: opts.baseUrl } : {}),
    ...(opts.policy !== undefined ? { policy: opts.policy } : {}),
    ...(opts.env !== undefined ? { environment: opts.env } : {}),
    ...(opts.adminPort !== undefined
      ? { admin: { port: opts.adminPort, ...(opts.adminHost ? { host: opts.adminHost } : {}) } }
      : {}),
    ...(opts.watch === false ? { watchPolicy: false } : {}),
    ...(opts.watchSpec ? { watchSpec: true } : {}),
    ...(opts.pins !== undefined ? { pinsFile: opts.pins } : {}),
    ...(opts.auditFile !== undefined ? { auditFile: opts.auditFile } : {}),
    ...(opts.stateDir !== undefined ? { stateDir: opts.stateDir } : {}),
    ...(opts.timeout !== undefined ? { timeoutMs: opts.timeout } : {}),
    ...(opts.maxResponseBytes !== undefined ? { maxResponseBytes: opts.maxResponseBytes } : {}),
    ...(opts.maxPageSize !== undefined ? { maxPageSize: opts.maxPageSize } : {}),
    ...(opts.logLevel !== undefined ? { logLevel: opts.logLevel } : {}),
    ...(opts.toolsets !== undefined ? { toolsets: splitList(opts.toolsets) } : {}),
    ...(opts.dynamic ? { dynamic: true } : {}),
    ...(opts.state !== undefined ? { stateUrl: opts.state } : {}),
    ...(opts.auditDb !== undefined ? { auditDb: opts.auditDb } : {}),
    load: {
      ...(opts.remoteRefs ? { remoteRefs: opts.remoteRefs } : {}),
      ...(opts.refRoot ? { refRoot: opts.refRoot } : {}),
      ...(opts.specCache === false ? { specCache: false } : {}),
    },
  });
}

// How long a failed stdio start waits for the client's first request before it exits anyway.
const STDIO_FAILURE_WAIT_MS = 10_000;

/**
 * A start-up failure over stdio: the reason on stderr, and — since MCP clients show only what comes
 * back on stdout ("connection closed" otherwise) — as the JSON-RPC error, numbered by the one mapper
 * for protocol errors, answering the client's first request (its `initialize`) or, once stdio was
 * read early (`early`: its opening may have been answered), every request still waiting, else the
 * next one. Then the process exits with the error's exit code. Nothing is awaited from a terminal,
 * and at most STDIO_FAILURE_WAIT_MS.
 */
async function failOverStdio(
  e: unknown,
  io: { stderr: (s: string) => void },
  early: EarlyStdio | undefined,
): Promise<never> {
  const err = toWardenError(e);
  io.stderr(`${formatError(err)}\n`);
  // As the other commands do (cli/main.ts): the cause of an internal error, only when asked for.
  if (err.code === 'INTERNAL' && process.env.MCP_WARDEN_DEBUG)
    io.stderr(`${String((err.cause as Error)?.stack ?? err.cause)}\n`);
  const p = toProtocolError(err);
  const answer = (id: string | number) => ({
    jsonrpc: '2.0' as const,
    id,
    error: { code: p.code, message: `mcp-warden could not start: ${formatError(err)}`, data: p.data },
  });
  if (process.stdin.isTTY) {
    // A person at a terminal: nothing to answer.
  } else if (early) await early.fail(answer, STDIO_FAILURE_WAIT_MS);
  else {
    const id = await firstRequestId(process.stdin, STDIO_FAILURE_WAIT_MS);
    if (id !== undefined)
      await new Promise<void>((resolve) =>
        process.stdout.write(`${JSON.stringify(answer(id))}\n`, () => resolve()),
      );
  }
  process.exit(exitCode(err.code));
}

/** The id of the first JSON-RPC request read from `input` (one per line), or undefined at its end or after `ms`. */
function firstRequestId(input: Readable, ms: number): Promise<string | number | undefined> {
  return new Promise((resolve) => {
    const lines = createInterface({ input });
    // Resolved before closing: closing emits 'close', which would otherwise resolve first, empty.
    const done = (id: string | number | undefined) => {
      clearTimeout(timer);
      resolve(id);
      lines.close();
    };
    const timer = setTimeout(() => done(undefined), ms);
    lines.on('close', () => done(undefined));
    lines.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as { id?: unknown; method?: unknown };
        if (typeof msg.method === 'string' && (typeof msg.id === 'string' || typeof msg.id === 'number'))
          done(msg.id);
      } catch {
        // Not JSON: not a request; keep reading.
      }
    });
  });
}

/** `a,b , c` → [a, b, c]; an empty list is a mistake, not "every toolset". */
function splitList(v: string): string[] {
  const items = v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  if (!items.length) throw new WardenError('USAGE', '--toolsets needs at least one toolset name');
  return items;
}
