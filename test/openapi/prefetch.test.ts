import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exitCode, formatError, WardenError } from '../../src/errors/index.js';
import { loadSpec } from '../../src/openapi/load.js';
import { PREFETCH_MIN_BYTES, worthPrefetching } from '../../src/openapi/prefetch.js';
import { mcpClient } from '../support/gateway.js';
import { jsonOk, minimalSpec, serveFiles, tempTree } from '../support/helpers.js';
import { CLI } from '../support/paths.js';
import { cliEnv, runCli, serveArgs, stdioTransport } from '../support/stdio.js';

// `serve --spec` loads the spec on a worker thread while the main thread loads the gateway's modules
// (src/openapi/prefetch.ts). The gateway must serve the same thing, load the spec once, and report a
// spec that fails exactly as the loader does, at start-up.

const spec = minimalSpec({
  '/items': { get: { operationId: 'listItems', summary: 'List items', responses: jsonOk() } },
});

async function listOver(args: string[]): Promise<string[]> {
  const client = mcpClient();
  await client.connect(stdioTransport(args).transport);
  try {
    return (await client.listTools()).tools.map((t) => t.name);
  } finally {
    await client.close();
  }
}

describe('serve --spec: the spec loaded off the main thread', () => {
  it('only where it pays: a URL, or a YAML file of a megabyte or more', () => {
    const pad = 'x'.repeat(PREFETCH_MIN_BYTES);
    const dir = tempTree({
      'small.yaml': 'openapi: 3.0.3\n',
      'big.yaml': `openapi: 3.0.3\ninfo: {title: T, version: "1", description: ${pad}}\n`,
      'big.json': `\ufeff  {"openapi": "3.0.3", "info": {"title": "T", "version": "1", "description": "${pad}"}}`,
    });
    expect(worthPrefetching('https://api.example.com/openapi.yaml')).toBe(true);
    expect(worthPrefetching(join(dir, 'big.yaml'))).toBe(true);
    expect(worthPrefetching(join(dir, 'small.yaml'))).toBe(false);
    expect(worthPrefetching(join(dir, 'big.json'))).toBe(false);
    expect(worthPrefetching(join(dir, 'missing.yaml'))).toBe(false);
    expect(worthPrefetching(`file://${join(dir, 'big.yaml')}`)).toBe(false);
  });

  it('fetches a URL spec once and serves its tools', async () => {
    const files = await serveFiles({ '/openapi.json': spec });
    try {
      const dir = tempTree({});
      const args = serveArgs({
        spec: `${files.url}/openapi.json`,
        baseUrl: 'http://127.0.0.1:9',
        auditFile: join(dir, 'a.jsonl'),
      });
      expect(await listOver(args)).toEqual(['listItems']);
      // One load, not the worker's and then the main thread's.
      expect(files.requests).toEqual(['/openapi.json']);
    } finally {
      await files.close();
    }
  });

  it('--remote-refs and --ref-root, in either spelling, still use the one load', async () => {
    const files = await serveFiles({ '/openapi.json': spec });
    try {
      const dir = tempTree({});
      const args = serveArgs({
        spec: `${files.url}/openapi.json`,
        baseUrl: 'http://127.0.0.1:9',
        auditFile: join(dir, 'a.jsonl'),
        extra: ['--remote-refs=none', '--ref-root', dir],
      });
      expect(await listOver(args)).toEqual(['listItems']);
      expect(files.requests).toEqual(['/openapi.json']);
    } finally {
      await files.close();
    }
  });

  it('a spec that fails to load stops the start with the loader’s own error (code, file, line)', async () => {
    const dir = tempTree({});
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'openapi: 3.0.3\ninfo: {title: T, version: "1"}\npaths:\n  /a: [unclosed\n');
    let expected: WardenError | undefined;
    try {
      await loadSpec(bad);
    } catch (e) {
      expected = e as WardenError;
    }
    expect(expected).toBeInstanceOf(WardenError);
    expect(expected!.code).toBe('SPEC_PARSE');
    const r = runCli(
      [
        'serve',
        '--spec',
        bad,
        '--base-url',
        'http://127.0.0.1:9',
        '--audit-file',
        join(dir, 'a.jsonl'),
        '--port',
        '0',
      ],
      {},
    );
    expect(r.code).toBe(exitCode('SPEC_PARSE'));
    expect(r.stderr).toContain(formatError(expected!));
    expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/);
  });

  it('a spec URL that fails is fetched again by the main thread, which reports it', async () => {
    const files = await serveFiles({ '/openapi.json': '{"openapi": "3.0.3", "info": ' });
    try {
      const dir = tempTree({});
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [
            CLI,
            'serve',
            '--spec',
            `${files.url}/openapi.json`,
            '--base-url',
            'http://127.0.0.1:9',
            '--audit-file',
            join(dir, 'a.jsonl'),
            '--port',
            '0',
          ],
          { env: cliEnv() },
          (err, _out, stderr) =>
            resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr }),
        );
      });
      expect(r.code).toBe(exitCode('SPEC_PARSE'));
      expect(r.stderr).toMatch(/SPEC_PARSE.*invalid JSON/);
      expect(files.requests).toEqual(['/openapi.json', '/openapi.json']);
    } finally {
      await files.close();
    }
  });
});
