import { Approvals } from '../../src/control/approvals.js';
import { buildView, type ToolView } from '../../src/control/view.js';
import type { AnyRecord, AuditSink } from '../../src/model/audit.js';
import type { Catalog, Tool } from '../../src/model/catalog.js';
import { createLogger } from '../../src/observe/log.js';
import type { CallContext, CallInput } from '../../src/pipeline/context.js';
import { createPipeline, type Pipeline, type PipelineOptions } from '../../src/pipeline/index.js';
import { evaluatePolicy } from '../../src/policy/evaluate.js';
import { parsePolicy } from '../../src/policy/load.js';
import { createRedactor } from '../../src/protect/redactor.js';
import { createMemoryApprovals } from '../../src/state/approvals.js';
import { createMemoryReplayGuard } from '../../src/state/memory.js';
import { parseBaseUrl } from '../../src/upstream/base-url.js';
import { catalogOf, minimalSpec } from './helpers.js';

/** A spec exercising every parameter location and style the request builder handles. */
export const ITEMS_SPEC = minimalSpec(
  {
    '/items/{id}/parts/{part}': {
      get: {
        operationId: 'getPart',
        parameters: [
          { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
          { name: 'part', in: 'path', required: true, schema: { type: 'integer' } },
          { name: 'tags', in: 'query', schema: { type: 'array', items: { type: 'string' } } },
          { name: 'csv', in: 'query', explode: false, schema: { type: 'array', items: { type: 'string' } } },
          {
            name: 'filter',
            in: 'query',
            style: 'deepObject',
            schema: { type: 'object', additionalProperties: { type: 'string' } },
          },
          { name: 'q', in: 'query', schema: { type: 'string' } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1 } },
          { name: 'X-Trace', in: 'header', schema: { type: 'string' } },
          { name: 'session_hint', in: 'cookie', schema: { type: 'string' } },
        ],
        responses: {
          '200': {
            description: 'ok',
            content: {
              'application/json': { schema: { type: 'object', properties: { id: { type: 'string' } } } },
            },
          },
        },
      },
    },
    '/items': {
      post: {
        operationId: 'createItem',
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['name'],
                properties: { name: { type: 'string' }, qty: { type: 'integer' } },
              },
            },
          },
        },
        responses: { '201': { description: 'created' } },
      },
    },
    '/forms': {
      post: {
        operationId: 'postForm',
        requestBody: {
          content: {
            'application/x-www-form-urlencoded': {
              schema: {
                type: 'object',
                properties: { a: { type: 'string' }, b: { type: 'array', items: { type: 'string' } } },
              },
            },
          },
        },
        responses: { '200': { description: 'ok' } },
      },
    },
  },
  {
    servers: [{ url: 'https://api.example.com/v2' }],
    components: { securitySchemes: { itemKey: { type: 'apiKey', in: 'header', name: 'X-Item-Key' } } },
    security: [{ itemKey: [] }],
  },
);

let cached: Promise<Catalog> | undefined;
export function itemsCatalog(): Promise<Catalog> {
  cached ??= catalogOf(ITEMS_SPEC);
  return cached;
}

export function toolNamed(catalog: Catalog, name: string): Tool {
  const t = catalog.tools.find((x) => x.name === name);
  if (!t) throw new Error(`no tool ${name}`);
  return t;
}

export function contextFor(input: Partial<CallInput> & { name: string }): CallContext {
  return {
    id: 'test',
    startedAt: performance.now(),
    input: { principal: { id: 'tester', scopes: ['tools:read'], via: 'stdio' }, arguments: {}, ...input },
  };
}

/** The view a policy (YAML text; default: none) gives a catalogue, with no credential missing. */
export function viewOf(catalog: Catalog, policyYaml = 'version: 1'): ToolView {
  const p = parsePolicy(policyYaml, 'test.yaml');
  const decisions = evaluatePolicy(catalog, { doc: p.doc, file: 'test.yaml', lineOf: p.lineOf });
  return buildView(decisions, new Map(), { kill: 'none', toggles: new Map() }, 1);
}

/** A context as resolve leaves it: the tool and its decision from the view. */
export function resolvedContext(view: ToolView, input: Partial<CallInput> & { name: string }): CallContext {
  const ctx = contextFor(input);
  const entry = view.get(input.name);
  if (!entry) throw new Error(`no tool ${input.name}`);
  ctx.tool = entry.decision.tool;
  ctx.decision = { ...entry, limits: entry.decision.limits, policyVersion: view.policyVersion };
  return ctx;
}

/** An audit sink in memory: the records written, in order. */
export function memoryAudit(): AuditSink & { records: AnyRecord[] } {
  const records: AnyRecord[] = [];
  return { records, write: (r) => void records.push(r), close: async () => {} };
}

/**
 * The whole pipeline over `catalog`, as start-up assembles it: the policy's view (YAML text), every
 * tool's upstream at `origin` (default: a closed port, for tests that must never reach one), no
 * credential needed, the audit in memory.
 */
export function pipelineFor(
  catalog: Catalog,
  o: { policy?: string; origin?: string; audit?: AuditSink } & Pick<
    PipelineOptions,
    'send' | 'limit' | 'onCall'
  > &
    Partial<Pick<PipelineOptions, 'logger'>> = {},
): Pipeline {
  const view = viewOf(catalog, o.policy);
  const redactor = createRedactor();
  const target = parseBaseUrl(o.origin ?? 'http://127.0.0.1:9', 'test');
  const audit = o.audit ?? memoryAudit();
  return createPipeline({
    catalog,
    targets: new Map(catalog.tools.map((t) => [t, target])),
    control: {
      view: () => view,
      credentials: () => ({ forTool: () => ({ creds: [] }), missing: new Map(), secrets: [], close() {} }),
    },
    confirm: {
      secret: Buffer.alloc(32, 7),
      ttlSeconds: 300,
      replay: createMemoryReplayGuard(),
      approvals: testApprovals(audit),
    },
    redactor,
    audit,
    logger: o.logger ?? createLogger({ level: 'silent', redactor }),
    ...(o.onCall ? { onCall: o.onCall } : {}),
    ...(o.send ? { send: o.send } : {}),
    ...(o.limit ? { limit: o.limit } : {}),
  });
}

/** The error code a tool result starts with (`[CODE] …`), or OK for a success. */
export const codeOf = (r: { content: Array<{ text?: string }> }): string =>
  /^\[([A-Z_]+)\]/.exec(r.content[0]?.text ?? '')?.[1] ?? 'OK';

/** A result's text blocks, joined. */
export const textOf = (r: { content: unknown }): string =>
  (r.content as Array<{ text?: string }>).map((c) => c.text ?? '').join('\n');

/** Approvals in memory, audited to `audit`, without a sweeper (tests call `sweep`). */
export function testApprovals(
  audit: AuditSink,
  o: {
    pendingSeconds?: number;
    runSeconds?: number;
    now?: () => number;
    operators?: Record<string, string[]>;
  } = {},
): Approvals {
  return new Approvals({
    store: createMemoryApprovals(),
    audit: (r) => audit.write(r),
    operators: new Map(Object.entries(o.operators ?? {}).map(([id, principals]) => [id, { principals }])),
    pendingSeconds: o.pendingSeconds ?? 3600,
    runSeconds: o.runSeconds ?? 900,
    sweepMs: 0,
    ...(o.now ? { now: o.now } : {}),
  });
}
