import { existsSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { buildCatalog } from '../catalog/build.js';
import { Controller } from '../control/controller.js';
import { WardenError } from '../errors/index.js';
import type { Catalog } from '../model/catalog.js';
import { loadSpec } from '../openapi/load.js';
import { alertRuleLines, checkPolicy, didYouMean } from '../policy/check.js';
import { DEFAULT_POLICY, evaluatePolicy } from '../policy/evaluate.js';
import { readPolicyFile } from '../policy/load.js';
import { type AlertsDoc, DEFAULT_SCOPES, ENVIRONMENTS, type Environment } from '../policy/schema.js';
import { listToolsets } from '../policy/toolsets.js';
import { newApiKey } from '../server/callers.js';
import { createMemoryState } from '../state/memory.js';

export interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

async function catalogFor(spec: string): Promise<Catalog> {
  return buildCatalog(await loadSpec(spec, {}));
}

/** `policy check`: schema, then names against the spec. Exit 0 only when there is no error. */
export async function runPolicyCheck(file: string, opts: { spec: string }, io: Io): Promise<void> {
  const policy = readPolicyFile(file);
  const catalog = await catalogFor(opts.spec);
  const problems = checkPolicy(catalog, policy);
  for (const p of problems)
    io.stderr(`${file}${p.line !== undefined ? `:${p.line}` : ''}: ${p.level}: ${p.message}\n`);
  const errors = problems.filter((p) => p.level === 'error');
  if (errors.length)
    throw new WardenError('CONFIG_INVALID', `the policy has ${errors.length} error(s) against ${opts.spec}`);
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
  opts: { spec: string; policy?: string; env?: Environment; format?: string },
  io: Io,
): Promise<void> {
  const catalog = await catalogFor(opts.spec);
  const policy = opts.policy ? readPolicyFile(opts.policy) : undefined;
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
    if (opts.format === 'json') {
      io.stdout(
        `${JSON.stringify({ tool: d.tool.name, exposed: entry.exposed, hiddenBecause: entry.blockers.map((b) => b.reason), kind: d.kind, risk: d.tool.risk.classes, scopes: d.scopes, confirm: d.confirm, ...(d.confirm ? { approval: d.approval, approvers: d.approvers } : {}), limits: d.limits, steps: d.steps, environment: controller.environment(), alerts: alertRuleLines(policy?.doc.alerts) }, null, 2)}\n`,
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
      '  how it was decided:',
      ...d.steps.map((s) => `    ${s.by}: ${s.what}`),
    ];
    io.stdout(`${lines.join('\n')}\n${alertsText(policy?.doc.alerts)}`);
  } finally {
    controller.close();
  }
}

/** `init <spec>`: a commented starter policy with the secure defaults spelled out. */
export async function runInit(
  spec: string,
  opts: { output?: string; force?: boolean },
  io: Io,
): Promise<void> {
  const catalog = await catalogFor(spec);
  const out = opts.output ?? 'warden.yaml';
  if (existsSync(out) && !opts.force)
    throw new WardenError(
      'USAGE',
      `${out} exists; pass --force to overwrite it or -o to choose another file`,
    );
  const schemaPath = resolve(dirname(fileURLToPath(import.meta.url)), '../../schema/policy.schema.json');
  const text = starterPolicy(catalog, relative(dirname(resolve(out)), schemaPath) || schemaPath);
  writeFileSync(out, text, { mode: 0o600 });
  io.stderr(
    `wrote ${out}: ${catalog.tools.length} tools listed; check it with: mcp-warden policy check ${out} --spec ${spec}\n`,
  );
}

export function starterPolicy(catalog: Catalog, schemaRef: string): string {
  const decisions = evaluatePolicy(catalog, { doc: DEFAULT_POLICY });
  const schemes = [...new Set(catalog.tools.flatMap((t) => t.auth.alternatives.flat().map((r) => r.scheme)))];
  const L: string[] = [
    `# yaml-language-server: $schema=${schemaRef}`,
    `# mcp-warden policy for ${catalog.title || 'this API'} (generated by \`mcp-warden init\`).`,
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
    '# Upstream credentials, by reference only (env:NAME or file:/path), per environment.',
    `# Without an entry, a scheme's credential is read from MCP_WARDEN_CRED_<SCHEME>.`,
    ...(schemes.length ? ['# credentials:'] : []),
    ...schemes.flatMap((s) => [
      `#   ${s.replace(/[^A-Za-z0-9_.-]/g, '_')}:`,
      `#     scheme: ${s}`,
      `#     dev: env:${`${s}_DEV`.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`,
      `#     prod: file:/run/secrets/${s}`,
    ]),
    '',
    '# Rules cascade in order; a later rule overrides what an earlier one set.',
    '# Every tool follows, with its risk and its fate under the defaults. Uncomment to change one.',
    'rules:',
  ];
  for (const d of decisions) {
    const t = d.tool;
    const risk = t.risk.classes.filter((c) => c !== 'read');
    const fate = d.blockers.length
      ? `HIDDEN: ${d.blockers.map((b) => b.reason).join('; ')}`
      : 'exposed: read-only operation';
    L.push(
      `  # ${t.name} — ${t.source.method.toUpperCase()} ${t.source.path} — ${d.kind}${risk.length ? ` [${risk.join(', ')}]` : ''}`,
    );
    L.push(`  #   ${oneLine(fate)}`);
    L.push(`  # - match: { name: ${yamlScalar(t.name)} }`);
    const restricted = d.blockers.filter((b) => b.kind === 'risk').map((b) => b.reason.split(':')[0]);
    if (restricted.length) {
      L.push(`  #   allowRisk: [${restricted.join(', ')}]`);
      L.push('  #   reason: "why agents need this, and who approved it"');
    }
    if (d.kind === 'read' && !restricted.length) L.push('  #   enabled: false');
    else {
      L.push('  #   enabled: true   # and mode: read-write');
      if (d.kind === 'destructive')
        L.push('  #   confirm: true   # the default; `confirm: false` needs a reason');
    }
  }
  return `${L.join('\n')}\n`;
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
  method: 'GET' | 'POST',
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
  spec: string,
  opts: { policy?: string; format?: string },
  io: Io,
): Promise<void> {
  const catalog = await catalogFor(spec);
  const policy = opts.policy ? readPolicyFile(opts.policy) : undefined;
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
