import pino from 'pino';
import { parsePolicy } from '../../src/policy/load.js';
import { Callers } from '../../src/server/callers.js';
import { type RunningHttp, startHttp } from '../../src/server/http.js';

/**
 * The Streamable HTTP endpoint alone (no gateway around it) on 127.0.0.1:0, its callers read from a
 * policy's `callers` on loopback: what the fast-lane tests drive with raw requests and real clients.
 */
export function startEndpoint(
  factory: Parameters<typeof startHttp>[0]['factory'],
  o: { policy?: string; scopesInUse?: string[]; fastLane?: boolean; maxBodyBytes?: number } = {},
): Promise<RunningHttp> {
  const doc = parsePolicy(o.policy ?? 'version: 1\n', 'w.yaml').doc;
  const scopes = o.scopesInUse ?? [];
  return startHttp({
    factory,
    logger: pino({ level: 'silent' }),
    callers: (url) =>
      new Callers({
        callers: doc.callers,
        environment: 'dev',
        resource: url,
        loopback: true,
        scopesInUse: () => scopes,
        warn: () => {},
      }),
    port: 0,
    ...(o.maxBodyBytes !== undefined ? { maxBodyBytes: o.maxBodyBytes } : {}),
    ...(o.fastLane !== undefined ? { fastLane: o.fastLane } : {}),
  });
}
