import { describe, expect, it } from 'vitest';
import { createAnswer } from '../../src/pipeline/answer.js';
import type { CallContext } from '../../src/pipeline/context.js';
import { createRedactor } from '../../src/protect/redactor.js';
import { catalogOf, minimalSpec } from '../support/helpers.js';
import { contextFor } from '../support/pipeline.js';

const spec = minimalSpec({
  '/obj': {
    get: {
      operationId: 'obj',
      responses: {
        '200': {
          description: 'ok',
          content: {
            'application/json': {
              schema: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
            },
          },
        },
      },
    },
  },
  '/list': {
    get: {
      operationId: 'list',
      responses: {
        '200': {
          description: 'ok',
          content: { 'application/json': { schema: { type: 'array', items: { type: 'integer' } } } },
        },
      },
    },
  },
  '/file': {
    get: { operationId: 'file', responses: { '200': { description: 'ok', content: { 'image/png': {} } } } },
  },
});

async function answerWith(
  tool: string,
  res: { status?: number; ct?: string; body: string | Buffer; truncated?: boolean },
  secrets: string[] = [],
) {
  const catalog = await catalogOf(spec);
  const answer = createAnswer({ catalog, redactor: createRedactor(secrets) });
  const ctx: CallContext = contextFor({ name: tool });
  ctx.tool = catalog.tools.find((t) => t.name === tool);
  ctx.response = {
    status: res.status ?? 200,
    contentType: res.ct ?? 'application/json',
    headers: {},
    body: Buffer.isBuffer(res.body) ? res.body : Buffer.from(res.body),
    truncated: res.truncated ?? false,
    ms: 1,
  };
  answer(ctx);
  return ctx.answer!;
}

describe('answer stage', () => {
  it('parses JSON into structured content (masked by the protect stage) plus a text copy', async () => {
    const r = await answerWith('obj', { body: '{"id":"a1"}' });
    expect(r.json).toEqual({ value: { id: 'a1' }, structured: true });
    expect(r.content[0]?.text).toBe('{"id":"a1"}');
    expect(r.isError).toBeUndefined();
  });

  it('wraps a non-object response as { result } to match the published outputSchema', async () => {
    const r = await answerWith('list', { body: '[1,2,3]' });
    expect(r.json).toEqual({ value: { result: [1, 2, 3] }, structured: true });
  });

  it('refuses structuredContent that does not match the outputSchema', async () => {
    await expect(answerWith('obj', { body: '{"id":5}' })).rejects.toMatchObject({
      code: 'UPSTREAM_SCHEMA_MISMATCH',
    });
  });

  it('turns upstream errors into a short, scrubbed excerpt', async () => {
    const err = await answerWith(
      'obj',
      { status: 500, body: `boom key=sekrit-value-1 ${'x'.repeat(5000)}` },
      ['sekrit-value-1'],
    ).catch((e) => e);
    expect(err.code).toBe('UPSTREAM_STATUS');
    expect(err.message).toContain('500');
    expect(err.text).toContain('[REDACTED:credential]');
    expect(err.text).not.toContain('sekrit-value-1');
    expect(err.text.length).toBeLessThan(600);
  });

  it('reports redirects instead of following them', async () => {
    await expect(answerWith('obj', { status: 307, body: '' })).rejects.toMatchObject({
      code: 'UPSTREAM_REDIRECT',
    });
  });

  it('says a capped response was cut short', async () => {
    const err = await answerWith('obj', { body: '{"id":"aaaa', truncated: true }).catch((e) => e);
    expect(err.code).toBe('UPSTREAM_TOO_LARGE');
    expect(err.message).toMatch(/cut short/);
  });

  it('never leaves part of a credential where the excerpt of a capped response is cut', async () => {
    const secret = 'sekrit-value-0123456789';
    for (const at of [3990, 3995, 3999]) {
      const body = `${'a'.repeat(at)}${secret}${'b'.repeat(500)}`;
      const err = await answerWith('file', { ct: 'text/plain', body, truncated: true }, [secret]).catch(
        (e) => e,
      );
      expect(err.code).toBe('UPSTREAM_TOO_LARGE');
      expect(err.text).not.toContain('sekrit');
    }
  });

  it('describes binary content instead of passing bytes', async () => {
    const r = await answerWith('file', {
      ct: 'image/png',
      body: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]),
    });
    expect(r.content).toEqual([
      {
        type: 'text',
        text: 'The API returned 7 bytes of image/png; binary content is not passed to the agent.',
      },
    ]);
  });

  it('scrubs a credential echoed inside a JSON body', async () => {
    const r = await answerWith('obj', { body: '{"id":"tok-echoed-123"}' }, ['tok-echoed-123']);
    expect(JSON.stringify(r)).not.toContain('tok-echoed-123');
  });
});
