import type { ListedTool, ToolView } from '../control/view.js';
import { WardenError } from '../errors/index.js';
import { cleanLine } from '../openapi/text.js';
import { notFound } from '../pipeline/resolve.js';
import type { ToolSearch } from './search.js';

/**
 * Dynamic mode (`serve --dynamic`): three tools in place of the whole catalogue, so a 1,000-operation
 * API costs a model a few hundred tokens up front. `search_tools` and `describe_tool` only ever see
 * the tools this caller may see (the same `listFor(scopes)` as `tools/list`); `call_tool` is not a
 * second way in — it hands the named tool and its arguments to the very same pipeline as a direct
 * call, so scopes, toggles, rate limits, validation, confirmation, masking and the audit all apply.
 */
export const SEARCH_TOOL = 'search_tools';
export const DESCRIBE_TOOL = 'describe_tool';
export const CALL_TOOL = 'call_tool';
export const META_NAMES: ReadonlySet<string> = new Set([SEARCH_TOOL, DESCRIBE_TOOL, CALL_TOOL]);

const MAX_RESULTS = 20;
const SUMMARY_MAX = 160;

export function metaTools(apiTitle: string): ListedTool[] {
  const api = apiTitle || 'the API';
  return [
    {
      name: SEARCH_TOOL,
      title: 'Search tools',
      description:
        `Find operations of ${api} by describing what you want to do in plain words ` +
        '(e.g. "list open pull requests"). Returns the best matches, best first, with a one-line summary ' +
        '(and, when several APIs are served, the API each belongs to: name it in the words to prefer it). ' +
        `Then call ${DESCRIBE_TOOL} for a tool's arguments, and ${CALL_TOOL} to run it.`,
      inputSchema: {
        type: 'object',
        properties: {
          query: { type: 'string', minLength: 1, maxLength: 300, description: 'What you want to do.' },
          limit: {
            type: 'integer',
            minimum: 1,
            maximum: MAX_RESULTS,
            default: 8,
            description: 'How many results (default 8).',
          },
        },
        required: ['query'],
        additionalProperties: false,
      },
      outputSchema: {
        type: 'object',
        properties: {
          results: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                name: { type: 'string' },
                api: { type: 'string', description: 'The API the tool belongs to (several APIs served).' },
                summary: { type: 'string' },
                kind: { type: 'string', enum: ['read', 'write', 'destructive'] },
                risk: {
                  type: 'array',
                  items: { type: 'string' },
                  description: 'The risk classes of the tool (read, write, destructive, admin, credential…).',
                },
                confirm: { type: 'boolean' },
              },
              required: ['name', 'summary', 'kind'],
            },
          },
        },
        required: ['results'],
      },
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    {
      name: DESCRIBE_TOOL,
      title: 'Describe a tool',
      description: `The full description, input schema and output schema (the shape of its result) of one tool found with ${SEARCH_TOOL}.`,
      inputSchema: {
        type: 'object',
        properties: { name: { type: 'string', minLength: 1, maxLength: 200, description: 'The tool name.' } },
        required: ['name'],
        additionalProperties: false,
      },
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    {
      name: CALL_TOOL,
      title: 'Call a tool',
      description:
        `Run one tool found with ${SEARCH_TOOL}, with arguments that match the input schema ${DESCRIBE_TOOL} ` +
        'gave. The call is checked, may need the user’s confirmation, and is audited exactly as a direct call.',
      inputSchema: {
        type: 'object',
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 200, description: 'The tool name.' },
          arguments: { type: 'object', description: "The tool's arguments." },
        },
        required: ['name'],
        additionalProperties: false,
      },
      // Whatever the called tool answers (it may be anything, or an error): no fixed output schema.
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
  ];
}

export interface SearchResult {
  name: string;
  /** In an API set: which API the tool belongs to. */
  api?: string;
  summary: string;
  kind: 'read' | 'write' | 'destructive';
  /** The tool's risk classes, so an agent sees a hit's effect before it describes or calls it. */
  risk: string[];
  confirm?: boolean;
}

export class MetaTools {
  /** The index of the current catalogue (a spec reload replaces it). */
  constructor(private readonly index: () => ToolSearch) {}

  find(view: ToolView, scopes: readonly string[], args: unknown): { results: SearchResult[] } {
    const a = object(args);
    const query = a.query;
    if (typeof query !== 'string' || query.trim().length === 0 || query.length > 300)
      throw invalid('query', 'is required: a string of 1 to 300 characters');
    const limit = a.limit ?? 8;
    if (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > MAX_RESULTS)
      throw invalid('limit', `must be a whole number from 1 to ${MAX_RESULTS}`);
    unknownKeys(a, ['query', 'limit']);
    // The one visibility rule shared with `tools/list`, by name: no schema is built for a search.
    const visible = view.visibleTo(scopes);
    const hits = this.index().search(query, (n) => visible.has(n), limit as number);
    return {
      results: hits.map((h) => {
        const e = view.get(h.name)!;
        const t = e.decision.tool;
        return {
          name: h.name,
          ...(t.api !== undefined ? { api: t.api } : {}),
          summary: cleanLine(t.title ?? t.description.split('\n')[0], SUMMARY_MAX),
          kind: e.decision.kind,
          risk: [...t.risk.classes],
          ...(e.decision.confirm ? { confirm: true } : {}),
        };
      }),
    };
  }

  /** A hidden or unknown name gets exactly the error a direct call would: it reveals nothing. */
  describe(view: ToolView, scopes: readonly string[], args: unknown): ListedTool {
    const a = object(args);
    if (typeof a.name !== 'string' || a.name.length === 0) throw invalid('name', 'is required: a tool name');
    unknownKeys(a, ['name']);
    const visible = view.visibleTo(scopes);
    if (!visible.has(a.name)) throw notFound('TOOL_NOT_FOUND', a.name, visible);
    return view.get(a.name)!.listed;
  }

  /** The target of `call_tool`, checked for shape only: the pipeline does everything else. */
  target(args: unknown): { name: string; arguments: unknown } {
    const a = object(args);
    if (typeof a.name !== 'string' || a.name.length === 0) throw invalid('name', 'is required: a tool name');
    unknownKeys(a, ['name', 'arguments']);
    if (META_NAMES.has(a.name))
      throw invalid('name', 'names a tool of the API, not one of the three meta-tools');
    return { name: a.name, arguments: a.arguments ?? {} };
  }
}

function object(v: unknown): Record<string, unknown> {
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new WardenError('INVALID_ARGUMENT', 'The arguments must be an object.');
  return v as Record<string, unknown>;
}

function unknownKeys(a: Record<string, unknown>, allowed: string[]): void {
  for (const k of Object.keys(a))
    if (!allowed.includes(k))
      throw invalid(k.slice(0, 64), `is not an argument (expected ${allowed.join(', ')})`);
}

function invalid(field: string, what: string): WardenError {
  return new WardenError('INVALID_ARGUMENT', `Invalid argument "${field}": ${what}.`);
}
