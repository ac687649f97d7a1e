import type { ServerResponse } from 'node:http';
import { ProtocolError } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import {
  auditDecision,
  ERROR_CODES,
  type ErrorCode,
  exitCode,
  httpStatus,
  isProtocolSurface,
  mappingOf,
  replyHttpError,
  settleCallError,
  toolErrorResult,
  toProtocolError,
  WardenError,
} from '../../src/errors/index.js';

const CODES = Object.keys(ERROR_CODES) as ErrorCode[];
const ALIASES = CODES.filter((c) => mappingOf(c).surfaceAs !== undefined);

/** A response that records what was written. */
function recorder() {
  const out: { status?: number; headers?: Record<string, string>; body?: unknown } = {};
  const res = {
    writeHead(status: number, headers: Record<string, string>) {
      out.status = status;
      out.headers = headers;
      return this;
    },
    end(body: string) {
      out.body = JSON.parse(body);
    },
  } as unknown as ServerResponse;
  return { res, out };
}

/** What a client sees of one error on each surface. */
function surfaces(code: ErrorCode) {
  const e = new WardenError(code, 'm');
  const http = recorder();
  replyHttpError(http.res, 'json-rpc', e);
  const admin = recorder();
  replyHttpError(admin.res, 'admin', e);
  const rpc = toProtocolError(e);
  return { tool: toolErrorResult(e), rpc, http: http.out, admin: admin.out };
}

describe('the error table', () => {
  it.each(CODES)('maps %s on every surface', (code) => {
    const m = mappingOf(code);
    expect([1, 2]).toContain(exitCode(code));
    expect(httpStatus(code)).toBeGreaterThanOrEqual(400);
    expect(httpStatus(code)).toBeLessThan(600);
    // A JSON-RPC error number: the reserved range (-32768..-32000).
    expect(m.rpc).toBeGreaterThanOrEqual(-32768);
    expect(m.rpc).toBeLessThanOrEqual(-32000);
    expect(['protocol', 'tool', 'none']).toContain(m.mcp);
    expect(['allowed', 'denied']).toContain(auditDecision(code));
    expect(m.summary.length).toBeGreaterThan(0);
    const seen = surfaces(code);
    const shown = m.surfaceAs ?? code;
    expect(seen.tool.content[0]!.text.startsWith(`[${shown}]`)).toBe(true);
    expect(seen.rpc.data).toEqual({ code: shown });
    expect(seen.http.body).toMatchObject({ error: { data: { code: shown } } });
    expect(seen.admin.body).toMatchObject({ error: shown });
  });

  it('keeps every status and JSON-RPC number clients see today', () => {
    const pinned: Array<[ErrorCode, number, number]> = [
      ['TOOL_NOT_FOUND', 404, -32602],
      ['HTTP_NOT_FOUND', 404, -32000],
      ['HTTP_FORBIDDEN_HOST', 403, -32000],
      ['HTTP_BODY_TOO_LARGE', 413, -32000],
      ['HTTP_PARSE_ERROR', 400, -32700],
      ['HTTP_BAD_REQUEST', 400, -32600],
      ['AUTH_REQUIRED', 401, -32001],
      ['AUTH_INVALID', 401, -32001],
      ['AUTH_INSUFFICIENT_SCOPE', 403, -32001],
      ['INTERNAL', 500, -32603],
    ];
    for (const [code, status, rpc] of pinned)
      expect([code, httpStatus(code), mappingOf(code).rpc]).toEqual([code, status, rpc]);
  });

  it('gives the admin port the statuses it has always answered', () => {
    const pinned: Array<[ErrorCode, number]> = [
      ['ADMIN_DENIED', 401],
      ['ADMIN_ORIGIN', 403],
      ['ADMIN_CSRF', 403],
      ['ADMIN_NOT_FOUND', 404],
      ['ADMIN_THROTTLED', 429],
      ['ADMIN_NOT_BUILT', 503],
      // A wrong admin request; a policy or spec that cannot be applied.
      ['USAGE', 400],
      ['CONFIG_INVALID', 422],
      ['SPEC_INVALID', 422],
      // A change that cannot be shared or audited is not made: retry later, like any 503.
      ['STATE_UNAVAILABLE', 503],
      ['AUDIT_UNAVAILABLE', 503],
      ['INTERNAL', 500],
    ];
    for (const [code, status] of pinned) expect([code, httpStatus(code)]).toEqual([code, status]);
  });

  it('exits 2 for start-up and usage errors, 1 for the rest', () => {
    for (const code of CODES)
      expect([code, exitCode(code)]).toEqual([
        code,
        code.startsWith('SPEC_') || code === 'CONFIG_INVALID' || code === 'USAGE' ? 2 : 1,
      ]);
  });
});

describe('aliased codes', () => {
  it('exist, and each surfaces exactly as TOOL_NOT_FOUND on every client surface', () => {
    expect(ALIASES.sort()).toEqual(['DENIED_HIDDEN', 'DENIED_SCOPE']);
    const plain = surfaces('TOOL_NOT_FOUND');
    for (const code of ALIASES) {
      const seen = surfaces(code);
      expect(seen.tool).toEqual(plain.tool);
      expect([seen.rpc.code, seen.rpc.message, seen.rpc.data]).toEqual([
        plain.rpc.code,
        plain.rpc.message,
        plain.rpc.data,
      ]);
      expect(seen.http).toEqual(plain.http);
      expect(seen.admin).toEqual(plain.admin);
    }
  });

  it('are audited as denied, under their own code', () => {
    for (const code of ALIASES) expect(auditDecision(code)).toBe('denied');
  });
});

describe('tool result or protocol error', () => {
  it('throws unknown and hidden tools (the error itself), returns everything else as a result', () => {
    for (const code of CODES) {
      const e = new WardenError(code, 'm');
      if (isProtocolSurface(code)) expect(() => settleCallError(e)).toThrow(e);
      else expect(settleCallError(e)).toMatchObject({ isError: true });
    }
    expect(CODES.filter(isProtocolSurface).sort()).toEqual([
      'DENIED_HIDDEN',
      'DENIED_SCOPE',
      'TOOL_NOT_FOUND',
    ]);
  });

  it('answers an unknown tool with InvalidParams, as clients have always seen it', () => {
    const e = toProtocolError(new WardenError('DENIED_SCOPE', 'Unknown tool: x'));
    expect(e).toBeInstanceOf(ProtocolError);
    expect([e.code, e.message, e.data]).toEqual([-32602, 'Unknown tool: x', { code: 'TOOL_NOT_FOUND' }]);
  });

  it('turns anything that is not ours into an internal error without its message', () => {
    const e = toProtocolError(new Error('/etc/secret at line 3'));
    expect([e.code, e.message, e.data]).toEqual([-32603, 'internal error', { code: 'INTERNAL' }]);
    expect(toProtocolError(new WardenError('INTERNAL', 'no target for x')).message).toBe('internal error');
  });
});

describe('the tool result', () => {
  it('puts the code first, then the details, then the excerpt, and keeps a pending confirmation', () => {
    const pending = { message: 'Delete order 7?', token: 't' };
    const e = new WardenError('CONFIRMATION_REQUIRED', 'Confirm first.', {
      details: ['order: 7'],
      text: 'excerpt',
      pending,
    });
    expect(toolErrorResult(e)).toEqual({
      content: [
        { type: 'text', text: '[CONFIRMATION_REQUIRED] Confirm first.\n- order: 7' },
        { type: 'text', text: 'excerpt' },
      ],
      isError: true,
      pendingConfirmation: pending,
    });
  });

  it('never shows an internal error its message', () => {
    expect(toolErrorResult(new WardenError('INTERNAL', 'stack: /srv/x.js')).content[0]!.text).toBe(
      '[INTERNAL] The gateway failed to complete the call.',
    );
  });
});

describe('the HTTP reply', () => {
  it('wraps the MCP endpoint refusal in a JSON-RPC error with id null', () => {
    const { res, out } = recorder();
    replyHttpError(
      res,
      'json-rpc',
      { code: 'AUTH_REQUIRED', message: 'Authentication required.' },
      { 'www-authenticate': 'Bearer x' },
    );
    expect(out).toEqual({
      status: 401,
      headers: { 'content-type': 'application/json', 'www-authenticate': 'Bearer x' },
      body: {
        jsonrpc: '2.0',
        error: { code: -32001, message: 'Authentication required.', data: { code: 'AUTH_REQUIRED' } },
        id: null,
      },
    });
  });

  it('answers the admin port with { error, message } and details when there are some', () => {
    const a = recorder();
    replyHttpError(a.res, 'admin', { code: 'ADMIN_CSRF', message: 'Missing or wrong CSRF token.' });
    expect([a.out.status, a.out.body]).toEqual([
      403,
      { error: 'ADMIN_CSRF', message: 'Missing or wrong CSRF token.' },
    ]);
    const b = recorder();
    replyHttpError(b.res, 'admin', new WardenError('CONFIG_INVALID', 'policy: bad', { details: ['line 3'] }));
    expect([b.out.status, b.out.body]).toEqual([
      422,
      { error: 'CONFIG_INVALID', message: 'policy: bad', details: ['line 3'] },
    ]);
  });

  it("never echoes an internal error's own message or details, on either port", () => {
    const secretish = new WardenError('INTERNAL', 'ENOENT /srv/keys/admin.token', { details: ['at x.js:1'] });
    const a = recorder();
    replyHttpError(a.res, 'admin', secretish);
    expect([a.out.status, a.out.body]).toEqual([500, { error: 'INTERNAL', message: 'Internal error.' }]);
    const b = recorder();
    replyHttpError(b.res, 'json-rpc', secretish);
    expect(JSON.stringify(b.out.body)).not.toContain('/srv/keys');
    expect(b.out.status).toBe(500);
  });
});
