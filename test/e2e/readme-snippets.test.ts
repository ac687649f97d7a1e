import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mcpClient } from '../support/gateway.js';
import { CLI, SHOP_SPEC, tempTree } from '../support/paths.js';
import { type Shop, startShop } from '../support/shop.js';
import { runCli } from '../support/stdio.js';
import { expectAudited } from '../support/wait.js';

// The README's client snippets are what newcomers paste: each one is parsed out of README.md and its
// command run for real (`npx -y mcp-warden` → this checkout's CLI), with a real MCP client over stdio.

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The fenced block after each `<!-- snippet: name -->` marker. */
function snippets(): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of README.matchAll(/<!-- snippet: ([\w-]+) -->\s*\n```\w*\n([\s\S]*?)\n```/g))
    found.set(m[1]!, m[2]!);
  return found;
}

/** Words as a POSIX shell splits them: quotes, backslash escapes and line continuations. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\' && line[i + 1] === '\n') i++;
    else if (c === '\\') word = (word ?? '') + line[++i];
    else if (c === "'" || c === '"') {
      const end = line.indexOf(c, i + 1);
      if (end < 0) throw new Error(`unterminated ${c} in: ${line}`);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else word = (word ?? '') + c;
  }
  if (word !== undefined) words.push(word);
  return words;
}

interface Launch {
  command: string;
  args: string[];
  env: Record<string, string>;
}

/** The one server of a JSON config (`mcpServers` for Claude Desktop and Cursor, `servers` for VS Code). */
function fromJson(text: string, key: 'mcpServers' | 'servers'): Launch & { type?: string } {
  const doc = JSON.parse(text) as Record<string, Record<string, Launch & { type?: string }>>;
  const servers = Object.values(doc[key] ?? {});
  expect(servers, `exactly one entry under "${key}"`).toHaveLength(1);
  return servers[0]!;
}

/** `claude mcp add [--transport stdio] [--env K=V]… [--scope s] <name> -- <command> <args…>`. */
function fromClaudeCode(text: string): Launch {
  const words = shellWords(text);
  expect(words.slice(0, 3)).toEqual(['claude', 'mcp', 'add']);
  const env: Record<string, string> = {};
  let i = 3;
  let name: string | undefined;
  for (; i < words.length && words[i] !== '--'; i++) {
    const w = words[i]!;
    if (w === '--env' || w === '-e') {
      const [k, ...v] = words[++i]!.split('=');
      env[k!] = v.join('=');
    } else if (w === '--transport' || w === '-t') expect(words[++i]).toBe('stdio');
    else if (w === '--scope' || w === '-s') i++;
    else if (w.startsWith('-')) throw new Error(`unknown claude mcp add option ${w}`);
    else name = w;
  }
  expect(name, 'the server name, before --').toBeTruthy();
  const [command, ...args] = words.slice(i + 1);
  return { command: command!, args, env };
}

// biome-ignore lint/suspicious/noTemplateCurlyInString: VS Code's variable, as the README writes it
const SPEC_PLACEHOLDERS = ['/path/to/openapi.yaml', '${workspaceFolder}/openapi.yaml'];
const BASE_URL_PLACEHOLDER = 'https://api.example.com/v1';
const KEY_PLACEHOLDER = /^<your API key>$|^\$\{input:[\w-]+\}$/;

describe('README client snippets run as printed', () => {
  let shop: Shop;
  let spec: string;
  beforeAll(async () => {
    shop = await startShop();
    // The snippets name a scheme `apiKey` (MCP_WARDEN_CRED_APIKEY): the shop's spec, its scheme so named.
    const text = readFileSync(SHOP_SPEC, 'utf8');
    expect(text).toContain('shopKey');
    spec = join(tempTree({ 'openapi.yaml': text.replaceAll('shopKey', 'apiKey') }), 'openapi.yaml');
  });
  afterAll(() => shop?.close());

  const found = snippets();
  it('README marks the four client snippets', () => {
    expect([...found.keys()].sort()).toEqual(['claude-code', 'claude-desktop', 'cursor', 'vscode']);
  });

  const launches: Record<string, () => Launch> = {
    'claude-desktop': () => fromJson(found.get('claude-desktop')!, 'mcpServers'),
    cursor: () => fromJson(found.get('cursor')!, 'mcpServers'),
    'claude-code': () => fromClaudeCode(found.get('claude-code')!),
    vscode: () => {
      const server = fromJson(found.get('vscode')!, 'servers');
      expect(server.type).toBe('stdio');
      // Every ${input:id} the server uses is declared in `inputs`.
      const inputs = (JSON.parse(found.get('vscode')!) as { inputs?: Array<{ id: string }> }).inputs ?? [];
      for (const v of Object.values(server.env))
        for (const [, id] of v.matchAll(/\$\{input:([\w-]+)\}/g))
          expect(inputs.map((x) => x.id)).toContain(id);
      return server;
    },
  };

  for (const [name, launch] of Object.entries(launches))
    it(`${name}: initialize, tools/list and a call through the snippet's command`, async () => {
      const l = launch();
      // `npx -y mcp-warden …` → `node dist/cli/main.js …`; placeholders → the shop and its spec.
      expect([l.command, ...l.args.slice(0, 2)]).toEqual(['npx', '-y', 'mcp-warden']);
      const args = l.args
        .slice(2)
        .map((a) => (SPEC_PLACEHOLDERS.includes(a) ? spec : a === BASE_URL_PLACEHOLDER ? shop.url : a));
      expect(args).toEqual(
        expect.arrayContaining(['serve', '--stdio', '--spec', spec, '--base-url', shop.url]),
      );
      expect(args, 'no --audit-file: the audit goes to the state directory').not.toContain('--audit-file');
      expect(Object.keys(l.env)).toEqual(['MCP_WARDEN_CRED_APIKEY']);
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(l.env)) {
        expect(v).toMatch(KEY_PLACEHOLDER);
        env[k] = shop.key;
      }
      const state = tempTree({});
      const cwd = tempTree({});
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: [CLI, ...args],
        env: { PATH: process.env.PATH ?? '', XDG_STATE_HOME: state, ...env },
        cwd,
        stderr: 'pipe',
      });
      let logs = '';
      transport.stderr?.on('data', (d: Buffer) => {
        logs += d.toString();
      });
      const client = mcpClient();
      try {
        await client.connect(transport);
        const { tools } = await client.listTools();
        expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['searchProducts', 'getCustomer']));
        const before = shop.requests.length;
        const res = await client.callTool({ name: 'searchProducts', arguments: { q: 'mouse' } });
        expect(res.isError, JSON.stringify(res.content)).toBeFalsy();
        expect(shop.requests.slice(before)).toContainEqual(
          expect.objectContaining({ url: expect.stringMatching(/^\/v1\/products\/search\?/) }),
        );
        // The README's promise: the audit is in the per-user state directory, nothing in the cwd.
        const auditFile = /audit file (\S+)/.exec(logs)?.[1];
        expect(auditFile, logs).toMatch(new RegExp(`^${state}/mcp-warden/[^/]+/audit\\.jsonl$`));
        await expectAudited(auditFile!, { kind: 'call', tool: 'searchProducts' });
        expect(readdirSync(cwd)).toEqual([]);
      } finally {
        await client.close();
      }
    });
});

describe('README commands parse', () => {
  /** The subcommands and long/short options `--help` lists for a command path (cached). */
  const helps = new Map<string, { commands: Set<string>; options: Set<string> }>();
  function help(path: string[]): { commands: Set<string>; options: Set<string> } {
    const key = path.join(' ');
    if (!helps.has(key)) {
      const r = runCli([...path, '--help'], {});
      expect(r.code, `mcp-warden ${key} --help: ${r.stderr}`).toBe(0);
      // Commander's help: blocks separated by a blank line, each headed `Options:`, `Commands:`…
      const section = (name: string) =>
        (r.stdout.split('\n\n').find((b) => b.startsWith(`${name}:\n`)) ?? '').split('\n').slice(1);
      const commands = new Set(
        section('Commands')
          .map((l) => /^ {2}([\w-]+)/.exec(l)?.[1])
          .filter((x): x is string => !!x),
      );
      const options = new Set(
        section('Options').flatMap((l) => [...(/^ {2}(?:(-\w), )?(--[\w-]+)/.exec(l)?.slice(1) ?? [])]),
      );
      helps.set(key, { commands, options: new Set([...options].filter(Boolean)) });
    }
    return helps.get(key)!;
  }

  // Command lines in ```sh blocks: `mcp-warden …` and `npx -y mcp-warden …` (comments and redirections off).
  const lines = [...README.matchAll(/```sh\n([\s\S]*?)```/g)]
    .flatMap((m) => m[1]!.split('\n'))
    .map((l) => l.replace(/\s+#\s.*$/, '').trim())
    .filter((l) => /^(npx -y )?mcp-warden /.test(l));

  it('README shows commands to check', () => {
    expect(lines.length).toBeGreaterThan(15);
  });

  it.each(lines)('%s', (line) => {
    const words = shellWords(line).slice(line.startsWith('npx') ? 3 : 1);
    const path: string[] = [];
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      if (w === '>' || w === '|') break;
      if (w.startsWith('-')) {
        const flag = w.split('=')[0]!;
        expect(
          [...help(path).options],
          `\`${line}\`: ${flag} is not an option of \`${path.join(' ')}\``,
        ).toContain(flag);
      } else if (help(path).commands.has(w)) path.push(w);
    }
    expect(path.length, `\`${line}\` names no subcommand`).toBeGreaterThan(0);
  });

  it('the first screen says how to run it and how to test it, and every npx line has -y', () => {
    const firstScreen = README.split('\n').slice(0, 30).join('\n');
    expect(firstScreen).toContain('npx -y mcp-warden serve');
    expect(firstScreen).toContain('npm test');
    expect(README).not.toMatch(/npx mcp-warden/);
  });
});
