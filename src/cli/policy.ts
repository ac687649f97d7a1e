import { existsSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { buildCatalog } from '../catalog/build.js';
import { assignSetNames } from '../catalog/names.js';
import { Controller } from '../control/controller.js';
import { WardenError } from '../errors/index.js';
import { writePrivateFile } from '../lib/private-file.js';
import type { Catalog } from '../model/catalog.js';
import { createLogger } from '../observe/log.js';
import { loadSpec } from '../openapi/load.js';
import { alertRuleLines, checkPolicy, didYouMean } from '../policy/check.js';
import { credentialChoice, DEFAULT_POLICY, evaluatePolicy } from '../policy/evaluate.js';
import { type LoadedPolicy, readPolicyFile } from '../policy/load.js';
import { type AlertsDoc, DEFAULT_SCOPES, ENVIRONMENTS, type Environment } from '../policy/schema.js';
import { listToolsets } from '../policy/toolsets.js';
import { createRedactor } from '../protect/redactor.js';
import { newApiKey } from '../server/callers.js';
import { apiMembers, loadApis } from '../server/served-api.js';
import { createMemoryState } from '../state/memory.js';
import { apiNameFromTitle, checkUniqueNames, parseApiFlag } from './api-flags.js';

export interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

async function catalogFor(spec: string): Promise<Catalog> {
  return buildCatalog(await loadSpec(spec, {}));
}

/**
 * The catalogue a policy is checked against: `--spec`'s, or — for a policy describing an API set —
 * the set's, named as `serve --policy` names it. Every API must load here (a check that skipped an
 * API would pass a policy whose rules for it were never read).
 */
export async function catalogOf(
  spec: string | undefined,
  policy: LoadedPolicy | undefined,
): Promise<Catalog> {
  if (policy?.doc.apis) {
    if (spec !== undefined)
      throw new WardenError(
        'USAGE',
        `${policy.file} describes an API set (apis:): its specs are named there, so --spec is not used`,
      );
    const members = apiMembers(policy.doc, policy.file, {}).map((m) => ({ ...m, required: true }));
    return (await loadApis(members, createLogger({ level: 'silent', redactor: createRedactor() }))).catalog;
  }
  if (spec === undefined)
    throw new WardenError(
      'USAGE',
      'give the spec with --spec <file|url> (or a policy that describes an API set under apis:)',
    );
  return catalogFor(spec);
}

/** `policy check`: schema, then names against the spec. Exit 0 only when there is no error. */
export async function runPolicyCheck(file: string, opts: { spec?: string }, io: Io): Promise<void> {
  const policy = readPolicyFile(file);
  const catalog = await catalogOf(opts.spec, policy);
  const problems = checkPolicy(catalog, policy);
  for (const p of problems)
    io.stderr(`${file}${p.line !== undefined ? `:${p.line}` : ''}: ${p.level}: ${p.message}\n`);
  const errors = problems.filter((p) => p.level === 'error');
  if (errors.length)
    throw new WardenError(
      'CONFIG_INVALID',
      `the policy has ${errors.length} error(s) against ${opts.spec ?? 'its API set'}`,
    );
  const decisions = evaluatePolicy(catalog, { doc: policy.doc });
  const exposed = decisions.filter((d) => d.blockers.length === 0).length;
  io.stdout(`${file}: ok — ${exposed} of ${decisions.length} tools exposed (mode ${policy.doc.mode})\n`);
  io.stdout(alertsText(policy.doc.alerts));
}

/** The alert rules in force, as `policy check` and `explain` end their report. */
function alertsText(alerts: AlertsDoc | undefined): string {
  return `alerts in force:\n${alertRuleLines(alerts)
    .map((l) => `  ${l}\n`)
    .join('')}`;
}

/** `explain <tool>`: every step that decided the tool's fate, in the environment chosen. */
export async function runExplain(
  tool: string,
  opts: { spec?: string; policy?: string; env?: Environment; format?: string },
  io: Io,
): Promise<void> {
  const policy = opts.policy ? readPolicyFile(opts.policy) : undefined;
  const catalog = await catalogOf(opts.spec, policy);
  const controller = new Controller({
    catalog,
    ...(policy ? { policy } : {}),
    ...(opts.env ? { environment: opts.env } : {}),
    env: process.env,
    state: createMemoryState(),
    onSecret: () => {},
    onControl: () => {},
    warn: () => {},
  });
  try {
    const entry = controller.view().get(tool);
    if (!entry)
      throw new WardenError(
        'USAGE',
        `no tool named "${tool}"${didYouMean(
          tool,
          catalog.tools.map((t) => t.name),
        )}`,
      );
    const d = entry.decision;
    const cred = credentialChoice(policy?.doc ?? DEFAULT_POLICY, d, controller.environment());
    const steps = [...d.steps, cred.step];
    if (opts.format === 'json') {
      io.stdout(
        `${JSON.stringify({ tool: d.tool.name, exposed: entry.exposed, hiddenBecause: entry.blockers.map((b) => b.reason), kind: d.kind, risk: d.tool.risk.classes, scopes: d.scopes, confirm: d.confirm, ...(d.confirm ? { approval: d.approval, approvers: d.approvers } : {}), limits: d.limits, credential: { kind: cred.kind, entries: cred.entries }, steps, environment: controller.environment(), alerts: alertRuleLines(policy?.doc.alerts) }, null, 2)}\n`,
      );
      return;
    }
    const lines = [
      `${d.tool.name}  ${d.tool.source.method.toUpperCase()} ${d.tool.source.path}`,
      `  decision: ${entry.exposed ? 'EXPOSED' : 'HIDDEN'} (environment ${controller.environment()}, policy ${policy ? policy.file : 'none: secure defaults'})`,
      ...entry.blockers.map((b) => `  hidden because [${b.kind}] ${b.reason}`),
      `  callers need: ${d.scopes.join(' ') || '(no scope)'}`,
      `  confirmation: ${d.confirm ? `required (approval: ${d.approval}${d.approvers > 1 ? `, approvers: ${d.approvers}` : ''})` : 'not required'}`,
      ...(Object.keys(d.limits).length ? [`  limits: ${JSON.stringify(d.limits)}`] : []),
      `  upstream credential: ${cred.kind}`,
      '  how it was decided:',
      ...steps.map((s) => `    ${s.by}: ${s.what}`),
    ];
    io.stdout(`${lines.join('\n')}\n${alertsText(policy?.doc.alerts)}`);
  } finally {
    controller.close();
  }
}

/**
 * `init <spec>`: a commented starter policy with the secure defaults spelled out. Several specs (or
 * `--api name=spec[,base-url]`): an `apis:` policy for the API set, each API with its tools listed.
 */
export async function runInit(
  specs: string | readonly string[],
  opts: { output?: string; force?: boolean; api?: string[] },
  io: Io,
): Promise<void> {
  const bare = typeof specs === 'string' ? [specs] : [...specs];
  const named = (opts.api ?? []).map(parseApiFlag);
  if (bare.length === 0 && named.length === 0)
    throw new WardenError('USAGE', 'name a spec, several, or --api name=spec[,base-url] (repeatable)');
  const out = opts.output ?? 'warden.yaml';
  if (existsSync(out) && !opts.force)
    throw new WardenError(
      'USAGE',
      `${out} exists; pass --force to overwrite it or -o to choose another file`,
    );
  const schemaPath = resolve(dirname(fileURLToPath(import.meta.url)), '../../schema/policy.schema.json');
  const schemaRef = relative(dirname(resolve(out)), schemaPath) || schemaPath;
  if (bare.length === 1 && named.length === 0) {
    const catalog = await catalogFor(bare[0]!);
    writePrivateFile(out, starterPolicy(catalog, schemaRef));
    io.stderr(
      `wrote ${out}: ${catalog.tools.length} tools listed; check it with: mcp-warden policy check ${out} --spec ${bare[0]}\n`,
    );
    return;
  }
  checkUniqueNames(named);
  const loaded: Array<{ name?: string; spec: string; baseUrl?: string; catalog: Catalog }> = [];
  for (const a of named) loaded.push({ ...a, catalog: await catalogFor(a.spec) });
  for (const spec of bare) loaded.push({ spec, catalog: await catalogFor(spec) });
  const taken = new Set(named.map((a) => a.name));
  const apis = loaded.map((l) => {
    const name = l.name ?? apiNameFromTitle(l.catalog.title, taken);
    taken.add(name);
    return { ...l, name };
  });
  const names = assignSetNames(
    apis.map((a) => ({
      api: a.name,
      prefix: a.name,
      tools: a.catalog.tools.map((t) => ({ name: t.name, method: t.source.method, path: t.source.path })),
    })),
  );
  const outDir = dirname(resolve(out));
  const text = starterSetPolicy(
    apis.map((a, i) => ({
      name: a.name,
      // The policy reads a spec path relative to itself.
      spec: /^https?:/i.test(a.spec) ? a.spec : relative(outDir, resolve(a.spec)) || a.spec,
      ...(a.baseUrl !== undefined ? { baseUrl: a.baseUrl } : {}),
      catalog: {
        ...a.catalog,
        tools: a.catalog.tools.map((t, j) => ({ ...t, name: names[i]![j]!, api: a.name })),
      },
    })),
    schemaRef,
  );
  writePrivateFile(out, text);
  const tools = apis.reduce((n, a) => n + a.catalog.tools.length, 0);
  io.stderr(
    `wrote ${out}: an API set of ${apis.length} (${apis.map((a) => a.name).join(', ')}), ${tools} tools listed; serve it with: mcp-warden serve --policy ${out} --port 3333\n`,
  );
}

/** One API of the starter policy of a set: its catalogue with names prefixed and `api` set. */
export interface StarterApi {
  name: string;
  spec: string;
  baseUrl?: string;
  catalog: Catalog;
}

export function starterPolicy(catalog: Catalog, schemaRef: string): string {
  const schemes = [...new Set(catalog.tools.flatMap((t) => t.auth.alternatives.flat().map((r) => r.scheme)))];
  const L: string[] = [
    ...preamble(schemaRef, catalog.title || 'this API'),
    '# Upstream credentials, by reference only (env:NAME or file:/path), per environment.',
    `# Without an entry, a scheme's credential is read from MCP_WARDEN_CRED_<SCHEME>.`,
    ...credentialLines(schemes, ''),
    '',
    '# Rules cascade in order; a later rule overrides what an earlier one set.',
    '# Every tool follows, with its risk and its fate under the defaults. Uncomment to change one.',
    'rules:',
    ...ruleLines(catalog, '  '),
  ];
  return `${L.join('\n')}\n`;
}

/**
 * The starter policy of an API set: the shared sections once, then `apis:` with each API's spec,
 * commented base URL, prefix, credentials and its tools as rules of its own.
 */
export function starterSetPolicy(apis: readonly StarterApi[], schemaRef: string): string {
  const L: string[] = [
    ...preamble(schemaRef, `the API set ${apis.map((a) => a.name).join(' + ')}`),
    '# An API set: several APIs behind this one gateway. Serve it with',
    '#   mcp-warden serve --policy <this file> --port 3333',
    '# Each API has its spec (a path relative to this file, or a URL), where it is, its tool-name prefix,',
    '# its own credentials (never sent to another API) and its own rules (`match.api` implied).',
    'apis:',
  ];
  for (const a of apis) {
    const schemes = [
      ...new Set(a.catalog.tools.flatMap((t) => t.auth.alternatives.flat().map((r) => r.scheme))),
    ];
    const env = a.name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
    L.push(
      `  ${a.name}:`,
      `    spec: ${yamlScalar(a.spec)}`,
      a.baseUrl !== undefined
        ? `    baseUrl: ${yamlScalar(a.baseUrl)}`
        : `    # baseUrl: ${yamlScalar(a.catalog.servers[0]?.url ?? 'https://api.example.com')}   # default: the spec's servers`,
      `    # prefix: ${a.name}   # tool names start ${a.name}_ (the default)`,
      '    # required: true   # false: a spec that fails to load takes only this API out',
      `    # Without an entry, a scheme's credential is read from MCP_WARDEN_CRED_${env}_<SCHEME>.`,
      ...credentialLines(schemes, '    ', env),
      `    # ${a.catalog.title || a.name}: every tool, with its risk and its fate under the defaults.`,
      '    rules:',
      ...ruleLines(a.catalog, '      '),
    );
  }
  L.push(
    '',
    "# Rules for every API, after each API's own (a later rule overrides what an earlier one set).",
    'rules:',
  );
  return `${L.join('\n')}\n`;
}

/** What every starter policy begins with: the secure defaults spelled out. */
function preamble(schemaRef: string, what: string): string[] {
  return [
    `# yaml-language-server: $schema=${schemaRef}`,
    `# mcp-warden policy for ${what} (generated by \`mcp-warden init\`).`,
    '# Everything below restates the secure defaults: delete a line and the default still holds.',
    `$schema: ${schemaRef}`,
    'version: 1',
    '',
    '# read-only: no write tool is exposed whatever the rules say. read-write: writes a rule enables.',
    'mode: read-only',
    '',
    '# Which credentials to use (dev | staging | prod); `serve --env` overrides it.',
    'environment: dev',
    '',
    '# Scopes a caller needs for a tool, by its risk, unless a rule sets `scopes`.',
    'scopes:',
    ...(['read', 'write', 'destructive', 'admin'] as const).map(
      (k) => `  ${k}: [${DEFAULT_SCOPES[k].join(', ')}]`,
    ),
    '',
    'callers:',
    '  # The one principal of a stdio session.',
    '  stdio:',
    '    principal: local',
    `    scopes: [${DEFAULT_SCOPES.read.join(', ')}]`,
    '  # HTTP callers. With none configured, only loopback callers are served, with read scopes.',
    '  # apiKeys:   # make one with: mcp-warden keys create --id ci-bot --scopes tools:read',
    '  #   - { id: ci-bot, hash: "sha256:…", scopes: [tools:read] }',
    '  # jwt:',
    '  #   jwksUrl: https://idp.example.com/.well-known/jwks.json',
    '  #   issuer: https://idp.example.com/',
    '  # resource: https://mcp.example.com/mcp   # tokens must be minted for this audience',
    '',
  ];
}

/** Commented credential entries, one per security scheme, at `indent`. */
function credentialLines(schemes: readonly string[], indent: string, api = ''): string[] {
  const envName = (s: string) => `${api ? `${api}_` : ''}${s}_DEV`.toUpperCase().replace(/[^A-Z0-9]/g, '_');
  return [
    ...(schemes.length ? [`${indent}# credentials:`] : []),
    ...schemes.flatMap((s) => [
      `${indent}#   ${s.replace(/[^A-Za-z0-9_.-]/g, '_')}:`,
      `${indent}#     scheme: ${s}`,
      `${indent}#     dev: env:${envName(s)}`,
      `${indent}#     prod: file:/run/secrets/${api ? `${api.toLowerCase()}-` : ''}${s}`,
    ]),
  ];
}

/** Every tool as a commented rule, with its risk and its fate under the defaults, at `indent`. */
function ruleLines(catalog: Catalog, indent: string): string[] {
  const decisions = evaluatePolicy(catalog, { doc: DEFAULT_POLICY });
  const L: string[] = [];
  const proposed = decisions.filter(proposeAsRead);
  if (proposed.length)
    L.push(
      `${indent}# Not a default: ${proposed.length} POST(s) whose verbs say they only read (RPC style) are`,
      `${indent}# proposed as reads below, each with \`treatAs: read\` and the reason it was recognised.`,
      `${indent}# Each stays a POST on the wire; delete a rule (or the whole list) to keep that POST hidden.`,
    );
  for (const d of decisions) {
    const t = d.tool;
    if (proposeAsRead(d)) {
      const why = t.risk.readLike!.reason;
      L.push(
        `${indent}# ${t.name} — POST ${t.source.path} — write, read-like: proposed as a read`,
        `${indent}- match: { name: ${yamlScalar(t.name)} }`,
        `${indent}  treatAs: read   # proposed by init: exposes this POST as a read`,
        `${indent}  reason: ${JSON.stringify(`read-like POST: ${oneLine(why)}`.slice(0, 500))}`,
      );
      continue;
    }
    const risk = t.risk.classes.filter((c) => c !== 'read');
    const fate = d.blockers.length
      ? `HIDDEN: ${d.blockers.map((b) => b.reason).join('; ')}`
      : 'exposed: read-only operation';
    const i = indent;
    L.push(
      `${i}# ${t.name} — ${t.source.method.toUpperCase()} ${t.source.path} — ${d.kind}${risk.length ? ` [${risk.join(', ')}]` : ''}`,
    );
    L.push(`${i}#   ${oneLine(fate)}`);
    if (t.risk.readLike)
      L.push(
        `${i}#   read-like POST (${oneLine(t.risk.readLike.reason)}), but treatAs: read alone would not expose it`,
      );
    L.push(`${i}# - match: { name: ${yamlScalar(t.name)} }`);
    const restricted = d.blockers.filter((b) => b.kind === 'risk').map((b) => b.reason.split(':')[0]);
    if (restricted.length) {
      L.push(`${i}#   allowRisk: [${restricted.join(', ')}]`);
      L.push(`${i}#   reason: "why agents need this, and who approved it"`);
    }
    if (d.kind === 'read' && !restricted.length) L.push(`${i}#   enabled: false`);
    else {
      L.push(`${i}#   enabled: true   # and mode: read-write`);
      if (d.kind === 'destructive')
        L.push(`${i}#   confirm: true   # the default; \`confirm: false\` needs a reason`);
    }
  }
  return L;
}

/**
 * What `init` proposes as a read: a read-like POST that `treatAs: read` alone would expose (a plain
 * write; one with a restricted risk stays commented out like any other tool).
 */
function proposeAsRead(d: ReturnType<typeof evaluatePolicy>[number]): boolean {
  const t = d.tool;
  return (
    t.risk.readLike !== undefined &&
    t.source.method === 'post' &&
    d.kind === 'write' &&
    t.risk.classes.every((c) => c === 'read' || c === 'write')
  );
}

function oneLine(s: string): string {
  const t = s.replace(/\s+/g, ' ');
  return t.length > 200 ? `${t.slice(0, 200)}…` : t;
}
function yamlScalar(s: string): string {
  return /^[A-Za-z0-9_./-]+$/.test(s) ? s : JSON.stringify(s);
}

/** `keys create`: a new API key, printed once; only its hash goes in the policy or keys file. */
export function runKeysCreate(
  opts: { id: string; scopes: string; env?: Environment; expires?: string },
  io: Io,
): void {
  if (!/^[\w.@:-]{1,100}$/.test(opts.id))
    throw new WardenError('USAGE', '--id is letters, digits and . _ @ : - (up to 100)');
  const scopes = opts.scopes.split(/[ ,]+/).filter(Boolean);
  if (opts.expires !== undefined && Number.isNaN(Date.parse(opts.expires)))
    throw new WardenError('USAGE', '--expires must be an ISO date-time, e.g. 2027-01-31T00:00:00Z');
  if (opts.env !== undefined && !ENVIRONMENTS.includes(opts.env))
    throw new WardenError('USAGE', `--env is one of ${ENVIRONMENTS.join(', ')}`);
  const { key, hash } = newApiKey();
  io.stderr(
    'The key is shown once. Give it to the caller; put only the entry below in the policy (callers.apiKeys) or the keys file.\n',
  );
  io.stdout(`${key}\n`);
  const entry = [
    `- id: ${opts.id}`,
    `  hash: "${hash}"`,
    `  scopes: [${scopes.join(', ')}]`,
    ...(opts.env ? [`  environment: ${opts.env}`] : []),
    ...(opts.expires ? [`  expires: "${new Date(opts.expires).toISOString()}"`] : []),
  ];
  io.stderr(`${entry.join('\n')}\n`);
}

/** The admin API's client: the CLI's `tools`, `mode` and `policy history|diff|rollback`. */
export async function adminCall(
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body: unknown,
  opts: { adminUrl?: string },
): Promise<unknown> {
  const base = opts.adminUrl ?? process.env.MCP_WARDEN_ADMIN_URL ?? 'http://127.0.0.1:9090';
  const token = process.env.MCP_WARDEN_ADMIN_TOKEN;
  if (!token)
    throw new WardenError('USAGE', 'set MCP_WARDEN_ADMIN_TOKEN to the admin token (never passed as a flag)');
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(new URL(path, base), {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        ...(process.env.USER ? { 'x-actor': process.env.USER.replace(/[^\w.@-]/g, '').slice(0, 64) } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
  } catch {
    throw new WardenError(
      'USAGE',
      `the admin API at ${base} cannot be reached (is serve running with --admin-port?)`,
    );
  }
  const text = await res.body.text();
  let json: { error?: string; message?: string } & Record<string, unknown>;
  try {
    json = JSON.parse(text);
  } catch {
    throw new WardenError('USAGE', `the admin API answered HTTP ${res.statusCode} with a non-JSON body`);
  }
  if (res.statusCode >= 400)
    throw new WardenError('USAGE', `admin API: ${json.message ?? json.error ?? res.statusCode}`);
  return json;
}

export function printTools(rows: Array<Record<string, unknown>>, io: Io): void {
  for (const r of rows)
    io.stdout(
      `${r.exposed ? 'on ' : 'off'}  ${String(r.name).padEnd(32)} ${String(r.kind).padEnd(11)} ${String(r.approved === false ? 'pending' : r.toggle).padEnd(8)} ${r.exposed ? `scopes: ${(r.scopes as string[]).join(' ')}` : ((r.hiddenBecause as string[])[0] ?? '')}\n`,
    );
}

/** `toolsets`: every toolset with its size, and how many of its tools the policy exposes. */
export async function runToolsets(
  spec: string | undefined,
  opts: { policy?: string; format?: string },
  io: Io,
): Promise<void> {
  const policy = opts.policy ? readPolicyFile(opts.policy) : undefined;
  const catalog = await catalogOf(spec, policy);
  const doc = policy?.doc ?? DEFAULT_POLICY;
  const exposed = new Set(
    evaluatePolicy(catalog, { doc })
      .filter((d) => d.blockers.length === 0)
      .map((d) => d.tool.name),
  );
  const sets = listToolsets(catalog, doc).map((s) => ({
    ...s,
    exposed: s.tools.filter((t) => exposed.has(t)).length,
  }));
  if (opts.format === 'json') {
    io.stdout(`${JSON.stringify({ toolsets: sets }, null, 2)}\n`);
    return;
  }
  const width = Math.min(40, Math.max(8, ...sets.map((s) => s.name.length)));
  io.stdout(`${'TOOLSET'.padEnd(width)}  TOOLS  EXPOSED  FROM    DESCRIPTION\n`);
  for (const s of sets)
    io.stdout(
      `${s.name.padEnd(width)}  ${String(s.tools.length).padStart(5)}  ${String(s.exposed).padStart(7)}  ${s.source.padEnd(6)}  ${s.description}\n`,
    );
  io.stdout(
    `\n${sets.length} toolsets; serve a few with: mcp-warden serve --toolsets ${sets[0]?.name ?? 'name'},…\n`,
  );
}
