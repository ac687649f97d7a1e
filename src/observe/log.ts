import { type Logger, pino } from 'pino';
import type { Redactor } from '../protect/redactor.js';

export type { Logger };

/**
 * The process logger: JSON lines on stderr (stdout belongs to the MCP stdio transport). Every
 * serialised line, at every level, goes through the redactor: known credential values (including
 * ones learnt after start-up), then secrets and personal data by value, whatever field they hid in.
 */
export function createLogger(opts: { level?: string; redactor: Redactor }): Logger {
  const { redactor } = opts;
  return pino(
    {
      level: opts.level ?? 'info',
      base: { name: 'mcp-warden' },
      hooks: { streamWrite: (s: string) => redactor.text(s) },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
