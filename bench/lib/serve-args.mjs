// The arguments of a benched `mcp-warden serve --stdio` of a spec (startup, list-arrival,
// catalog-timeline): its upstream is never called — nothing listens on the discard port — and it logs
// warnings only. `extra` is appended (an audit file, pins, a $ref root).

/** The upstream every bench start names. */
export const UPSTREAM = 'http://127.0.0.1:9/';

export function serveArgs(main, spec, extra = []) {
  return [main, 'serve', '--stdio', '--spec', spec, '--base-url', UPSTREAM, '--log-level', 'warn', ...extra];
}
