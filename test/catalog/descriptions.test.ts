import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_DESCRIPTION } from '../../src/catalog/build.js';
import { cutAtBoundary, singular } from '../../src/catalog/description.js';
import { catalogOf, jsonOk, minimalSpec } from '../support/helpers.js';

const page = { name: 'cursor', in: 'query', schema: { type: 'string' } };
const limit = { name: 'limit', in: 'query', schema: { type: 'integer' } };
const channel = { name: 'channel', in: 'path', required: true, schema: { type: 'string' } };

// A chat API in the style the issue measured: most operations have neither summary nor description.
const chat = minimalSpec({
  '/channels/{channel}/members': {
    parameters: [channel],
    get: { parameters: [limit, page], responses: jsonOk() },
    post: {
      requestBody: {
        content: {
          'application/json': {
            schema: {
              type: 'object',
              required: ['user'],
              properties: { role: { type: 'string' }, user: { type: 'string' } },
            },
          },
        },
      },
      responses: jsonOk(),
    },
  },
  '/channels/{channel}': { parameters: [channel], delete: { responses: { '204': { description: 'gone' } } } },
  '/channels/{channel}/archive': { parameters: [channel], post: { responses: jsonOk() } },
  '/policies': { get: { responses: jsonOk() } },
  '/v2/addresses/{id}': {
    get: {
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
      responses: jsonOk(),
    },
  },
  '/chat.postMessage': { post: { responses: jsonOk() } },
  '/things': { get: { operationId: 'listArchivedThings', responses: jsonOk() } },
  '/search': {
    get: {
      parameters: ['a', 'b', 'c', 'd', 'e'].map((n) => ({
        name: n,
        in: 'query',
        schema: { type: 'string' },
      })),
      responses: jsonOk(),
    },
  },
});

describe('tool descriptions (issue 23, point 4)', () => {
  it('an operation without summary or description gets one readable line from method, path and arguments', async () => {
    const cat = await catalogOf(chat);
    const by = new Map(cat.tools.map((t) => [`${t.source.method} ${t.source.path}`, t.description]));
    expect(by.get('get /channels/{channel}/members')).toBe(
      'List the members of a channel (GET /channels/{channel}/members; filter by limit, cursor)',
    );
    expect(by.get('post /channels/{channel}/members')).toBe(
      'Create a member of a channel (POST /channels/{channel}/members; with user, role)',
    );
    expect(by.get('delete /channels/{channel}')).toBe('Delete a channel (DELETE /channels/{channel})');
    expect(by.get('get /policies')).toBe('List the policies (GET /policies)');
    expect(by.get('get /v2/addresses/{id}')).toBe('Get an address (GET /v2/addresses/{id})');
    expect(by.get('post /chat.postMessage')).toBe('Post message (chat) (POST /chat.postMessage)');
    // An operation id that starts with a verb says it best.
    expect(by.get('get /things')).toBe('List archived things (GET /things)');
    // At most four arguments named, the rest marked.
    expect(by.get('get /search')).toBe('Search (GET /search; filter by a, b, c, d…)');
    // A verb as the last segment is the action, the owner its object.
    expect(by.get('post /channels/{channel}/archive')).toBe(
      'Archive a channel (POST /channels/{channel}/archive)',
    );
  });

  it('cuts at a sentence boundary within the budget, the [deprecated] prefix and the ellipsis included', async () => {
    const sentence = 'This operation does one thing well. ';
    const long = sentence.repeat(60); // 2,160 characters
    const cat = await catalogOf(
      minimalSpec({
        '/old': { get: { summary: 'Old one', description: long, deprecated: true, responses: jsonOk() } },
        '/new': { get: { summary: 'New one', description: long, responses: jsonOk() } },
      }),
    );
    for (const t of cat.tools) {
      expect(Array.from(t.description).length).toBeLessThanOrEqual(DEFAULT_MAX_DESCRIPTION);
      expect(t.description).toMatch(/well\.…$/);
    }
    const old = cat.tools.find((t) => t.source.path === '/old')!;
    expect(old.description.startsWith('[deprecated] Old one\n\nThis operation')).toBe(true);
  });

  it('without a sentence end in reach, cuts at a word boundary, never mid-word', () => {
    const text = 'word '.repeat(300);
    const cut = cutAtBoundary(text, 1024);
    expect(cut.length).toBeLessThanOrEqual(1024);
    expect(cut).toMatch(/ word…$/);
    // One unbroken token longer than the budget is cut at the budget (nothing better exists).
    expect(cutAtBoundary('x'.repeat(50), 20)).toBe(`${'x'.repeat(19)}…`);
    // Short texts are untouched; a cut never splits a surrogate pair.
    expect(cutAtBoundary('Short.', 1024)).toBe('Short.');
    expect(Array.from(cutAtBoundary('😀'.repeat(40), 21))).toHaveLength(21);
  });

  it('short descriptions keep their prefix and stay whole', async () => {
    const cat = await catalogOf(
      minimalSpec({ '/x': { get: { summary: 'Get x', deprecated: true, responses: jsonOk() } } }),
    );
    expect(cat.tools[0]!.description).toBe('[deprecated] Get x');
  });

  it('reads plurals the way API paths write them', () => {
    expect(singular('members')).toBe('member');
    expect(singular('policies')).toBe('policy');
    expect(singular('statuses')).toBe('status');
    expect(singular('addresses')).toBe('address');
    expect(singular('branches')).toBe('branch');
    expect(singular('status')).toBe('status');
    expect(singular('data')).toBe('data');
  });
});
