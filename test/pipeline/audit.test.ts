import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openJsonlAudit } from '../../src/audit/jsonl.js';
import { WardenError } from '../../src/errors/index.js';
import { createAudit } from '../../src/pipeline/audit.js';
import { createRedactor } from '../../src/protect/redactor.js';
import { catalogOf, jsonOk, minimalSpec, tempTree } from '../support/helpers.js';
import { contextFor, memoryAudit } from '../support/pipeline.js';
import { readAudit } from '../support/wait.js';

describe('audit stage', () => {
  it('writes one JSON line per call with decision, code, principal and upstream facts', async () => {
    const file = join(tempTree({}), 'audit.jsonl');
    const sink = await openJsonlAudit(file);
    const audit = createAudit({ sink, redactor: createRedactor() });
    const ok = contextFor({ name: 'getPart', arguments: { id: 'a' }, client: 'inspector' });
    ok.request = { method: 'GET', origin: 'https://x', path: '/v2/items/a', query: '', headers: {} };
    ok.response = {
      status: 200,
      contentType: 'application/json',
      headers: {},
      body: Buffer.from('{}'),
      truncated: false,
      ms: 1.23456,
    };
    audit(ok);
    const denied = contextFor({ name: 'hiddenTool' });
    denied.error = new WardenError('TOOL_NOT_FOUND', 'Unknown tool: hiddenTool');
    audit(denied);
    await sink.close();
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((l) => l.kind === 'call');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      tool: 'getPart',
      decision: 'allowed',
      outcome: 'ok',
      principal: 'tester',
      client: 'inspector',
      args: { id: 'a' },
      upstream: { method: 'GET', path: '/v2/items/a', status: 200, ms: 1.235, bytes: 2 },
    });
    expect(lines[1]).toMatchObject({
      tool: 'hiddenTool',
      decision: 'denied',
      outcome: 'error',
      code: 'TOOL_NOT_FOUND',
    });
    expect(Date.parse(lines[0].time)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('records how the caller was authenticated, and never part of a secret where the response copy is cut', async () => {
    const secret = 'cred-abcdefghij-0123456789';
    const file = join(tempTree({}), 'audit.jsonl');
    const sink = await openJsonlAudit(file);
    const audit = createAudit({ sink, redactor: createRedactor([secret]) });
    const ctx = contextFor({ name: 'getPart', arguments: { id: 'a' } });
    ctx.result = { content: [{ type: 'text', text: `${'x'.repeat(4090)}${secret}${'y'.repeat(100)}` }] };
    audit(ctx);
    await sink.close();
    const line = readAudit(file).find((l) => l.kind === 'call');
    expect(line.auth).toBe('stdio');
    expect(line.response).toMatch(/…\[\d+ chars\]$/);
    expect(line.response).not.toContain('cred-abc');
  });

  it('keeps the same 4 KiB response copy of a long result, redacted as if the whole result were', async () => {
    // Long results: only a window past the cut is redacted (Redactor.head). Tokens that shrink to
    // placeholders pull later text, and a value straddling the first window, into the copy.
    const secret = 'cred-abcdefghij-0123456789';
    const redactor = createRedactor([secret]);
    const jwt = `eyJ${'a'.repeat(3000)}.eyJ${'b'.repeat(6000)}.${'c'.repeat(3000)}`;
    const text = `${'jane@example.org '.repeat(200)}${jwt} ${jwt} ${secret} ${'w'.repeat(16_000)}${secret}${'z'.repeat(40_000)}`;
    const file = join(tempTree({}), 'audit.jsonl');
    const sink = await openJsonlAudit(file);
    const audit = createAudit({ sink, redactor });
    const ctx = contextFor({ name: 'getPart', arguments: { id: 'a' } });
    ctx.result = { content: [{ type: 'text', text }] };
    audit(ctx);
    await sink.close();
    const line = readAudit(file).find((l) => l.kind === 'call');
    expect(line.response).toBe(`${redactor.text(text).slice(0, 4096)}…[${text.length} chars]`);
    expect(line.response).not.toContain('cred-abc');
  });

  it("names the tool's API in an API set, from the catalogue only (an unknown name has none)", async () => {
    const catalog = await catalogOf(
      minimalSpec({ '/pets': { get: { operationId: 'pets_list', responses: jsonOk() } } }),
    );
    const tool = { ...catalog.tools[0]!, api: 'pets' };
    const sink = memoryAudit();
    const audit = createAudit({ sink, redactor: createRedactor() });
    const known = contextFor({ name: 'pets_list' });
    known.tool = tool;
    audit(known);
    const unknown = contextFor({ name: 'pets_nope', arguments: { api: 'pets' } });
    unknown.error = new WardenError('TOOL_NOT_FOUND', 'Unknown tool: pets_nope');
    audit(unknown);
    const single = contextFor({ name: 'pets_list' });
    single.tool = catalog.tools[0]!;
    audit(single);
    expect(sink.records.map((r) => (r as { api?: string }).api)).toEqual(['pets', undefined, undefined]);
    expect(sink.records[1]).not.toHaveProperty('api');
  });
});
