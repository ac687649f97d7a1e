import { readFile, stat } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WardenError } from '../errors/error.js';

export interface SourceRef {
  kind: 'file' | 'url';
  /** Absolute file path, or the URL as given. */
  location: string;
  /** The base URL `$ref`s are resolved against (file:// or http(s)://). */
  baseUrl: string;
  /** What to call it in messages. */
  label: string;
}

export function describeSource(source: string): SourceRef {
  if (/^https?:\/\//i.test(source)) {
    let url: URL;
    try {
      url = new URL(source);
    } catch {
      throw new WardenError('SPEC_NOT_FOUND', `not a valid URL: ${source}`);
    }
    if (url.username || url.password) {
      // Credentials in a spec URL would end up in logs and reports.
      throw new WardenError('SPEC_NOT_FOUND', 'spec URLs must not embed credentials');
    }
    return { kind: 'url', location: url.href, baseUrl: url.href, label: url.href };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source) && !/^file:\/\//i.test(source)) {
    throw new WardenError(
      'SPEC_NOT_FOUND',
      `unsupported scheme in ${source}: use a file path or an http(s) URL`,
    );
  }
  const path = /^file:\/\//i.test(source) ? fileURLToPath(source) : resolvePath(source);
  return { kind: 'file', location: path, baseUrl: pathToFileURL(path).href, label: source };
}

/**
 * Reads a file or downloads a URL, refusing anything over `maxBytes` without buffering it whole: its
 * text, and a file's bytes as read (the text is their UTF-8 decoding). The spec
 * cache keys on the bytes: hashing a decoded 4 MB spec cost the prefetch worker ~60 ms (the string
 * is encoded back first), the bytes ~5 ms, and for valid UTF-8 both give the same key.
 */
export async function readSource(
  src: SourceRef,
  maxBytes: number,
  timeoutMs: number,
): Promise<{ text: string; bytes?: Uint8Array }> {
  if (src.kind === 'file') {
    let size: number;
    try {
      const st = await stat(src.location);
      if (!st.isFile()) throw new WardenError('SPEC_NOT_FOUND', `${src.label} is not a file`);
      size = st.size;
    } catch (e) {
      if (e instanceof WardenError) throw e;
      throw new WardenError(
        'SPEC_NOT_FOUND',
        `cannot read ${src.label}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    if (size > maxBytes) throw tooLarge(src.label, size, maxBytes);
    let bytes: Buffer;
    try {
      bytes = await readFile(src.location);
    } catch (e) {
      throw new WardenError(
        'SPEC_NOT_FOUND',
        `cannot read ${src.label}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    // What readFile(…, 'utf8') gives: the same decoder.
    return { text: bytes.toString('utf8'), bytes };
  }
  return { text: await fetchText(src.location, src.label, maxBytes, timeoutMs) };
}

export async function fetchText(
  url: string,
  label: string,
  maxBytes: number,
  timeoutMs: number,
): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, {
      signal: AbortSignal.timeout(timeoutMs),
      headers: { accept: 'application/json, application/yaml, text/yaml, */*;q=0.5' },
    });
  } catch (e) {
    const why =
      (e as Error).name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : 'connection failed';
    throw new WardenError('SPEC_NOT_FOUND', `cannot fetch ${label}: ${why}`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new WardenError('SPEC_NOT_FOUND', `cannot fetch ${label}: HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) {
    await res.body?.cancel();
    throw tooLarge(label, declared, maxBytes);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (res.body) {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      total += chunk.byteLength;
      if (total > maxBytes) {
        await res.body.cancel().catch(() => {});
        throw tooLarge(label, total, maxBytes);
      }
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

function tooLarge(label: string, size: number, max: number): WardenError {
  return new WardenError(
    'SPEC_TOO_LARGE',
    `${label} is ${mb(size)}${size === max ? '+' : ''}; the limit is ${mb(max)} (raise it with --max-spec-mb)`,
  );
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
