import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WardenError } from '../errors/index.js';

export interface Listening {
  /** `http://host:port` as clients reach it (IPv6 in brackets). */
  origin: string;
  /** Stops accepting and drops open connections, keep-alive ones included. */
  close(): Promise<void>;
}

/** The options an operator changes to pick another port or interface, named in a bind failure. */
export interface ListenFlags {
  port: string;
  host: string;
}

const GENERIC: ListenFlags = { port: 'another port', host: 'another interface' };

/**
 * Binds a server (port 0: any free port). A bind failure (port taken, no permission, no such
 * address) rejects with a CONFIG_INVALID error that names the port and the option that changes it,
 * so start-up ends with the fix instead of `INTERNAL` or a crash on an unhandled 'error' event.
 */
export async function listen(
  server: Server,
  port: number,
  host: string,
  flags: ListenFlags = GENERIC,
): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    const failed = (e: NodeJS.ErrnoException) => reject(bindError(e, port, host, flags));
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    origin: `http://${shown}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Why a port could not be bound, and what to do about it; anything unknown keeps its errno code. */
export function bindError(
  e: NodeJS.ErrnoException,
  port: number,
  host: string,
  flags: ListenFlags,
): WardenError {
  const use = (flag: string) => (flag.startsWith('-') ? `with ${flag}` : `(${flag})`);
  const at = `port ${port} on ${host}`;
  const message =
    e.code === 'EADDRINUSE'
      ? `${at} is already in use (EADDRINUSE): stop the other process or choose another port ${use(flags.port)}`
      : e.code === 'EACCES'
        ? `no permission to listen on ${at} (EACCES): ports below 1024 need privileges; choose a port above 1023 ${use(flags.port)}`
        : e.code === 'EADDRNOTAVAIL'
          ? `cannot listen on ${at}: ${host} is not an address of this machine (EADDRNOTAVAIL); choose another interface ${use(flags.host)}`
          : e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN'
            ? `cannot listen on ${at}: the host name ${host} does not resolve (${e.code}); choose another interface ${use(flags.host)}`
            : `cannot listen on ${at} (${e.code ?? 'unknown error'})`;
  return new WardenError('CONFIG_INVALID', message, { cause: e });
}
