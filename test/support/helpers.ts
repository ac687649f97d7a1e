import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { listen } from './http.js';
import { SHARED_SPECS, tempTree } from './paths.js';

export { CORPUS, SHARED_SPECS, tempTree } from './paths.js';

/** A static file server on 127.0.0.1, port 0, recording every path requested. */
export async function serveFiles(
  files: Record<string, string | object>,
): Promise<{ url: string; requests: string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const server = await listen((req, res) => {
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
  return { url: server.url, requests, close: server.close };
}

export function minimalSpec(
  paths: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { openapi: '3.0.3', info: { title: 'T', version: '1' }, paths, ...extra };
}

/** A `200` response with a JSON body of `schema` (an operation's `responses`). */
export const jsonOk = (schema: object = { type: 'object' }) => ({
  '200': { description: 'ok', content: { 'application/json': { schema } } },
});

/**
 * A LoadedSpec (as the loader hands it to buildCatalog) of one GET /u/{id} whose parameters are
 * `parameters`: for tests of what the catalogue does with their schemas without loading a file.
 */
export function loadedSpecWith(parameters: unknown[]) {
  return {
    source: { kind: 'file', location: '/x.json', label: 'x.json' },
    rootText: '',
    originalVersion: '3.0.3',
    dialect: '3.0',
    files: 1,
    warnings: [],
    deviations: [],
    doc: minimalSpec({
      '/u/{id}': { get: { operationId: 'getU', parameters, responses: { '200': { description: 'ok' } } } },
    }),
  } as never;
}

/** A spec of the shared corpus (`CORPUS`), loaded with the `$ref` root its entry names. */
export async function loadCorpusSpec(file: string, refRoot?: string) {
  const { loadSpec } = await import('../../src/openapi/load.js');
  return loadSpec(join(SHARED_SPECS, file), refRoot ? { refRoot: join(SHARED_SPECS, refRoot) } : {});
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
  handle: (req: Recorded, res: ServerResponse) => void,
): Promise<{ origin: string; requests: Recorded[]; close: () => Promise<void> }> {
  const requests: Recorded[] = [];
  const server = await listen((req, res) => {
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
  return { origin: server.url, requests, close: server.close };
}
