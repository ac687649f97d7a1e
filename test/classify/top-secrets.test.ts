import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildCatalog } from '../../src/catalog/build.js';
import { outputSchemaParts } from '../../src/catalog/tool.js';
import { ResponseClassifier } from '../../src/classify/data-classes.js';
import { COLLECTION_KEYS, isTopSecret, TOP_SECRETS } from '../../src/classify/risk.js';
import type { DataField } from '../../src/model/catalog.js';
import { defsOf, type JsonSchema } from '../../src/model/json-schema.js';
import { loadSpec } from '../../src/openapi/load.js';
import { CORPUS, catalogOf, jsonOk, loadCorpusSpec, minimalSpec, SHARED_SPECS } from '../support/helpers.js';

// The risk rules read only whether a response has a top-level secret field (`credential-response`);
// the catalogue asks a bounded search (`ResponseClassifier.mayFind`) and walks all data fields only
// when it may. The risk must be exactly what the full walk gives: same classes, same reason.

/** What `credential-response` says given the full walk's fields (the rule as it reads them). */
function expectedFinding(fields: readonly DataField[]): string | undefined {
  const top = fields.find((d) => isTopSecret(d.path, d));
  return top ? `returns secret field ${top.path}` : undefined;
}

/** A secret hit, as a summary holds it. */
const SECRET = { class: 'secret', kind: 'token', rule: 'secret-token', reason: 'test' } as const;

describe('top-level secrets without the full data-class walk', () => {
  for (const [file, refRoot] of CORPUS) {
    it(`${file}: every tool's credential-response finding is the full walk's`, async () => {
      const spec = await loadCorpusSpec(file, refRoot);
      const catalog = buildCatalog(spec);
      for (const t of catalog.tools) {
        const finding = t.risk.findings.find((f) => f.rule === 'credential-response');
        // dataClasses is the full walk, built on this first read.
        expect([t.name, finding?.reason]).toEqual([t.name, expectedFinding(t.dataClasses)]);
      }
    }, 60_000);
  }

  it('a top-level secret past the field budget is not flagged, as the full walk does not list it', async () => {
    // 300 PII fields fill the walk's budget before the token is reached.
    const many = Object.fromEntries(
      Array.from({ length: 310 }, (_, i) => [`email_${i}`, { type: 'string', format: 'email' }]),
    );
    const Filler = { type: 'object', properties: many };
    const cat = await catalogOf(
      minimalSpec(
        {
          '/late': {
            get: {
              operationId: 'getLate',
              // Holder's token is top-level ($.token), but the walk reaches it with its budget spent.
              responses: jsonOk({
                allOf: [{ $ref: '#/components/schemas/Filler' }, { $ref: '#/components/schemas/Holder' }],
              }),
            },
          },
          '/early': {
            get: {
              operationId: 'getEarly',
              responses: jsonOk({
                type: 'object',
                properties: {
                  access_token: { type: 'string' },
                  a: { $ref: '#/components/schemas/Filler' },
                },
              }),
            },
          },
        },
        {
          components: {
            schemas: {
              Filler,
              Holder: { type: 'object', properties: { token: { type: 'string' } } },
            },
          },
        },
      ),
    );
    const [late, early] = cat.tools;
    expect(late!.dataClassesTruncated).toBe(true);
    expect(late!.dataClasses.map((d) => d.path)).not.toContain('$.token');
    expect(late!.risk.classes).not.toContain('credential');
    expect(early!.risk.findings.find((f) => f.rule === 'credential-response')?.reason).toBe(
      'returns secret field $.access_token',
    );
    expect(expectedFinding(early!.dataClasses)).toBe('returns secret field $.access_token');
  });

  it('finds a top-level secret through $refs, arrays and collection keys', () => {
    const defs: Record<string, JsonSchema> = {
      Page: {
        type: 'object',
        properties: {
          data: { type: 'array', items: { $ref: '#/$defs/Key' } },
          has_more: { type: 'boolean' },
        },
      },
      Key: { type: 'object', properties: { id: { type: 'string' }, secret: { type: 'string' } } },
      Deep: {
        type: 'object',
        properties: { owner: { type: 'object', properties: { nested: { $ref: '#/$defs/Key' } } } },
      },
    };
    const c = new ResponseClassifier();
    const lookup = defsOf(defs);
    expect(c.mayFind({ $ref: '#/$defs/Page' }, lookup, TOP_SECRETS)).toBe(true);
    expect(c.mayFind({ type: 'array', items: { $ref: '#/$defs/Key' } }, lookup, TOP_SECRETS)).toBe(true);
    expect(c.mayFind({ $ref: '#/$defs/Deep' }, lookup, TOP_SECRETS)).toBe(false);
  });

  it('what the search leaves out holds no top-level field, whatever follows or precedes it', () => {
    // Path pieces as the classifier writes them: `.name`, `["odd name"]`, `[*]` and `.*`.
    const name = fc.oneof(
      fc.constantFrom('data', 'items', 'token', 'a', 'x1', 'secret'),
      fc.string({ maxLength: 6 }),
    );
    const piece = fc.oneof(
      name.map((n) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(n) ? `.${n}` : `[${JSON.stringify(n)}]`)),
      fc.constant('[*]'),
      fc.constant('.*'),
    );
    const rel = fc.array(piece, { maxLength: 6 }).map((p) => p.join(''));
    const more = fc.array(piece, { minLength: 1, maxLength: 6 }).map((p) => p.join(''));
    fc.assert(
      fc.property(rel, rel, more, (a, b, tail) => {
        const prefix = `$${a}`;
        // A refused prefix: every longer path refused, no top-level secret under it.
        if (!TOP_SECRETS.within(prefix)) {
          expect(TOP_SECRETS.within(prefix + b + tail)).toBe(false);
          expect(TOP_SECRETS.want(prefix + b + tail, SECRET)).toBe(false);
        }
        // A relative path a summary cut for this prefix's level leaves out: longer ones too, and
        // under this prefix (any of its level) nothing there is within the search.
        const level = TOP_SECRETS.level(prefix);
        if (!TOP_SECRETS.keep(b, level)) {
          expect(TOP_SECRETS.keep(b + tail, level)).toBe(false);
          expect(TOP_SECRETS.within(prefix + b)).toBe(false);
          expect(TOP_SECRETS.want(prefix + b, SECRET)).toBe(false);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('`first` stops the full walk at the field `classify` would list first, for any predicate (GitHub, Stripe)', async () => {
    const preds: Array<(path: string, f: Pick<DataField, 'class'>) => boolean> = [
      isTopSecret,
      (_p, f) => f.class === 'pii',
      (p, f) => f.class === 'financial' && p.includes('[*]'),
      () => false,
    ];
    for (const file of ['github-rest.json', 'stripe.yaml']) {
      const catalog = buildCatalog(await loadSpec(join(SHARED_SPECS, file)));
      for (const t of catalog.tools) {
        const parts = outputSchemaParts(t);
        if (!parts) continue;
        const full = new ResponseClassifier().classify(parts.schema, parts.defs).fields;
        const stopped = new ResponseClassifier();
        for (const pred of preds) {
          const want = full.find((f) => pred(f.path, f));
          expect([t.name, stopped.first(parts.schema, parts.defs, pred)]).toEqual([t.name, want]);
        }
        // Once the full walk is known, it answers from it.
        stopped.classify(parts.schema, parts.defs);
        expect(stopped.first(parts.schema, parts.defs, isTopSecret)).toEqual(
          full.find((f) => isTopSecret(f.path, f)),
        );
      }
    }
  }, 120_000);
});

describe('`first` answers repeat questions from what it walked', () => {
  it('the same answer for the same root again, and a walk that found nothing serves `classify` (GitHub, Stripe)', async () => {
    const never = () => false;
    for (const file of ['github-rest.json', 'stripe.yaml']) {
      const catalog = buildCatalog(await loadSpec(join(SHARED_SPECS, file)));
      const c = new ResponseClassifier();
      for (const t of catalog.tools) {
        const parts = outputSchemaParts(t);
        if (!parts) continue;
        const full = new ResponseClassifier().classify(parts.schema, parts.defs);
        const want = full.fields.find((f) => isTopSecret(f.path, f));
        // Asked twice (the second from the memo), then with a predicate that finds nothing: that
        // walk is the whole walk, and `classify` on the same classifier answers what a fresh one does.
        expect([t.name, c.first(parts.schema, parts.defs, isTopSecret)]).toEqual([t.name, want]);
        expect([t.name, c.first(parts.schema, parts.defs, isTopSecret)]).toEqual([t.name, want]);
        expect(c.first(parts.schema, parts.defs, never)).toBeUndefined();
        expect([t.name, c.classify(parts.schema, parts.defs)]).toEqual([t.name, full]);
        expect(c.first(parts.schema, parts.defs, (_p, f) => f.class === 'pii')).toEqual(
          full.fields.find((f) => f.class === 'pii'),
        );
      }
    }
  }, 120_000);

  it('a memoised answer is not mistaken for another root or predicate', () => {
    // One classifier serves one catalogue's lookup (its summaries are by definition key).
    const c = new ResponseClassifier();
    const lookup = defsOf({
      Plain: { type: 'object', properties: { name: { type: 'string' } } },
      Keyed: { type: 'object', properties: { token: { type: 'string' }, email: { type: 'string' } } },
    });
    const plain = { $ref: '#/$defs/Plain' };
    expect(c.first(plain, lookup, isTopSecret)).toBeUndefined();
    expect(c.first({ $ref: '#/$defs/Keyed' }, lookup, isTopSecret)?.path).toBe('$.token');
    expect(c.first({ $ref: '#/$defs/Keyed' }, lookup, (_p, f) => f.class === 'pii')?.path).toBe('$.email');
    expect(c.first(plain, lookup, isTopSecret)).toBeUndefined();
    expect(c.classify(plain, lookup)).toEqual({ fields: [], truncated: false });
  });
});

describe('`firstSecret`: no full walk where it would find no secret', () => {
  it('answers as `first` on every tool of the corpus', async () => {
    for (const [file, refRoot] of CORPUS) {
      const spec = await loadCorpusSpec(file, refRoot);
      const catalog = buildCatalog(spec);
      const fast = new ResponseClassifier();
      for (const t of catalog.tools) {
        const parts = outputSchemaParts(t);
        if (!parts) continue;
        const want = new ResponseClassifier().first(parts.schema, parts.defs, isTopSecret);
        expect([file, t.name, fast.firstSecret(parts.schema, parts.defs, isTopSecret)]).toEqual([
          file,
          t.name,
          want,
        ]);
      }
    }
  }, 120_000);

  it('answers as `first` on generated response graphs, with small field and edge budgets', () => {
    // Names that are secrets, are not, or only look like they may be (`tokenization_method`).
    const propName = fc.constantFrom(
      'token',
      'client_secret',
      'password',
      'email',
      'name',
      'tokenization_method',
      'has_password',
      'secret_name',
      'data',
      'items',
      'id',
      'api_key',
      'card_number',
    );
    const leaf = fc.oneof(
      fc.constant<JsonSchema>({ type: 'string' }),
      fc.constant<JsonSchema>({ type: 'boolean' }),
      fc.constant<JsonSchema>({ type: 'string', format: 'password' }),
      fc.constant<JsonSchema>({ type: 'string', 'x-data-class': 'secret' }),
      fc.constant<JsonSchema>({ type: 'string', 'x-data-class': 'none' }),
      fc.constant<JsonSchema>({ type: 'string', description: 'Password for the account.' }),
    );
    const keys = ['A', 'B', 'C', 'D', 'E'];
    const ref = fc.constantFrom(...keys).map((k): JsonSchema => ({ $ref: `#/$defs/${k}` }));
    const node: fc.Arbitrary<JsonSchema> = fc.letrec<{ s: JsonSchema }>((tie) => ({
      s: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        leaf,
        ref,
        fc
          .dictionary(propName, tie('s'), { maxKeys: 4 })
          .map((properties) => ({ type: 'object', properties })),
        tie('s').map((items) => ({ type: 'array', items })),
        fc.array(tie('s'), { minLength: 1, maxLength: 3 }).map((anyOf) => ({ anyOf })),
      ),
    })).s;
    const graph = fc.record({ A: node, B: node, C: node, D: node, E: node });
    const limits = fc.record({
      maxDepth: fc.integer({ min: 1, max: 8 }),
      maxFields: fc.integer({ min: 1, max: 12 }),
      maxEdges: fc.integer({ min: 1, max: 20 }),
    });
    fc.assert(
      fc.property(graph, node, limits, (defs, root, lim) => {
        const lookup = defsOf(defs);
        const want = new ResponseClassifier(lim).first(root, lookup, isTopSecret);
        expect(new ResponseClassifier(lim).firstSecret(root, lookup, isTopSecret)).toEqual(want);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('isTopSecret counts path segments', () => {
  // The rule as it was written (regex split): the in-place count must agree with it on every path,
  // including the odd ones (quoted steps holding `.` or `[*]`, empty segments, a `$` not in front).
  const byRegex = (path: string): boolean => {
    const segs = path
      .replace(/^\$/, '')
      .split(/\.|\[\*\]/)
      .filter(Boolean);
    if (segs.length > 1 && COLLECTION_KEYS.has(segs[0]!)) segs.shift();
    return segs.length <= 1;
  };
  const secret = { class: 'secret' as const };

  it('as the regex split did, on tricky paths', () => {
    for (const p of [
      '$',
      '$.token',
      '$[*].token',
      '$.data[*].token',
      '$.data.token',
      '$[*][*].token',
      '$..a',
      '$["a.b"]',
      '$["a[*]b"].c',
      '$.items',
      '$.items.x.y',
      'data.x',
      '$$.a',
      '$[*',
      '$.a[*]',
      '.$.a',
      '',
    ])
      expect(isTopSecret(p, secret), p).toBe(byRegex(p));
  });

  it('as the regex split did, on generated paths', () => {
    const part = fc.constantFrom(
      '$',
      '.',
      '[*]',
      '[',
      '*',
      ']',
      'data',
      'items',
      'token',
      '["a.b"]',
      'x',
      '',
    );
    fc.assert(
      fc.property(fc.array(part, { maxLength: 10 }), (parts) => {
        const p = parts.join('');
        expect(isTopSecret(p, secret)).toBe(byRegex(p));
      }),
      { numRuns: 2000 },
    );
  });
});
