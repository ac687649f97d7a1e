import {
  createServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostHeaderValidation, originValidation, toNodeHandler } from '@modelcontextprotocol/node';
import { createMcpHandler, type McpServerFactory } from '@modelcontextprotocol/server';
import { ERROR_CODES, type ErrorCode } from '../errors/index.js';
import { tooDeep } from '../lib/json-depth.js';
import type { Logger } from '../observe/log.js';
import type { Callers } from './callers.js';

export interface HttpOptions {
  factory: McpServerFactory;
  logger: Logger;
  onAuthFailure?: (code: string) => void;
  /** Authenticates each request; built once the listening address (the resource URL) is known. */
  callers: (url: string) => Callers;
  port: number;
  /** Interface to bind; loopback unless the operator says otherwise. */
  host?: string;
  /** Host names accepted in `Host` (and `Origin`) headers; default: the loopback names. */
  allowedHosts?: string[];
  /** Largest request body read (default 1 MiB). */
  maxBodyBytes?: number;
  /** Deepest JSON nesting accepted in a request body (default 64). */
  maxJsonDepth?: number;
}

export interface RunningHttp {
  url: string;
  server: HttpServer;
  close(): Promise<void>;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

/**
 * Streamable HTTP at `/mcp`. Both protocol eras are served statelessly from one factory, so any
 * instance can answer any request. Before the SDK sees a request it passes, in order: the path,
 * the Host and Origin checks (DNS rebinding), the body size cap and a JSON depth cap.
 */
export async function startHttp(o: HttpOptions): Promise<RunningHttp> {
  const host = o.host ?? '127.0.0.1';
  const maxBody = o.maxBodyBytes ?? 1024 * 1024;
  const maxDepth = o.maxJsonDepth ?? 64;
  const allowed = o.allowedHosts?.length ? o.allowedHosts : LOOPBACK_NAMES;
  const checkHost = hostHeaderValidation(allowed);
  const checkOrigin = originValidation(allowed);
  const mcp = createMcpHandler(o.factory, {
    legacy: 'stateless',
    maxRequestBodySize: maxBody,
    onerror: (e) => o.logger.debug({ err: e.message }, 'mcp request rejected'),
  });
  const handle = toNodeHandler(mcp);
  let callers: Callers | undefined;

  const server = createServer(async (req, res) => {
    try {
      const path = (req.url ?? '').split('?')[0] ?? '';
      if (!callers) return reply(res, 'INTERNAL', 'Starting up; try again.', -32603);
      if (path.startsWith('/.well-known/oauth-protected-resource')) {
        if (!checkHost(req, res)) return;
        if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 'HTTP_NOT_FOUND', 'Not found.');
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
        return res.end(JSON.stringify(callers!.metadata()));
      }
      if (path !== '/mcp') return reply(res, 'HTTP_NOT_FOUND', 'Not found. The MCP endpoint is /mcp.');
      if (!checkHost(req, res) || !checkOrigin(req, res)) return;
      const auth = await callers!.authenticate(req.headers);
      if (!auth.ok) {
        req.resume();
        // Failed authentication is worth seeing (guessing, expired keys), but never with the credential.
        o.onAuthFailure?.(auth.code);
        const level = auth.code === 'AUTH_REQUIRED' ? 'debug' : 'info';
        o.logger[level](
          { code: auth.code, remote: req.socket.remoteAddress },
          'mcp request refused: not authenticated',
        );
        return reply(res, auth.code, auth.message, -32001, { 'www-authenticate': auth.challenge });
      }
      // The SDK hands this to the server factory as `authInfo`; the caller's token is not kept.
      (req as IncomingMessage & { auth?: unknown }).auth = {
        token: '',
        clientId: auth.principal.id,
        scopes: [...auth.principal.scopes],
        extra: { via: auth.via },
      };
      if (req.method !== 'POST') return await handle(req, res);
      const body = await readBody(req, maxBody);
      if (body === undefined)
        return reply(res, 'HTTP_BODY_TOO_LARGE', `Request body larger than ${maxBody} bytes.`);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        return reply(res, 'HTTP_BAD_REQUEST', 'Parse error: the body is not valid JSON.', -32700);
      }
      // JSON-RPC batches were removed from MCP (2025-06-18): one message per request, one audit record per call.
      if (Array.isArray(parsed))
        return reply(
          res,
          'HTTP_BAD_REQUEST',
          'Batched JSON-RPC requests are not supported; send one message per request.',
          -32600,
        );
      if (tooDeep(parsed, maxDepth))
        return reply(res, 'HTTP_BAD_REQUEST', `The JSON body nests deeper than ${maxDepth} levels.`, -32600);
      await handle(req, res, parsed);
    } catch (e) {
      o.logger.error({ err: (e as Error)?.message }, 'http request failed');
      if (!res.headersSent) reply(res, 'INTERNAL', 'Internal error.', -32603);
      else res.destroy();
    }
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 30_000;
  server.requestTimeout = 120_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${shown}:${addr.port}/mcp`;
  try {
    callers = o.callers(url);
  } catch (e) {
    server.close();
    throw e;
  }
  return {
    url,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A JSON-RPC error body with the HTTP status of the code; nothing from the request is echoed. */
function reply(
  res: ServerResponse,
  code: ErrorCode,
  message: string,
  rpc = -32000,
  headers: Record<string, string> = {},
): void {
  res.writeHead(ERROR_CODES[code].http, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: rpc, message, data: { code } }, id: null }));
}

/** Reads the body, or `undefined` once it passes `max` bytes (the rest is not read). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    req.resume();
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > max) {
        over = true;
        chunks.length = 0;
        resolve(undefined);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks, size));
    });
    req.on('error', reject);
  });
}
