import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { earlyTitle, titleOfSpec } from '../../src/server/early-title.js';
import { type ApiMember, loadApi } from '../../src/server/served-api.js';
import { CORPUS, SHARED_SPECS, tempTree } from '../support/helpers.js';

/**
 * The title answered before the spec is loaded (stdio's early initialize) must be the catalogue's,
 * or unknown: never a different one. Each known title is checked against the real loader's.
 */

const one = (spec: string): ApiMember[] => [{ prefix: '', required: true, source: { spec } }];

/** What the loaded catalogue is titled (the real loader), or the load's error. */
async function catalogTitle(spec: string): Promise<string> {
  const api = await loadApi({ spec, baseUrl: 'http://127.0.0.1:9', load: { specCache: false } });
  return api.catalog.title;
}

const PATHS = `paths:
  /a:
    get:
      responses:
        '200': { description: ok }
`;

describe('earlyTitle', () => {
  it('YAML: the info block wherever it is (Stripe sorts it after components), cleaned as the catalogue is', async () => {
    const dir = tempTree({
      'late.yaml': `components:\n  schemas:\n    X:\n      description: "a\n        info: not this"\n      type: object\nopenapi: 3.0.3\n${PATHS}info:\n  version: '1'\n  # a comment\n  title:   Spread\n    over lines   # and a comment\nservers:\n  - url: http://x\n`,
    });
    const spec = join(dir, 'late.yaml');
    expect(earlyTitle(one(spec))).toBe('Spread over lines');
    expect(await catalogTitle(spec)).toBe('Spread over lines');
  });

  it('JSON: parsed as the loader parses it (a BOM, surrounding space, control characters)', async () => {
    const dir = tempTree({
      'a.json': `\ufeff  ${JSON.stringify({ openapi: '3.0.3', info: { title: ' Tabs\tand\nlines ', version: '1' }, paths: {} })}`,
    });
    const spec = join(dir, 'a.json');
    expect(earlyTitle(one(spec))).toBe(await catalogTitle(spec));
    expect(earlyTitle(one(spec))).toBe('Tabs and lines');
  });

  it('unknown when the top level is not a block mapping: a column-0 info inside a quoted scalar of a flow root is no block', async () => {
    const decoy = `x-note: "see\ninfo:\n  title: Decoy API\n"`;
    const root = `{openapi: 3.0.3, info: {title: Real API, version: "1"}, paths: {/a: {get: {operationId: getA, responses: {"200": {description: ok}}}}}, ${decoy}}`;
    const dir = tempTree({
      'flow-root.yaml': `# a YAML spec whose root is a flow mapping\n${root}\n`,
      'doc-flow-root.yaml': `---\n${root}\n`,
      'tagged-root.yaml': `--- !!map\n${root}\n`,
    });
    for (const f of ['flow-root.yaml', 'doc-flow-root.yaml', 'tagged-root.yaml']) {
      expect(earlyTitle(one(join(dir, f))), f).toBeUndefined();
      expect(await catalogTitle(join(dir, f)), f).toBe('Real API');
    }
    // A block mapping after a comment, a directive and a bare document start is still read.
    const ok = tempTree({
      'b.yaml': `# c\n%YAML 1.2\n---\nopenapi: 3.0.3\ninfo:\n  title: Block\n  version: '1'\n${PATHS}`,
    });
    expect(earlyTitle(one(join(ok, 'b.yaml')))).toBe('Block');
    expect(await catalogTitle(join(ok, 'b.yaml'))).toBe('Block');
  });

  it('unknown whenever unsure: flow style, an alias, a duplicate, a non-string or $ref title, a URL', async () => {
    const yaml = (info: string) => `openapi: 3.0.3\n${info}\n${PATHS}`;
    const dir = tempTree({
      'flow.yaml': yaml('info: { title: Flow, version: "1" }'),
      'alias.yaml': `x-name: &n Aliased\n${yaml("info:\n  title: *n\n  version: '1'")}`,
      'twice.yaml': yaml("info:\n  title: One\n  version: '1'\n'info':\n  title: Two"),
      'number.yaml': yaml("info:\n  title: 123\n  version: '1'"),
      'ref.json': { openapi: '3.0.3', info: { $ref: './info.json' }, paths: {} },
      'none.json': { openapi: '3.0.3', paths: {} },
    });
    for (const f of ['flow.yaml', 'alias.yaml', 'twice.yaml', 'number.yaml', 'ref.json', 'none.json'])
      expect(earlyTitle(one(join(dir, f))), f).toBeUndefined();
    // Each of these YAML documents loads (but for the duplicate) with the title the catalogue says.
    expect(await catalogTitle(join(dir, 'alias.yaml'))).toBe('Aliased');
    expect(await catalogTitle(join(dir, 'number.yaml'))).toBe('123');
    await expect(catalogTitle(join(dir, 'twice.yaml'))).rejects.toThrow(/duplicat/i);
    expect(earlyTitle(one('http://127.0.0.1:9/spec.json'))).toBeUndefined();
    expect(earlyTitle(one(join(dir, 'missing.json')))).toBeUndefined();
  });

  it('a line `info:` at column 0 inside a quoted scalar: js-yaml refuses the document, so it is never served', async () => {
    const dir = tempTree({
      'trick.yaml': `openapi: 3.0.3\nx-note: "starts here\ninfo:\n  title: Wrong\n  version: '1'\nends here"\n${PATHS}`,
    });
    await expect(catalogTitle(join(dir, 'trick.yaml'))).rejects.toThrow(/indentation|SPEC_PARSE/i);
  });

  it("an API set: its members' names, as the merged catalogue is titled", () => {
    const members: ApiMember[] = ['crm', 'billing'].map((name) => ({
      name,
      prefix: name,
      required: true,
      source: { spec: '/nowhere.json' },
    }));
    expect(earlyTitle(members)).toBe('crm + billing');
  });

  it.each(CORPUS.filter(([, refRoot]) => refRoot === undefined).map(([f]) => f))(
    'the shared spec %s: unknown, or the catalogue’s title',
    async (file) => {
      const spec = join(SHARED_SPECS, file);
      const early = earlyTitle(one(spec));
      // The specs issue 22 measures are known early (their clients are answered while they load).
      if (['github-rest.json', 'stripe.yaml', 'kubernetes-swagger2.json'].includes(file))
        expect(early).toBeDefined();
      if (early !== undefined) expect(early).toBe(await catalogTitle(spec));
    },
  );

  it('JSON: the info value read alone only when it is the one top-level info (else the whole parse)', () => {
    const title = (doc: string) => titleOfSpec(Buffer.from(doc));
    const long = JSON.stringify('x'.repeat(1000));
    // Read alone, from before (a short prefix) or after (a short rest), braces and quotes in strings.
    expect(title('{"openapi":"3.0.3", "info" : {"title":"T }{ \\"x\\"","version":"1"},"paths":{}}')).toBe(
      'T }{ "x"',
    );
    expect(title(`{"a":${long},"info":{"title":"Late","x":{"y":"}"}},"z":[1]}`)).toBe('Late');
    expect(title(`{"a":${long},"info":{"title":"Last"}}`)).toBe('Last');
    // "info" inside a string (its quotes escaped) is not the key.
    expect(title('{"d":"say \\"info\\": {\\"title\\": \\"Fake\\"}","info":{"title":"Real"}}')).toBe('Real');
    // Nested, from either side: not the top-level info, which is missing.
    expect(title('{"x":{"info":{"title":"Nested"},"y":1},"openapi":"3"}')).toBeUndefined();
    expect(title(`{"a":${long},"x":{"info":{"title":"Nested"}},"z":1}`)).toBeUndefined();
    expect(title(`{"x":[{"info":{"title":"Nested"}}],"a":${long}}`)).toBeUndefined();
    // Duplicates, plain or spelled with an escape: JSON.parse (the loader) keeps the last one.
    expect(title('{"info":{"title":"First"},"info":{"title":"Last"}}')).toBe('Last');
    expect(title('{"info":{"title":"First"},"\\u0069nfo":{"title":"Last"}}')).toBe('Last');
    expect(title('{"tag":"info","info":{"title":"Both"}}')).toBe('Both');
    expect(title('{"info":{"$ref":"#/x"}}')).toBeUndefined();
    expect(title('{"info":"not an object"}')).toBeUndefined();
    // Only the key's context and the value are parsed (the cost GitHub's 4 MB no longer has): text
    // past a leading info is not read — a document broken there is refused by the loader anyway.
    expect(title('{"info":{"title":"Alone"}, "paths": {]')).toBe('Alone');
  });

  it('titleOfSpec reads bytes, not only files', () => {
    expect(titleOfSpec(Buffer.from('openapi: 3.1.0\ninfo:\n  title: "Quoted: yes"\n'))).toBe('Quoted: yes');
    expect(titleOfSpec(Buffer.from('  \n'))).toBeUndefined();
  });
});
