import { type Logger, pino } from 'pino';
import type { Scrubber } from './scrub.js';

export type { Logger };

/**
 * The process logger: JSON lines on stderr (stdout belongs to the MCP stdio transport), with every
 * known credential value scrubbed from the serialised line, whatever field it hid in.
 */
export function createLogger(opts: { level?: string; scrubber?: Scrubber } = {}): Logger {
  const scrubber = opts.scrubber;
  return pino(
    {
      level: opts.level ?? 'info',
      base: { name: 'mcp-warden' },
      ...(scrubber && !scrubber.empty ? { hooks: { streamWrite: (s: string) => scrubber.scrub(s) } } : {}),
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
