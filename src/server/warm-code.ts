import { Duplex } from 'node:stream';
import { createSchemaCompiler } from '../catalog/validator.js';
import { classifyProperty } from '../classify/data-classes.js';
import { compileLinear } from '../lib/linear-regexp.js';
import { Agent } from '../lib/undici-parts.js';
import type { JsonSchemaObject } from '../model/json-schema.js';
import { screenValue } from '../protect/injection.js';
import { createRedactor } from '../protect/redactor.js';

/**
 * What a first `tools/call` pays once per process whatever the tool (issue 22, target 1: no first
 * call may stall more than 50 ms): code run for the first time (V8 compiles each function lazily at
 * its first run: Ajv's code generator, the injection screen, the redactor, the data-class rules) and
 * re2js's Unicode case tables, decoded at the first literal of the first pattern it compiles (20–40 ms
 * in a fresh process). Stripe's GetCustomers: 97 ms of main-thread CPU for the first call, 28 ms for
 * the first call of another tool after it (bench/first-call.mjs --then).
 *
 * Each slice runs the same code on a small made-up input, with its own objects (a compiler, a
 * redactor of its own): nothing the gateway holds is read or changed, so a slice that fails changes
 * nothing either — the call then does the work itself, as without it. Slices are small (a few ms
 * each once the code is loaded; the case-table decode is one step of re2js and cannot be cut) and
 * the gateway runs each in its own task (lazyStages), so a call that arrives meanwhile waits for one
 * slice at most.
 */
export const WARM_SLICES: ReadonlyArray<() => void> = [
  // Through the path Ajv's patterns take (linearRegExp → compileLinear): the case tables.
  () => {
    compileLinear('^warm-up_[a-z0-9]{1,8}$');
  },
  // Ajv's code generator a part at a time (a first compile of a whole schema is 30–50 ms of new code).
  () => {
    compiler = createSchemaCompiler([]);
    compiler.compile({ type: 'string' })('x');
  },
  () => compiler?.compile(PART_OBJECT)({ limit: 3, extra: true }),
  () => compiler?.compile(PART_PATTERN)({ id: 'cus_1', email: 'a@example.com' }),
  () => compiler?.compile(PART_BRANCHES)({ expand: ['a'], starting_after: null, kind: 'c' }),
  // Ajv's generator runs interpreted until V8 has seen it often: a tool's first input schema still
  // took 8–25 ms to compile after the parts above, 4–6 ms after these (a new object each: Ajv
  // caches a compile by schema identity).
  () => compiler?.compile(listInput())({ limit: 3, created: { gt: 1 }, expand: ['data'] }),
  () => compiler?.compile(listInput())({ limit: 0, created: 'x', state: 'none' }),
  () => compiler?.compile(listInput())({ body: { note: 1 } }),
  () => {
    outputCheck = compiler?.compileLazily(OUTPUT);
  },
  () => {
    // Its definitions compile as the data reaches them.
    outputCheck?.({
      object: 'list',
      url: '/v1/x',
      has_more: false,
      data: [{ id: 'x', name: 'n', meta: {} }],
    });
    outputCheck?.({ object: 'list', data: [{ id: 1 }] });
    compiler = undefined;
    outputCheck = undefined;
  },
  () => screenValue({ id: 'cus_1' }),
  () => screenValue({ description: 'A customer note: please call back tomorrow.' }),
  () => screenValue({ items: [{ name: 'Wireless mouse', note: 'Two buttons and a wheel, blue.' }] }),
  () => {
    const r = createRedactor();
    r.text('Jane Doe <jane.doe@example.com>, +1 415 555 0100, card 4242 4242 4242 4242, token sk_test_abc');
    r.credentials('nothing known here');
  },
  () => {
    for (const [name, schema] of PROPERTIES) classifyProperty(name, schema, ['customer'], () => undefined);
  },
  // Its steps run in tasks of their own (see warmHttp); a failure only leaves the call that work.
  () => {
    warmHttp().catch(() => undefined);
  },
];

/**
 * One request through undici's HTTP/1.1 client over a socket in memory (no network, no name
 * lookup): the first upstream request of a process compiled llhttp's WebAssembly and ran undici's
 * connect, write and parse code for the first time, 15–20 ms of a first call. Through an Agent and
 * its `dispatch`, as the gateway's requests go (pipeline/send.ts: agent → pool → client), but its
 * own: the gateway's is not touched. (`request` is not there: undici's index adds it, and the
 * gateway loads undici's Agent alone, lib/undici-parts.ts.) The connection and the answer each come
 * in a task of their own, so the work is cut in about three pieces. Resolves to the body read.
 */
export async function warmHttp(): Promise<string> {
  const agent = new Agent({
    connect: (_options, callback) => {
      const socket = memorySocket('{"object":"list","data":[]}');
      setImmediate(() => callback(null, socket as never));
    },
  });
  try {
    return await new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      agent.dispatch(
        { origin: 'http://warm-up.invalid', path: '/v1/warm-up', method: 'GET' },
        {
          // The handler API pipeline/send.ts uses (undici tells it by `onRequestStart`).
          onRequestStart: () => {},
          onResponseStart: () => {},
          onResponseData: (_c, chunk) => {
            chunks.push(chunk);
          },
          onResponseEnd: () => resolve(Buffer.concat(chunks).toString()),
          onResponseError: (_c, e) => reject(e),
        },
      );
    });
  } finally {
    await agent.destroy();
  }
}

/** A duplex that answers the first request written to it with `200` and a JSON body, in a later task. */
function memorySocket(body: string): Duplex {
  let answered = false;
  const socket = new Duplex({
    read() {},
    write(_chunk, _encoding, done) {
      if (!answered) {
        answered = true;
        setImmediate(() =>
          socket.push(
            `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
          ),
        );
      }
      done();
    },
  });
  // What undici calls on a net.Socket.
  return Object.assign(socket, {
    setNoDelay: () => socket,
    setKeepAlive: () => socket,
    setTimeout: () => socket,
    ref: () => socket,
    unref: () => socket,
  });
}

/** The warm-up's own compiler, between its Ajv slices (dropped after the last). */
let compiler: ReturnType<typeof createSchemaCompiler> | undefined;
let outputCheck: ((data: unknown) => boolean) | undefined;

const PART_OBJECT: JsonSchemaObject = {
  type: 'object',
  properties: { limit: { type: 'integer', minimum: 1, maximum: 100 } },
  required: ['limit'],
  additionalProperties: false,
};
const PART_PATTERN: JsonSchemaObject = {
  type: 'object',
  properties: {
    id: { type: 'string', maxLength: 5000, pattern: '^cus_[A-Za-z0-9]+$' },
    email: { type: 'string', format: 'email' },
  },
};
const PART_BRANCHES: JsonSchemaObject = {
  type: 'object',
  properties: {
    expand: { type: 'array', items: { type: 'string', maxLength: 5000 } },
    starting_after: { anyOf: [{ type: 'string' }, { type: 'null' }] },
    kind: { type: 'string', enum: ['a', 'b'] },
  },
};

/** A list operation's arguments as the converter writes them (Stripe's, GitHub's, Kubernetes'). */
const listInput = (): JsonSchemaObject => ({
  type: 'object',
  properties: {
    created: {
      anyOf: [
        {
          type: 'object',
          title: 'range_query_specs',
          properties: { gt: { type: 'integer' }, gte: { type: 'integer' }, lt: { type: 'integer' } },
        },
        { type: 'integer' },
      ],
    },
    email: { type: 'string', maxLength: 512, description: 'Only the customers with this email.' },
    expand: { type: 'array', items: { type: 'string', maxLength: 5000 } },
    limit: { type: 'integer', minimum: 1, maximum: 100, default: 10 },
    since: { type: 'string', format: 'date-time' },
    state: { type: 'string', enum: ['open', 'closed', 'all'] },
    labelSelector: { type: 'string', pattern: '^[a-z0-9=,!-]*$' },
    body: { type: 'object', properties: { note: { type: 'string' } }, additionalProperties: false },
  },
  required: ['limit'],
  additionalProperties: false,
});

const OUTPUT: JsonSchemaObject = {
  type: 'object',
  properties: {
    object: { type: 'string', enum: ['list'] },
    url: { type: 'string', pattern: '^/v1/' },
    has_more: { type: 'boolean' },
    data: { type: 'array', items: { $ref: '#/$defs/item' } },
  },
  required: ['object', 'data'],
  $defs: {
    item: {
      type: 'object',
      properties: {
        id: { type: 'string' },
        name: { anyOf: [{ type: 'string' }, { type: 'null' }] },
        meta: { type: 'object', additionalProperties: { type: 'string' } },
      },
      required: ['id'],
    },
  },
};

const PROPERTIES: ReadonlyArray<[string, JsonSchemaObject]> = [
  ['email', { type: 'string', format: 'email' }],
  ['phone', { type: 'string' }],
  ['name', { type: 'string', description: "The customer's full name." }],
  ['api_key', { type: 'string' }],
  ['amount', { type: 'integer' }],
  ['id', { type: 'string' }],
];
