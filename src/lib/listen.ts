import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Listening {
  /** `http://host:port` as clients reach it (IPv6 in brackets). */
  origin: string;
  /** Stops accepting and drops open connections, keep-alive ones included. */
  close(): Promise<void>;
}

/**
 * Binds a server (port 0: any free port). A bind failure (port taken, no permission) rejects with
 * Node's error, so start-up can report it instead of crashing on an unhandled 'error' event.
 */
export async function listen(server: Server, port: number, host: string): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
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
