import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { WardenError } from '../../src/errors/index.js';
import { bindError, listen } from '../../src/lib/listen.js';

describe('listen: a port that cannot be bound is a configuration error naming the port and the fix', () => {
  it('EADDRINUSE names the port, the address and the flag', async () => {
    const held = await listen(createServer(), 0, '127.0.0.1');
    const port = Number(new URL(held.origin).port);
    try {
      const e = await listen(createServer(), port, '127.0.0.1', {
        port: '--admin-port',
        host: '--admin-host',
      }).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(WardenError);
      expect((e as WardenError).code).toBe('CONFIG_INVALID');
      expect((e as WardenError).message).toBe(
        `port ${port} on 127.0.0.1 is already in use (EADDRINUSE): stop the other process or choose another port with --admin-port`,
      );
    } finally {
      await held.close();
    }
  });

  it('EACCES, EADDRNOTAVAIL and an unresolvable host say what to change; unknown codes keep theirs', () => {
    const flags = { port: '--port', host: '--host' };
    const err = (code: string) => Object.assign(new Error(code), { code });
    expect(bindError(err('EACCES'), 80, '0.0.0.0', flags).message).toMatch(
      /no permission to listen on port 80 on 0\.0\.0\.0 \(EACCES\).*above 1023 with --port/,
    );
    expect(bindError(err('EADDRNOTAVAIL'), 3333, '10.9.9.9', flags).message).toMatch(
      /10\.9\.9\.9 is not an address of this machine \(EADDRNOTAVAIL\); choose another interface with --host/,
    );
    expect(bindError(err('ENOTFOUND'), 3333, 'nope.invalid', flags).message).toMatch(
      /does not resolve.*--host/,
    );
    expect(bindError(err('EWHATEVER'), 1, 'h', flags)).toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('a bound server still reports its origin', async () => {
    const s = createServer();
    const l = await listen(s, 0, '127.0.0.1');
    expect(l.origin).toBe(`http://127.0.0.1:${(s.address() as AddressInfo).port}`);
    await l.close();
  });
});
