import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as undici from 'undici';
import { describe, expect, it } from 'vitest';
import { Agent, isFormData, newFormData } from '../../src/lib/undici-parts.js';
import { mcpClient } from '../support/gateway.js';
import { startUpstream } from '../support/helpers.js';
import { tempTree } from '../support/paths.js';
import { serveArgs, stdioTransport } from '../support/stdio.js';

// The gateway takes undici's Agent and FormData from undici's own files, not its index (issue 22: a
// first call loads less). Those must stay the classes undici itself checks for, and the gateway
// must not lean on what only the index adds (it puts `request` and the other API methods on every
// dispatcher): the built CLI loads the files alone.

const ROOT = new URL('../../', import.meta.url).pathname;

describe("undici's parts", () => {
  it('are the very classes undici exports (a moved file fails here)', () => {
    expect(Agent).toBe(undici.Agent);
    const form = newFormData();
    expect(Object.getPrototypeOf(form)).toBe(undici.FormData.prototype);
    expect(isFormData(form)).toBe(true);
    expect(isFormData(new URLSearchParams())).toBe(false);
    expect(isFormData(Buffer.from('x'))).toBe(false);
  });

  it('work in a process that never loads undici’s index: the warm-up request, and a FormData made', () => {
    // The built modules (tsc output) of the warm-up and of the parts, in a fresh process.
    const script = `
      const { warmHttp } = await import(${JSON.stringify(join(ROOT, 'dist/server/warm-code.js'))});
      const { newFormData } = await import(${JSON.stringify(join(ROOT, 'dist/lib/undici-parts.js'))});
      const body = await warmHttp();
      const { createRequire } = await import('node:module');
      const require = createRequire(${JSON.stringify(join(ROOT, 'package.json'))});
      const index = require.resolve('undici');
      console.log(JSON.stringify({ body, indexLoaded: index in require.cache, form: typeof newFormData().append }));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual({
      body: '{"object":"list","data":[]}',
      indexLoaded: false,
      form: 'function',
    });
  });
});

describe('a multipart/form-data body through the built gateway', () => {
  // The CLI bundle: undici's parts alone (its index is in a chunk only other commands load).
  it('reaches the upstream as multipart, every field in it; the call loads neither node:http2 nor tls', async () => {
    const upstream = await startUpstream((_req, res) => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end('{"id":"file_1"}');
    });
    const dir = tempTree({
      'spec.json': {
        openapi: '3.0.3',
        info: { title: 'Files', version: '1' },
        paths: {
          '/files': {
            post: {
              operationId: 'uploadNote',
              requestBody: {
                required: true,
                content: {
                  'multipart/form-data': {
                    schema: {
                      type: 'object',
                      required: ['purpose'],
                      properties: {
                        purpose: { type: 'string' },
                        tags: { type: 'array', items: { type: 'string' } },
                      },
                    },
                  },
                },
              },
              responses: { '201': { description: 'stored' } },
            },
          },
        },
      },
      'policy.yaml':
        'version: 1\nmode: read-write\ncallers:\n  stdio: { scopes: [tools:read, tools:write] }\nrules:\n  - match: { name: uploadNote }\n    enabled: true\n',
    });
    const { transport, stderr } = stdioTransport(
      serveArgs({
        spec: join(dir, 'spec.json'),
        baseUrl: upstream.origin,
        policy: join(dir, 'policy.yaml'),
        auditFile: join(dir, 'audit.jsonl'),
        logLevel: 'warn',
      }),
      {
        NODE_OPTIONS: `--import=${join(ROOT, 'test/e2e/helpers/builtins-at-list-tail.mjs')}`,
        WARDEN_TEST_AFTER_CALL: join(dir, 'builtins.txt'),
      },
    );
    const client = mcpClient();
    try {
      await client.connect(transport);
      const result = (await client.callTool({
        name: 'uploadNote',
        arguments: { body: { purpose: 'dispute_evidence', tags: ['a', 'b'] } },
      })) as { isError?: boolean; content: Array<{ text?: string }> };
      expect(result.isError, `${JSON.stringify(result)}\n${stderr()}`).toBeFalsy();
      expect(upstream.requests).toHaveLength(1);
      const req = upstream.requests[0]!;
      expect(req.method).toBe('POST');
      const boundary = /^multipart\/form-data; boundary=(.+)$/.exec(String(req.headers['content-type']))?.[1];
      expect(boundary, String(req.headers['content-type'])).toBeTruthy();
      const fields = req.body
        .split(`--${boundary}`)
        .map((part) => /name="([^"]+)"\r\n\r\n([^\r]*)\r\n/.exec(part))
        .filter((m) => m !== null)
        .map((m) => `${m[1]}=${m[2]}`);
      expect(fields).toEqual(['purpose=dispute_evidence', 'tags=a', 'tags=b']);
      // undici's h2 client reads node:http2 only to connect over h2, which the gateway never asks for
      // (scripts/bundle-cli.mjs, patch 'undici-lazy-http2'); http is what its h1 client loads.
      const builtins = readFileSync(join(dir, 'builtins.txt'), 'utf8').split('\n');
      expect(builtins).toContain('http');
      for (const m of ['http2', 'tls']) expect(builtins).not.toContain(m);
    } finally {
      await client.close();
      await upstream.close();
    }
  }, 120_000);
});
