import { describe, expect, it } from 'vitest';
import type { CallContext } from '../../src/pipeline/context.js';
import { createProtect } from '../../src/pipeline/protect.js';
import { createRedactor } from '../../src/protect/redactor.js';
import { catalogOf, minimalSpec } from '../support/helpers.js';
import { resolvedContext, viewOf } from '../support/pipeline.js';

const CUSTOMER = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    email: { type: 'string', format: 'email' },
    password: { type: 'string' },
    note: { type: 'string' },
  },
};

const spec = minimalSpec({
  '/customers': {
    get: {
      operationId: 'listCustomers',
      parameters: [{ name: 'limit', in: 'query', schema: { type: 'integer', maximum: 100 } }],
      responses: {
        '200': {
          description: 'ok',
          content: {
            'application/json': {
              schema: { type: 'object', properties: { data: { type: 'array', items: CUSTOMER } } },
            },
          },
        },
      },
    },
  },
  '/notes': {
    get: {
      operationId: 'getNotes',
      responses: { '200': { description: 'ok', content: { 'text/plain': { schema: { type: 'string' } } } } },
    },
  },
});

/** What the answer stage leaves for protect. */
type Answer = NonNullable<CallContext['answer']>;

const EMAIL = 'jane.doe@example.org';
const AWS = 'AKIAIOSFODNN7EXAMPLE';
const customer = (i: number) => ({
  id: `c_${i}`,
  email: `c${i}@example.org`,
  password: 'hunter2-hunter2',
  note: `write to ${EMAIL}, key ${AWS}`,
});

/** Runs the protect stage on an answer as the answer stage leaves it, under a policy (YAML rules). */
async function protect(
  tool: string,
  answer: Answer,
  rules = '',
  limits?: { maxItems?: number; maxResultBytes?: number },
): Promise<CallContext> {
  const view = viewOf(await catalogOf(spec), `version: 1\n${rules}`);
  const ctx = resolvedContext(view, { name: tool });
  ctx.args = {};
  ctx.answer = answer;
  createProtect({ redactor: createRedactor(['cred-abc-123']), ...(limits ? { limits } : {}) })(ctx);
  return ctx;
}

const jsonAnswer = (value: unknown): Answer => ({
  content: [{ type: 'text', text: JSON.stringify(value) }],
  json: { value, structured: true },
});

describe('protect stage', () => {
  it('masks by the output schema, then redacts by value, and records what it did', async () => {
    const ctx = await protect('listCustomers', jsonAnswer({ data: [customer(1)] }));
    const row = (ctx.result!.structuredContent as { data: Array<Record<string, unknown>> }).data[0]!;
    expect(row).not.toHaveProperty('password');
    expect(row.email).not.toBe('c1@example.org');
    expect(row.note).toBe('write to [REDACTED:email], key [REDACTED:aws-access-key]');
    expect(ctx.redactions).toEqual({
      'dropped:secret': 1,
      'masked:email': 1,
      email: 1,
      'aws-access-key': 1,
    });
    // The text copy is rebuilt from the protected result, never the raw body.
    expect(ctx.result!.content[0]!.text).toBe(JSON.stringify(ctx.result!.structuredContent));
  });

  it("lets through by value what the tool's masking allows, and nothing else", async () => {
    const ctx = await protect(
      'listCustomers',
      jsonAnswer({ data: [customer(1)] }),
      'rules:\n  - match: { name: listCustomers }\n    masking: { pii: allow }\n',
    );
    const row = (ctx.result!.structuredContent as { data: Array<Record<string, unknown>> }).data[0]!;
    expect(row.email).toBe('c1@example.org');
    expect(row.note).toBe(`write to ${EMAIL}, key [REDACTED:aws-access-key]`);
    expect(ctx.redactions).toEqual({ 'dropped:secret': 1, 'aws-access-key': 1 });
  });

  it("cuts arrays to the tool's item limit with a note on how to continue", async () => {
    const rows = Array.from({ length: 5 }, (_, i) => ({ id: `c_${i}` }));
    const ctx = await protect(
      'listCustomers',
      jsonAnswer({ data: rows }),
      'rules:\n  - match: { name: listCustomers }\n    maxItems: 2\n',
    );
    expect((ctx.result!.structuredContent as { data: unknown[] }).data).toHaveLength(2);
    expect(ctx.result!.content.at(-1)!.text).toMatch(/^Note from the gateway: truncated: 2 of 5 items/);
    expect(ctx.redactions).toBeUndefined();
  });

  it('masks and scans only the items the limit keeps, and counts masking over the whole page', async () => {
    const rows = Array.from({ length: 150 }, (_, i) => customer(i));
    const ctx = await protect('listCustomers', jsonAnswer({ data: rows }));
    const data = (ctx.result!.structuredContent as { data: Array<Record<string, unknown>> }).data;
    expect(data).toHaveLength(100);
    expect(data[99]).toEqual({
      id: 'c_99',
      email: 'c***@example.org',
      note: 'write to [REDACTED:email], key [REDACTED:aws-access-key]',
    });
    expect(ctx.result!.content.at(-1)!.text).toMatch(/truncated: 100 of 150 items at \$\.data/);
    // Masking by schema counts every item the upstream sent; detection by value what it scanned.
    expect(ctx.redactions).toEqual({
      'dropped:secret': 150,
      'masked:email': 150,
      email: 100,
      'aws-access-key': 100,
    });
    expect(JSON.stringify(ctx.result)).not.toMatch(/hunter2|AKIA|c1\d\d@example|jane\.doe/);
  });

  it('redacts a text answer by value and cuts it to the byte limit, keeping the notes', async () => {
    const text = `mail ${EMAIL} ${'x'.repeat(200)}`;
    const ctx = await protect(
      'getNotes',
      {
        content: [
          { type: 'text', text },
          { type: 'text', text: 'Note from the gateway: page 1.' },
        ],
      },
      '',
      { maxResultBytes: 40 },
    );
    const [body, kept, capNote] = ctx.result!.content;
    expect(body!.text).toBe(`mail [REDACTED:email] ${'x'.repeat(18)}…`);
    expect(kept!.text).toBe('Note from the gateway: page 1.');
    expect(capNote!.text).toMatch(/the text was cut to 40 bytes/);
    expect(ctx.redactions).toEqual({ email: 1 });
  });

  it('keeps an error answer an error', async () => {
    const ctx = await protect('getNotes', { content: [{ type: 'text', text: 'no' }], isError: true });
    expect(ctx.result).toEqual({ content: [{ type: 'text', text: 'no' }], isError: true });
  });
});

describe('protect stage: the text copy of a wrapped result', () => {
  it('is the JSON of the result alone (the byte cap’s measurement, without the wrapper), masked and cut', async () => {
    const arrays = minimalSpec({
      '/people': {
        get: {
          operationId: 'listPeople',
          responses: {
            '200': {
              description: 'ok',
              content: { 'application/json': { schema: { type: 'array', items: CUSTOMER } } },
            },
          },
        },
      },
    });
    const view = viewOf(await catalogOf(arrays), 'version: 1\n');
    const ctx = resolvedContext(view, { name: 'listPeople' });
    expect(ctx.tool!.outputWrapped).toBe(true);
    ctx.args = {};
    const people = Array.from({ length: 5 }, (_, i) => customer(i));
    ctx.answer = {
      content: [{ type: 'text', text: JSON.stringify(people) }],
      json: { value: { result: people }, structured: true },
    };
    createProtect({ redactor: createRedactor(), limits: { maxItems: 3 } })(ctx);
    const structured = ctx.result!.structuredContent as { result: unknown[] };
    expect(structured.result).toHaveLength(3);
    expect(ctx.result!.content[0]!.text).toBe(JSON.stringify(structured.result));
    expect(ctx.result!.content[0]!.text).not.toContain(EMAIL);
  });
});
