import { type Logger, pino } from 'pino';
import { detectorFor } from '../protect/detect.js';
import type { Scrubber } from './scrub.js';

export type { Logger };

const LOG_DETECTOR = detectorFor([]);

/**
 * The process logger: JSON lines on stderr (stdout belongs to the MCP stdio transport). Every
 * serialised line, at every level, has the known credential values scrubbed (including ones learnt
 * after start-up) and then secrets and personal data redacted by value, whatever field they hid in.
 */
export function createLogger(opts: { level?: string; scrubber?: Scrubber } = {}): Logger {
  const scrubber = opts.scrubber;
  return pino(
    {
      level: opts.level ?? 'info',
      base: { name: 'mcp-warden' },
      hooks: {
        streamWrite: (s: string) => LOG_DETECTOR.redact(scrubber && !scrubber.empty ? scrubber.scrub(s) : s),
      },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
