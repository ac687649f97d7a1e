import { join } from 'node:path';
import { Client, type ClientOptions, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll } from 'vitest';
import { type Gateway, startGateway } from '../../src/server/serve.js';
import { tempTree } from './paths.js';

export { codeOf, textOf } from './pipeline.js';

import { ADMIN_TOKEN, SHOP_SPEC, type Shop, shopEnv, startShop } from './shop.js';

type ServeOptions = Parameters<typeof startGateway>[0];
/** `legacy`: a 2025-11-25 client; `{ pin: '2026-07-28' }`: the modern era. */
export type Era = NonNullable<NonNullable<ClientOptions['versionNegotiation']>['mode']>;

export interface ConnectOptions {
  /** The client's name (default: mcp-warden-test). */
  name?: string;
  era?: Era;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** More client options (capabilities, listChanged…). */
  options?: ClientOptions;
}

/** A client with the given era (default legacy), not connected yet. */
export function mcpClient(o: ConnectOptions = {}): Client {
  return new Client(
    { name: o.name ?? 'mcp-warden-test', version: '1' },
    { versionNegotiation: { mode: o.era ?? 'legacy' }, ...o.options },
  );
}

/** A real MCP client connected over Streamable HTTP to `url`. */
export async function connectHttp(
  url: string,
  o: ConnectOptions = {},
  client = mcpClient(o),
): Promise<Client> {
  await client.connect(
    new StreamableHTTPClientTransport(
      new URL(url),
      o.token ? { requestInit: { headers: { authorization: `Bearer ${o.token}` } } } : undefined,
    ),
  );
  return client;
}

export interface TestGatewayOptions {
  /** A spec file, or an inline document (written to spec.json beside the policy). */
  spec: string | object;
  baseUrl: string;
  /** Policy YAML, written to warden.yaml (none: the secure defaults). */
  policy?: string;
  /** An admin port (port 0); the policy reads ADMIN_TOKEN from this gateway's env. */
  admin?: boolean;
  /** The gateway's environment (absent: the process's). */
  env?: NodeJS.ProcessEnv;
  /** Default: error (quiet). */
  logLevel?: string;
  /** Any other option of startGateway (watchSpec, pinsFile, dynamic, timeoutMs…). */
  serve?: Partial<ServeOptions>;
}

export interface TestGateway {
  gw: Gateway;
  /** The temp directory holding the policy, the spec (if inline) and the audit. */
  dir: string;
  policyFile: string;
  auditFile: string;
  /** A client over HTTP, closed by `close`. */
  connect(o?: ConnectOptions, client?: Client): Promise<Client>;
  /** Closes the clients, then the gateway (then the shop, for `startShopGateway`). */
  close(): Promise<void>;
}

/** The gateway in process, serving Streamable HTTP on 127.0.0.1:0, its files in a fresh temp directory. */
export async function startTestGateway(o: TestGatewayOptions): Promise<TestGateway> {
  const dir = tempTree({
    ...(typeof o.spec === 'object' ? { 'spec.json': o.spec } : {}),
    ...(o.policy !== undefined ? { 'warden.yaml': o.policy } : {}),
  });
  const policyFile = join(dir, 'warden.yaml');
  const auditFile = join(dir, 'audit.jsonl');
  const gw = await startGateway({
    spec: typeof o.spec === 'object' ? join(dir, 'spec.json') : o.spec,
    baseUrl: o.baseUrl,
    ...(o.policy !== undefined ? { policy: policyFile } : {}),
    auditFile,
    transport: { kind: 'http', port: 0 },
    ...(o.admin ? { admin: { port: 0 } } : {}),
    logLevel: o.logLevel ?? 'error',
    ...(o.env ? { env: o.env } : {}),
    ...o.serve,
  });
  const clients: Client[] = [];
  return {
    gw,
    dir,
    policyFile,
    auditFile,
    connect: async (c, client) => {
      const connected = await connectHttp(gw.url!, c, client);
      clients.push(connected);
      return connected;
    },
    close: async () => {
      for (const c of clients) await c.close();
      await gw.close();
    },
  };
}

export type ShopGateway = TestGateway & { shop: Shop };

/** The gateway in front of the demo shop (started here unless given), with its credential and ADMIN_TOKEN. */
export async function startShopGateway(
  o: Omit<TestGatewayOptions, 'spec' | 'baseUrl'> & { spec?: string; shop?: Shop } = {},
): Promise<ShopGateway> {
  const shop = o.shop ?? (await startShop());
  const fixture = await startTestGateway({
    ...o,
    spec: o.spec ?? SHOP_SPEC,
    baseUrl: shop.url,
    env: shopEnv(shop, { ...(o.admin ? { ADMIN_TOKEN } : {}), ...o.env }),
  });
  return {
    ...fixture,
    shop,
    close: async () => {
      await fixture.close();
      if (!o.shop) await shop.close();
    },
  };
}

/**
 * One call straight into the gateway's pipeline (no MCP transport), as the caller `id` with `scopes`,
 * authenticated the way an API key would be.
 */
export function callPipeline(
  gw: Gateway,
  name: string,
  args: unknown,
  id: string,
  scopes: readonly string[],
): ReturnType<Gateway['pipeline']['call']> {
  return gw.pipeline.call({ name, arguments: args, principal: { id, scopes, via: 'api-key' } });
}

/**
 * Starts a fixture before the tests of the enclosing `describe` and closes it after them; the
 * returned function reads it inside the tests.
 */
export function useFixture<T extends { close(): Promise<void> }>(start: () => Promise<T>): () => T {
  let fixture: T | undefined;
  beforeAll(async () => {
    fixture = await start();
  });
  afterAll(() => fixture?.close());
  return () => {
    if (!fixture) throw new Error('the fixture did not start (see the beforeAll error)');
    return fixture;
  };
}
