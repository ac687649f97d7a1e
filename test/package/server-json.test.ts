import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import AjvModule from 'ajv';
import { describe, expect, it } from 'vitest';
import { addFormats } from '../../src/lib/ajv.js';
import { credentialEnvVar } from '../../src/upstream/credentials.js';
import { mcpClient } from '../support/gateway.js';
import { SHOP_SPEC, tempTree } from '../support/paths.js';
import { shopEnv, startShop } from '../support/shop.js';
import { runCli, stdioTransport } from '../support/stdio.js';

/**
 * server.json, the entry the MCP registry publishes, checked against the registry's published
 * schema (vendored in test/support/registry/, see its README) and against the package it describes:
 * its version, its name, and arguments that really start the gateway.
 */

const root = new URL('../../', import.meta.url).pathname;
const REGISTRY = join(root, 'test/support/registry');
const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

interface Argument {
  type: 'positional' | 'named';
  name?: string;
  value?: string;
  isRequired?: boolean;
  format?: string;
}
interface ServerJson {
  $schema: string;
  name: string;
  description: string;
  version: string;
  repository: { url: string; source: string };
  packages: Array<{
    registryType: string;
    identifier: string;
    version: string;
    transport: { type: string };
    packageArguments: Argument[];
    environmentVariables: Array<{ name: string; isRequired?: boolean; isSecret?: boolean }>;
  }>;
}

const server = readJson(join(root, 'server.json')) as ServerJson;
const pkg = readJson(join(root, 'package.json'));
const schema = readJson(join(REGISTRY, 'server.schema.json'));

// The schema is draft-07, Ajv's default draft. `example` is an annotation the registry's generator
// writes; declaring it keeps strict mode on for everything else.
const ajv = new AjvModule.default({ allErrors: true, strictTypes: false });
ajv.addVocabulary(['example']);
addFormats(ajv);
const validate = ajv.compile(schema);
const errorsOf = (doc: unknown) => (validate(doc) ? [] : ajv.errorsText(validate.errors).split(', '));

describe('the vendored registry schema', () => {
  it('is the published file its README names, and the one server.json declares', () => {
    const readme = readFileSync(join(REGISTRY, 'README.md'), 'utf8');
    const sha = createHash('sha256')
      .update(readFileSync(join(REGISTRY, 'server.schema.json')))
      .digest('hex');
    expect(readme).toContain(sha);
    expect(readme).toContain(schema.$id);
    expect(server.$schema).toBe(schema.$id);
  });

  it("accepts the registry's valid examples and refuses its invalid ones (the validator is not vacuous)", () => {
    const dir = (kind: string) => join(REGISTRY, 'examples', kind);
    const valid = readdirSync(dir('valid'));
    const invalid = readdirSync(dir('invalid'));
    expect(valid.length).toBeGreaterThanOrEqual(3);
    expect(invalid.length).toBeGreaterThanOrEqual(5);
    for (const f of valid) expect(errorsOf(readJson(join(dir('valid'), f))), f).toEqual([]);
    for (const f of invalid) expect(errorsOf(readJson(join(dir('invalid'), f))), f).not.toEqual([]);
  });
});

describe('server.json', () => {
  it('is valid against the registry schema', () => {
    expect(errorsOf(server)).toEqual([]);
  });

  it('breaks the schema where the registry would refuse it', () => {
    const mutated = (change: (s: ServerJson) => void) => {
      const copy = structuredClone(server);
      change(copy);
      return errorsOf(copy);
    };
    expect(mutated((s) => (s.description = 'x'.repeat(101)))).toContainEqual(
      expect.stringMatching(/description/),
    );
    expect(mutated((s) => (s.name = 'mcp-warden'))).toContainEqual(expect.stringMatching(/name/));
    expect(mutated((s) => (s.packages[0]!.version = 'latest'))).not.toEqual([]);
  });

  it('describes this package: its version, npm name and mcpName, and repository', () => {
    expect(server.version).toBe(pkg.version);
    const npm = server.packages.find((p) => p.registryType === 'npm')!;
    expect(npm.identifier).toBe(pkg.name);
    expect(npm.version).toBe(pkg.version);
    // The registry checks that the npm package claims the server name.
    expect(pkg.mcpName).toBe(server.name);
    expect(server.name).toMatch(/^io\.github\.[^/]+\/mcp-warden$/);
    expect(pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '')).toBe(server.repository.url);
    expect(pkg.files).toContain('server.json');
  });

  it('names arguments `serve` has, with --spec required and nothing else', () => {
    const npm = server.packages[0]!;
    expect(npm.transport).toEqual({ type: 'stdio' });
    const help = runCli(['serve', '--help']).stdout;
    for (const a of npm.packageArguments.filter((a) => a.type === 'named'))
      expect(help).toContain(`${a.name} <`);
    expect(npm.packageArguments.filter((a) => a.isRequired).map((a) => a.name)).toEqual(['--spec']);
    // None is required: a spec without security needs no credential, and tracing is off by default.
    expect(npm.environmentVariables.filter((v) => v.isRequired)).toEqual([]);
  });

  it('lists only environment variables the gateway reads', () => {
    const src = readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => readFileSync(join(root, 'src', f), 'utf8'))
      .join('\n');
    for (const v of server.packages[0]!.environmentVariables) {
      if (v.name.startsWith('MCP_WARDEN_CRED_')) {
        // An upstream credential: the variable of the scheme its description names.
        expect(v.isSecret).toBe(true);
        const scheme = /security scheme named (\w+)/.exec(JSON.stringify(v))?.[1];
        expect(scheme, v.name).toBeDefined();
        expect(credentialEnvVar(scheme!)).toBe(v.name);
      } else expect(src, v.name).toContain(`'${v.name}'`);
    }
  });

  it('starts the gateway over stdio with its arguments as a registry client builds them', async () => {
    const shop = await startShop();
    const npm = server.packages[0]!;
    // A client fills each named argument with the user's value; positional ones are used as given.
    const values: Record<string, string> = { '--spec': SHOP_SPEC, '--base-url': shop.url };
    const args = npm.packageArguments.flatMap((a) =>
      a.type === 'positional' ? [a.value!] : a.name! in values ? [a.name!, values[a.name!]!] : [],
    );
    expect(args.slice(0, 2)).toEqual(['serve', '--stdio']);
    const state = tempTree({});
    const { transport, stderr } = stdioTransport(args, shopEnv(shop, { HOME: state, XDG_STATE_HOME: state }));
    const client = mcpClient();
    try {
      await client.connect(transport);
      const tools = (await client.listTools()).tools.map((t) => t.name);
      expect(tools, stderr()).toContain('listCustomers');
    } finally {
      await client.close();
      await shop.close();
    }
  });
});
