import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOf, connectHttp, textOf } from '../support/gateway.js';
import { freePort } from '../support/http.js';
import { tempTree } from '../support/paths.js';
import { type RunningScript, startScript } from '../support/script.js';
import { readAudit, waitFor } from '../support/wait.js';

/**
 * `npm run demo:oauth` (scripts/demo-oauth.mjs), run as a newcomer runs it and driven from its
 * banner's words: two callers (the printed keys of alice and bob) call the same tool, each gets
 * CONNECTION_REQUIRED, follows the link as that person (the pages' forms submitted over HTTP, as a
 * browser would), and the retried call reaches the pet store as that person. The printed
 * `connections list` shows both; the printed `connections revoke` asks only that caller again.
 */

const ROOT = new URL('../../', import.meta.url).pathname;
const DEMO = join(ROOT, 'scripts/demo-oauth.mjs');

type Ports = { mcp: number; admin: number; pets: number; auth: number };
const demoEnv = (ports: Ports, dir: string) => ({
  PATH: process.env.PATH ?? '',
  HOME: process.env.HOME ?? '/nonexistent',
  // The real HOME: keep the spec cache out of it (vitest.config.ts).
  MCP_WARDEN_SPEC_CACHE: 'off',
  PORT: String(ports.mcp),
  ADMIN_PORT: String(ports.admin),
  PETS_PORT: String(ports.pets),
  AUTH_PORT: String(ports.auth),
  DEMO_DIR: dir,
});
const freePorts = async (): Promise<Ports> => ({
  mcp: await freePort(),
  admin: await freePort(),
  pets: await freePort(),
  auth: await freePort(),
});

const noStack = (s: string) => expect(s).not.toMatch(/INTERNAL|\bat .*\.m?js:\d+/);

/** What the person's browser saw: each page's text, and the page it ended on (the gateway's callback). */
interface Visit {
  /** Each page shown (not the redirects), with its URL. */
  urls: URL[];
  pages: string[];
  end: { url: URL; status: number; text: string };
}

const attrs = (tag: string) =>
  Object.fromEntries([...tag.matchAll(/([\w-]+)\s*=\s*"([^"]*)"/g)].map((m) => [m[1]!, decode(m[2]!)]));
const decode = (s: string) =>
  s.replace(/&(?:#(\d+)|(amp|lt|gt|quot));/g, (_, n: string | undefined, e: string) =>
    n ? String.fromCharCode(Number(n)) : { amp: '&', lt: '<', gt: '>', quot: '"' }[e]!,
  );
const agrees = /approve|allow|continue|connect|sign in|authori[sz]e/i;

/** A person's browser: its cookies, per origin (kept between visits, as a browser keeps its sessions). */
type Browser = Map<string, Map<string, string>>;

/**
 * Plays a person's browser over HTTP from `link` until it is sent back to `callbackOrigin`'s
 * /oauth/callback: follows redirects with the browser's cookies and, on each page, submits the form
 * whose button agrees (approve, allow, sign in…), typing `user` into its text field. Whatever pages the
 * link leads through (a gateway page first, or the authorization server's at once) it goes on.
 */
async function followLink(jars: Browser, link: string, user: string, callbackOrigin: string): Promise<Visit> {
  const pages: string[] = [];
  const urls: URL[] = [];
  let url = new URL(link);
  let init: RequestInit = {};
  for (let hop = 0; hop < 20; hop++) {
    const jar = jars.get(url.origin) ?? new Map<string, string>();
    jars.set(url.origin, jar);
    const res = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as object), cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      const value = pair!.slice(eq + 1);
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(c)) jar.delete(pair!.slice(0, eq));
      else jar.set(pair!.slice(0, eq), value);
    }
    const location = res.headers.get('location');
    if (url.origin === callbackOrigin && url.pathname === '/oauth/callback')
      return { urls, pages, end: { url, status: res.status, text: await res.text() } };
    if (location) {
      url = new URL(location, url);
      init = {};
      continue;
    }
    const html = await res.text();
    pages.push(html);
    urls.push(url);
    const forms = [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)].map((m) => ({
      form: attrs(m[1]!),
      inner: m[2]!,
    }));
    const buttonsOf = (inner: string) =>
      [...inner.matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)].map((b) => ({
        attrs: attrs(b[1]!),
        text: b[2]!.replace(/<[^>]*>/g, '').trim(),
      }));
    const chosen = forms.find((f) => buttonsOf(f.inner).some((b) => agrees.test(b.text))) ?? forms[0];
    if (!chosen)
      throw new Error(`no form to go on at ${url.pathname} (${res.status}): ${html.slice(0, 300)}`);
    const fields = new URLSearchParams();
    for (const i of chosen.inner.matchAll(/<input\b([^>]*)>/gi)) {
      const a = attrs(i[1]!);
      if (!a.name) continue;
      const typed = (a.type ?? 'text') === 'text' && !a.value;
      fields.append(a.name, typed ? user : (a.value ?? ''));
    }
    const button = buttonsOf(chosen.inner).find((b) => agrees.test(b.text));
    if (button?.attrs.name) fields.append(button.attrs.name, button.attrs.value ?? '');
    const method = (chosen.form.method ?? 'get').toUpperCase();
    const target = new URL(chosen.form.action || url.href, url);
    if (method === 'GET') {
      target.search = fields.toString();
      init = {};
    } else
      init = {
        method,
        body: fields.toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url.origin },
      };
    url = target;
  }
  throw new Error('the link led through more than 20 pages');
}

describe('npm run demo:oauth: per-user OAuth against a local authorization server', () => {
  const dir = join(tempTree({}), 'demo');
  let ports: Ports;
  let demo: RunningScript;
  const clients: Record<string, Client> = {};
  const browsers: Record<string, Browser> = { alice: new Map(), bob: new Map() };
  /** A line of the banner, by a pattern with one group. */
  const printed = (re: RegExp) => {
    const m = re.exec(demo.out);
    if (!m) throw new Error(`the banner has no line matching ${re}:\n${demo.out}`);
    return m[1]!;
  };
  const call = async (who: string, name = 'pets_listPets', args: Record<string, unknown> = {}) =>
    (await clients[who]!.callTool({ name, arguments: args })) as { content: Array<{ text?: string }> };
  const linkOf = (r: { content: Array<{ text?: string }> }) => {
    expect(codeOf(r)).toBe('CONNECTION_REQUIRED');
    const link = /open this link and approve access: (\S+)/.exec(textOf(r))?.[1];
    expect(link, textOf(r)).toBeDefined();
    return link!;
  };
  /** The printed admin command (connections list / revoke), run as printed with its arguments. */
  const adminCommand = (sub: 'list' | 'revoke', ...args: string[]) => {
    const m = new RegExp(
      `(MCP_WARDEN_ADMIN_TOKEN=\\S+) (MCP_WARDEN_ADMIN_URL=\\S+) node (\\S+) connections ${sub}`,
    ).exec(demo.out);
    expect(m, `the banner prints connections ${sub}`).not.toBeNull();
    const env = Object.fromEntries([m![1]!, m![2]!].map((kv) => kv.split('=') as [string, string]));
    const r = spawnSync(process.execPath, [m![3]!, 'connections', sub, ...args], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const rows = () => {
    const list = adminCommand('list');
    expect(list.code, list.stderr).toBe(0);
    return list.stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(/\s{2,}/))
      .map(([id, principal, upstream, scopes]) => ({ id: id!, principal: principal!, upstream, scopes }));
  };

  beforeAll(async () => {
    ports = await freePorts();
    demo = await startScript(DEMO, [], demoEnv(ports, dir), 'Ctrl-C stops all three');
  }, 90_000);

  afterAll(async () => {
    for (const c of Object.values(clients)) await c.close();
    await demo?.stop();
  });

  it('prints the MCP URL, both callers’ keys, client snippets with the header, and the steps', () => {
    expect(printed(/mcp-warden \(MCP\)\s+(\S+)/)).toBe(`http://127.0.0.1:${ports.mcp}/mcp`);
    expect(printed(/Authorization server (\S+)/)).toBe(`http://127.0.0.1:${ports.auth}`);
    const alice = printed(/^ {4}alice {2}(\S+)$/m);
    expect(demo.out).toContain(`value Bearer ${alice}`); // the Inspector's header
    expect(demo.out).toContain(`--header "Authorization: Bearer ${alice}"`); // Claude Code
    for (const step of ['1. Call a tool', '2. Open the link', '3. Sign in as anyone', '4. Call again'])
      expect(demo.out).toContain(step);
    // Its files are in the demo folder, not the checkout's .demo/.
    expect(demo.out).toContain(`Audit log ${join(dir, 'oauth', 'audit.jsonl')}`);
    noStack(demo.err);
  });

  it('each caller is asked to connect, signs in as that person, and the retried call acts as them', async () => {
    const url = printed(/mcp-warden \(MCP\)\s+(\S+)/);
    for (const who of ['alice', 'bob'])
      clients[who] = await connectHttp(url, { token: printed(new RegExp(`^ {4}${who} +(\\S+)$`, 'm')) });
    const firstAlice = await call('alice');
    const firstBob = await call('bob');
    const gateway = new URL(url).origin;
    for (const [who, first] of [
      ['alice', firstAlice],
      ['bob', firstBob],
    ] as const) {
      const visit = await followLink(browsers[who]!, linkOf(first), who, gateway);
      // First the gateway's own page, naming whose connection this is; then the authorization server's.
      expect(visit.urls[0]!.origin).toBe(gateway);
      expect(visit.pages[0]).toContain(`key:${who}`);
      expect(visit.urls.at(-1)!.origin).toBe(printed(/Authorization server (\S+)/));
      // The authorization server asked this person for the one scope the tool needs.
      expect(visit.pages.some((p) => p.includes('<code>pets:read</code>'))).toBe(true);
      expect(visit.pages.some((p) => p.includes('pets:write'))).toBe(false);
      expect(visit.end.status, visit.end.text).toBe(200);
      expect(visit.end.text).toMatch(/connected/i);
    }
    for (const who of ['alice', 'bob']) {
      const r = await call(who, 'pets_listPets', { species: 'cat' });
      expect(codeOf(r), textOf(r)).toBe('OK');
      expect(textOf(r)).toMatch(new RegExp(`"signedInAs":\\s*"${who}"`));
      expect(textOf(r)).toContain('Miso');
    }
  });

  it('a tool needing another scope asks once more, for that scope only; the pet store acts as that person', async () => {
    const args = { body: { petId: 'p_102' } };
    const first = await call('bob', 'pets_requestAdoption', args);
    const gateway = new URL(printed(/mcp-warden \(MCP\)\s+(\S+)/)).origin;
    // Bob's browser is still signed in at the authorization server: it asks only to allow the new scope.
    const visit = await followLink(browsers.bob!, linkOf(first), 'bob', gateway);
    expect(visit.pages.some((p) => p.includes('<h1>Sign in</h1>'))).toBe(false);
    const consent = visit.pages.find((p) => p.includes('Allow access?'));
    expect(consent).toContain('<code>pets:write</code>');
    expect(consent).not.toContain('<code>pets:read</code>');
    const r = await call('bob', 'pets_requestAdoption', args);
    expect(codeOf(r), textOf(r)).toBe('OK');
    expect(textOf(r)).toMatch(/"adopter":\s*"bob"/);
  });

  it('the printed `connections list` shows both callers’ connections', () => {
    const listed = rows();
    expect(listed.map((r) => r.principal).sort()).toEqual(['key:alice', 'key:bob']);
    expect(listed.find((r) => r.principal === 'key:alice')!.scopes).toBe('pets:read');
    expect(listed.find((r) => r.principal === 'key:bob')!.scopes).toBe('pets:read pets:write');
  });

  it('the printed `connections revoke` makes only that caller’s next call ask again', async () => {
    const alice = rows().find((r) => r.principal === 'key:alice')!;
    const revoked = adminCommand('revoke', alice.id);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toContain('revoked: key:alice');
    linkOf(await call('alice'));
    const bob = await call('bob');
    expect(codeOf(bob), textOf(bob)).toBe('OK');
    expect(textOf(bob)).toMatch(/"signedInAs":\s*"bob"/);
    expect(rows().map((r) => r.principal)).toEqual(['key:bob']);
  });

  it('the audit records on whose behalf each call ran, and no demo secret reaches it or the logs', async () => {
    const audit = join(dir, 'oauth', 'audit.jsonl');
    const calls = await waitFor(
      () => {
        const found = readAudit(audit).filter((x) => x.kind === 'call' && x.onBehalfOf);
        return found.length >= 3 ? found : undefined;
      },
      { what: 'the calls made on behalf of alice and bob in the demo audit' },
    );
    expect(new Set(calls.map((x) => x.onBehalfOf.principal))).toEqual(new Set(['key:alice', 'key:bob']));
    await demo.stop();
    const alice = printed(/^ {4}alice {2}(\S+)$/m);
    for (const secret of [alice, 'demo-oauth-client-secret-0123456789', 'demo-vault-key-not-for-production'])
      for (const [where, text] of [
        ['audit', readFileSync(audit, 'utf8')],
        ['logs', demo.err],
      ])
        expect(text!.includes(secret), `${where} carries ${secret.slice(0, 12)}…`).toBe(false);
  });
});

/** Holds a TCP port on 127.0.0.1 until closed. */
function occupy(): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const s: Server = createServer()
      .once('error', reject)
      .listen(0, '127.0.0.1', () =>
        resolve({
          port: (s.address() as { port: number }).port,
          close: () => new Promise<void>((r) => s.close(() => r())),
        }),
      );
  });
}

describe('npm start -- --oauth: the same demo, and a taken port named', () => {
  it('AUTH_PORT taken: `npm start -- --oauth` names the port and AUTH_PORT, no stack trace', async () => {
    const held = await occupy();
    try {
      const d = join(tempTree({}), 'demo');
      const r = spawnSync(process.execPath, [join(ROOT, 'scripts/demo.mjs'), '--oauth'], {
        encoding: 'utf8',
        timeout: 60_000,
        env: demoEnv({ ...(await freePorts()), auth: held.port }, d),
      });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(
        `error CONFIG_INVALID: port ${held.port} is already in use (EADDRINUSE): stop the other process (another demo?) or choose another with AUTH_PORT=<n>`,
      );
      noStack(r.stderr);
      expect(existsSync(d)).toBe(false);
    } finally {
      await held.close();
    }
  });

  it('PORT taken (the MCP port): the port and PORT named', async () => {
    const held = await occupy();
    try {
      const r = spawnSync(process.execPath, [DEMO], {
        encoding: 'utf8',
        timeout: 60_000,
        env: demoEnv({ ...(await freePorts()), mcp: held.port }, join(tempTree({}), 'demo')),
      });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`port ${held.port} on 127.0.0.1 is already in use (EADDRINUSE)`);
      expect(r.stderr).toContain(`demo: the MCP port ${held.port} is PORT:`);
      noStack(r.stderr);
    } finally {
      await held.close();
    }
  });
});
