import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const SHARED_SPECS = new URL('../../../shared/specs/', import.meta.url).pathname;

/** Writes files (path → content; objects as JSON) into a fresh temp directory and returns it. */
export function tempTree(files: Record<string, string | object>): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-test-'));
  for (const [rel, content] of Object.entries(files)) {
    const p = join(dir, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

/** A static file server on 127.0.0.1, port 0, recording every path requested. */
export async function serveFiles(
  files: Record<string, string | object>,
): Promise<{ url: string; requests: string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const body = files[(req.url ?? '').split('?')[0]!];
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(typeof body === 'string' ? body : JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export function minimalSpec(
  paths: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { openapi: '3.0.3', info: { title: 'T', version: '1' }, paths, ...extra };
}

/** Loads an inline spec object through the real loader and builds its catalogue. */
export async function catalogOf(spec: Record<string, unknown>) {
  const { loadSpec } = await import('../../src/openapi/load.js');
  const { buildCatalog } = await import('../../src/catalog/build.js');
  const dir = tempTree({ 'spec.json': spec });
  return buildCatalog(await loadSpec(join(dir, 'spec.json')));
}

export interface Recorded {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A real upstream on 127.0.0.1:0; `handle` answers, every request is recorded first. */
export async function startUpstream(
  handle: (req: Recorded, res: import('node:http').ServerResponse) => void,
): Promise<{ origin: string; requests: Recorded[]; close: () => Promise<void> }> {
  const requests: Recorded[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Recorded = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: { ...req.headers },
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(r);
      handle(r, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** Retries a check until it passes or `ms` runs out (file watching and pub/sub are asynchronous). */
export async function eventually(check: () => Promise<void> | void, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      await check();
      return;
    } catch (e) {
      if (Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
