import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInit, runPolicyCheck } from '../../src/cli/policy.js';
import { runScan } from '../../src/cli/scan.js';
import type { ScanReport } from '../../src/report/json.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { type Listening, listen } from '../support/http.js';
import { SHARED_SPECS, tempTree } from '../support/paths.js';
import { expectAudited } from '../support/wait.js';
import { READ_LIKE, RPC_BANK, WRITES } from './rpc-bank-spec.js';

const io = (out: string[], err: string[] = []) => ({
  stdout: (s: string) => void out.push(s),
  stderr: (s: string) => void err.push(s),
});

async function scan(spec: string, format: 'json' | 'table'): Promise<string> {
  const out: string[] = [];
  await runScan(spec, { format, quiet: true }, io(out));
  return out.join('');
}

describe('scan reports read-like POSTs', () => {
  const spec = join(tempTree({ 'bank.json': RPC_BANK }), 'bank.json');

  it('counts and lists them in JSON, each with its path and reason, and leaves them hidden writes', async () => {
    const r = JSON.parse(await scan(spec, 'json')) as ScanReport;
    expect(r.summary.readLikePosts).toBe(READ_LIKE.length);
    expect(r.readLike.map((x) => x.name)).toEqual(READ_LIKE);
    expect(r.readLike[0]).toEqual({
      name: 'accountsGet',
      method: 'POST',
      path: '/api/v1/bank/accounts/get',
      verb: 'get',
      reason: expect.stringContaining('read verb "get" in the path /api/v1/bank/accounts/get'),
    });
    for (const name of READ_LIKE) {
      const t = r.tools.find((x) => x.name === name)!;
      expect(t.readLike).not.toBeNull();
      expect(t.risk).toEqual(['write']);
      expect(t.exposed).toBe(false);
    }
    for (const name of WRITES) expect(r.tools.find((x) => x.name === name)!.readLike).toBeNull();
  });

  it('lists them in the table with the count in the summary line', async () => {
    const text = await scan(spec, 'table');
    expect(text).toContain('; 4 read-like POSTs');
    expect(text).toContain('Read-like POSTs (4):');
    expect(text).toMatch(
      /\n {2}paymentsSearch {2}POST \/api\/v1\/bank\/payments\/search — read verb "search"/,
    );
    expect(text).not.toMatch(/\n {2}paymentsCreate {2}POST/);
  });

  it('finds them in a shared spec (OpenAI: vector store search, grader validation)', async () => {
    const r = JSON.parse(await scan(join(SHARED_SPECS, 'openai.yaml'), 'json')) as ScanReport;
    expect(r.readLike.map((x) => x.name).sort()).toEqual(['searchVectorStore', 'validateGrader']);
  }, 120_000);

  it('finds none among the 94 POSTs of Slack, which all change something', async () => {
    const r = JSON.parse(await scan(join(SHARED_SPECS, 'slack-web.json'), 'json')) as ScanReport;
    expect(r.tools.filter((t) => t.method === 'POST').length).toBe(94);
    expect(r.readLike).toEqual([]);
  }, 120_000);
});

describe('init proposes read-like POSTs as reads; the policy checks and serves them as reads', () => {
  let upstream: Listening;
  let gateway: TestGateway;
  const seen: Array<{ method: string; url: string }> = [];
  let policy = '';
  let checked = '';

  beforeAll(async () => {
    const dir = tempTree({ 'bank.json': RPC_BANK });
    const spec = join(dir, 'bank.json');
    const out = join(dir, 'warden.yaml');
    await runInit(spec, { output: out }, io([]));
    policy = readFileSync(out, 'utf8');
    const checkOut: string[] = [];
    await runPolicyCheck(out, { spec }, io(checkOut));
    checked = checkOut.join('');
    upstream = await listen((req, res) => {
      seen.push({ method: req.method!, url: req.url! });
      req.resume();
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    });
    gateway = await startTestGateway({ spec: RPC_BANK, baseUrl: upstream.url, policy });
  }, 120_000);

  afterAll(async () => {
    await gateway?.close();
    await upstream?.close();
  });

  it('writes an explicit treatAs: read rule with the reason for each read-like POST, and none for the others', () => {
    for (const name of READ_LIKE) {
      const at = policy.indexOf(`- match: { name: ${name} }\n`);
      expect(at, name).toBeGreaterThan(-1);
      const rule = policy.slice(at).split('\n').slice(0, 3).join('\n');
      expect(rule).toMatch(/\n {4}treatAs: read {3}# proposed by init/);
      expect(rule).toMatch(
        /\n {4}reason: "read-like POST: read verb \\"\w+\\" in the path \/api\/v1\/bank\//,
      );
    }
    expect(policy.match(/^ {4}treatAs: read/gm)).toHaveLength(READ_LIKE.length);
    expect(policy).toContain('mode: read-only');
    // The other POSTs are listed as usual: commented out, hidden.
    for (const name of WRITES) expect(policy).toContain(`  # - match: { name: ${name} }\n`);
  });

  it('passes policy check with exactly the read-like POSTs exposed', () => {
    expect(checked).toContain(
      `ok — ${READ_LIKE.length} of ${READ_LIKE.length + WRITES.length} tools exposed`,
    );
  });

  it('lists the read-like POSTs and no other POST, and calls them as POSTs upstream', async () => {
    const client = await gateway.connect();
    const listed = (await client.listTools()).tools.map((t) => t.name).sort();
    expect(listed).toEqual([...READ_LIKE].sort());
    const r = await client.callTool({ name: 'accountsGet', arguments: { body: { id: 'a1' } } });
    expect(r.isError, JSON.stringify(r)).toBeFalsy();
    expect(seen.at(-1)).toEqual({ method: 'POST', url: '/api/v1/bank/accounts/get' });
    // Still a POST where a misjudged read would cost a write: it has its write-ahead record.
    await expectAudited(gateway.auditFile, {
      kind: 'intent',
      tool: 'accountsGet',
      upstream: { method: 'POST', path: '/api/v1/bank/accounts/get' },
    });
    const before = seen.length;
    const hidden = await client
      .callTool({ name: 'paymentsCreate', arguments: { body: { id: 'p1' } } })
      .catch((e) => e);
    expect(hidden.code).toBe(-32602);
    expect(String(hidden.message)).toContain('Unknown tool');
    expect(seen.length).toBe(before);
  });
});

describe('init of an API set proposes the read-like POSTs under their API, prefixed', () => {
  it('writes treatAs: read rules under apis.<name>.rules that policy check accepts', async () => {
    const dir = tempTree({ 'bank.json': RPC_BANK });
    const out = join(dir, 'gateway.yaml');
    await runInit(
      [join(SHARED_SPECS, 'petstore-v3.yaml')],
      { output: out, api: [`bank=${join(dir, 'bank.json')}`] },
      io([]),
    );
    const text = readFileSync(out, 'utf8');
    for (const name of READ_LIKE)
      expect(text).toContain(`      - match: { name: bank_${name} }\n        treatAs: read`);
    expect(text.match(/treatAs: read {3}#/g)).toHaveLength(READ_LIKE.length);
    const checked: string[] = [];
    await runPolicyCheck(out, {}, io(checked));
    // The 4 read-like POSTs of the bank, and petstore's 2 GETs.
    expect(checked.join('')).toContain(
      `ok — ${READ_LIKE.length + 2} of ${READ_LIKE.length + WRITES.length + 3} tools exposed`,
    );
  }, 120_000);
});
