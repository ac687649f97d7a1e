import { Agent } from './undici-parts.js';

export interface HttpAgentOptions {
  /** Sockets per origin (default 64). */
  connections?: number;
  /** Longest wait for a TCP/TLS connection (default 5 s). */
  connectTimeoutMs?: number;
}

/**
 * The gateway's one outbound connection pool: pooled keep-alive sockets for every upstream origin,
 * built once at start-up and shared by every pipeline a spec reload replaces. Redirects are not
 * followed (undici's Agent has no redirect interceptor unless one is composed in).
 */
export function createHttpAgent(o: HttpAgentOptions = {}): Agent {
  return new Agent({
    connections: o.connections ?? 64,
    keepAliveTimeout: 30_000,
    connectTimeout: o.connectTimeoutMs ?? 5_000,
  });
}
