import type { JSONRPCMessage, McpServerFactory } from '@modelcontextprotocol/server';
import type { Controller } from '../control/controller.js';
import type { Health } from '../observe/health.js';
import type { Logger } from '../observe/log.js';
import type { Observers } from '../observe/observers.js';
import type { PolicyDoc } from '../policy/schema.js';
import { Callers } from './callers.js';
import type { HttpOptions } from './http.js';
import type { ListChanges } from './list-changes.js';
import { CappedStdioTransport, type Refusal } from './stdio-frames.js';

export type TransportOptions =
  | { kind: 'stdio' }
  | { kind: 'http'; port: number; host?: string; allowedHosts?: string[] };

export interface RunningTransport {
  /** The MCP endpoint when serving HTTP. */
  url?: string;
  /**
   * Stdio: runs `f` once stdout has taken the answers sent so far and those being made now
   * (CappedStdioTransport.afterWritten). Absent over HTTP: each answer goes out on its own socket.
   */
  afterWritten?(f: () => void): void;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** What a stdio client may have answered before the gateway is ready: the opening of either era. */
const EARLY_METHODS = new Set(['initialize', 'notifications/initialized', 'server/discover', 'ping']);

/** Stdio read from before the gateway is ready (openEarlyStdio). */
export interface EarlyStdio {
  /** The gateway is ready: the held messages are served in order, then every one as it comes. */
  ready(): RunningTransport;
  /** The gateway could not start: held requests (or the next one, within `waitMs`) get `refusal`. */
  fail(refusal: Refusal, waitMs: number): Promise<void>;
  /** Settles when stdio has closed: after stdin's end, once the requests held until then are answered. */
  readonly closed: Promise<void>;
  /** As RunningTransport.afterWritten. */
  afterWritten(f: () => void): void;
}

/**
 * Stdio served by the SDK from before the gateway is ready (issue 22: a client's `initialize`, or a
 * 2026-07-28 client's version probe, waited for a whole spec load). `initialize`, `server/discover`
 * and `ping` reach the server at once — when `canAnswer()` says its answers can already be the
 * ready server's (serve.ts: the title is known) — and everything else waits in the transport until
 * `ready()`. `factory` is asked for a server only once a message goes through.
 */
export async function openEarlyStdio(o: {
  factory: McpServerFactory;
  canAnswer: () => boolean;
  logger: Logger;
  maxBodyBytes?: number;
}): Promise<EarlyStdio> {
  const { serveStdio } = await import('@modelcontextprotocol/server/stdio');
  const early = (m: JSONRPCMessage) => {
    const method = (m as { method?: unknown }).method;
    return typeof method === 'string' && EARLY_METHODS.has(method) && o.canAnswer();
  };
  const transport = cappedStdio(o, { early });
  const handle = serveStdio(o.factory, {
    legacy: 'serve',
    transport,
    onerror: (e) => o.logger.debug({ err: e.message }, 'stdio message rejected'),
  });
  return {
    ready: () => {
      transport.release();
      return { close: () => handle.close(), afterWritten: (f) => transport.afterWritten(f) };
    },
    fail: (refusal, waitMs) => transport.fail(refusal, waitMs),
    closed: transport.whenClosed,
    afterWritten: (f) => transport.afterWritten(f),
  };
}

function cappedStdio(
  o: { logger: Logger; maxBodyBytes?: number },
  hold?: ConstructorParameters<typeof CappedStdioTransport>[0]['hold'],
): CappedStdioTransport {
  // The HTTP caps (body size, depth) per frame, before the SDK parses or dispatches anything.
  return new CappedStdioTransport({
    stdin: process.stdin,
    stdout: process.stdout,
    ...(o.maxBodyBytes !== undefined ? { maxFrameBytes: o.maxBodyBytes } : {}),
    onRefused: (code, answered) => o.logger.info({ code, answered }, 'stdio frame refused'),
    ...(hold ? { hold } : {}),
  });
}

/** Streamable HTTP (with its callers) or stdio, both eras of the protocol from one server factory. */
export async function startTransport(o: {
  transport: TransportOptions;
  factory: McpServerFactory;
  doc: PolicyDoc;
  controller: Controller;
  observers: Observers;
  logger: Logger;
  maxBodyBytes?: number;
  /** `/healthz` and `/readyz` on the HTTP port. */
  health?: Health;
  /** Who is told of tool-list changes (HTTP: GET and `subscriptions/listen` streams, and their bounds). */
  changes?: ListChanges;
  /** Per-user OAuth's `/oauth/connect` and `/oauth/callback` (HTTP only: over stdio there is no port for the browser). */
  oauthCallback?: HttpOptions['oauthCallback'];
}): Promise<RunningTransport> {
  if (o.transport.kind === 'stdio') {
    const { serveStdio } = await import('@modelcontextprotocol/server/stdio');
    const transport = cappedStdio(o);
    const handle = serveStdio(o.factory, {
      legacy: 'serve',
      transport,
      onerror: (e) => o.logger.debug({ err: e.message }, 'stdio message rejected'),
    });
    return { close: () => handle.close(), afterWritten: (f) => transport.afterWritten(f) };
  }
  const host = o.transport.host ?? '127.0.0.1';
  // Loaded only here: a stdio gateway has no use for the HTTP stack (issue 22: start-up).
  const { startHttp } = await import('./http.js');
  let callers: Callers | undefined;
  const http = await startHttp({
    factory: o.factory,
    logger: o.logger,
    port: o.transport.port,
    host,
    onAuthFailure: (code) => o.observers.authFailure(code),
    // Built once the listening address is known: it is the resource callers' tokens must name.
    callers: (listening) => {
      callers = new Callers({
        callers: o.doc.callers,
        environment: o.controller.environment(),
        resource: o.doc.callers?.resource ?? listening,
        loopback: isLoopback(host),
        scopesInUse: () => [...new Set(o.controller.decisions().flatMap((d) => d.scopes))],
        warn: (m) => o.logger.warn(m),
      });
      return callers;
    },
    ...(o.transport.allowedHosts ? { allowedHosts: o.transport.allowedHosts } : {}),
    ...(o.maxBodyBytes !== undefined ? { maxBodyBytes: o.maxBodyBytes } : {}),
    ...(o.health ? { health: o.health } : {}),
    ...(o.changes ? { changes: o.changes } : {}),
    ...(o.oauthCallback ? { oauthCallback: o.oauthCallback } : {}),
  });
  // Not worded "MCP endpoint <url>": scripts read the endpoint from the CLI's own stderr line of that
  // form, and this line may come first.
  o.logger.info({ url: http.url }, `MCP over Streamable HTTP (2025-11-25 and 2026-07-28) at ${http.url}`);
  return {
    url: http.url,
    close: async () => {
      await http.close();
      callers?.close();
    },
  };
}
