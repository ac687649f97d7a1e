import { createTwoFilesPatch } from 'diff';
import { instancesOf, linesOfInstance } from '../audit/postgres.js';
import { auditFiles, parseRecord, readRecords } from '../audit/read.js';
import { type VerifyResult, verifyAudit, verifyLines } from '../audit/verify.js';
import { WardenError } from '../errors/index.js';
import { writePrivateFile } from '../lib/private-file.js';
import { readSecretRef } from '../lib/secret-ref.js';
import { readPolicyFile } from '../policy/load.js';
import { type CallerGrant, rightsize, Usage } from '../policy/rightsize.js';
import type { PolicyDoc } from '../policy/schema.js';
import { principalIds } from '../server/callers.js';
import { auditFileOf, dbUrl, filterOf } from './audit.js';
import { catalogOf, type Io } from './policy.js';

export interface RightsizeOptions {
  policy: string;
  spec?: string;
  since?: string;
  stateDir?: string;
  dbEnv?: string;
  instance?: string;
  keyEnv?: string;
  write?: string;
}

/**
 * `audit rightsize`: reads the audit (a file, or the PostgreSQL mirror), verifies its chain first
 * (a broken chain is refused: AUDIT_BROKEN), and prints the evidence and a unified diff of the
 * policy with every grant the window did not use removed and every limit far above its peak lowered.
 */
export async function runRightsize(file: string | undefined, opts: RightsizeOptions, io: Io): Promise<void> {
  const since = filterOf({ since: opts.since ?? '30d' }).since!;
  const windowLabel = opts.since ?? '30d';
  const policy = readPolicyFile(opts.policy);
  const catalog = await catalogOf(opts.spec, policy);
  const key = signingKey(opts.keyEnv, policy.doc);
  const usage = new Usage(since);

  let source: string;
  /** What the source does not cover: warnings before the changes (and on stderr), notes after them. */
  const warnings: string[] = [];
  const notes: string[] = [];
  const dbFromPolicy =
    file === undefined && opts.dbEnv === undefined && policy.doc.audit?.postgres !== undefined
      ? policy.doc.audit.postgres
      : undefined;
  if (file === undefined && (opts.dbEnv !== undefined || dbFromPolicy !== undefined)) {
    const url = opts.dbEnv !== undefined ? dbUrl(opts.dbEnv) : readSecretRef(dbFromPolicy!, process.env);
    if (!url) throw new WardenError('USAGE', `the policy's audit.postgres (${dbFromPolicy}) is not set`);
    // Every instance in the table: a grant used through any replica is used. Narrowed only when
    // asked (`--instance`), never by the policy's `audit.instance` (one replica's own name).
    const all = await instancesOf(url);
    const named = opts.instance;
    const instances = named !== undefined ? [named] : all;
    if (named !== undefined) {
      const others = all.filter((i) => i !== named);
      if (!all.includes(named))
        warnings.push(`PostgreSQL holds no record of the instance ${named} (--instance)`);
      if (others.length)
        warnings.push(
          `PostgreSQL holds ${others.length} other instance(s) (${others.join(', ')}) that --instance ${named} leaves out: grants used only through them are proposed for removal; drop --instance to read every instance`,
        );
    }
    for (const instance of instances) {
      const lines = await linesOfInstance(url, instance);
      refuseBroken(verifyLines([{ file: `db:${instance}`, lines }], key), `db:${instance}`);
      for (const line of lines) {
        const r = parseRecord(line);
        if (r) usage.add(r);
      }
    }
    source = `PostgreSQL (${instances.length} instance(s): ${instances.join(', ') || 'none'})`;
  } else {
    if (opts.instance !== undefined)
      throw new WardenError(
        'USAGE',
        '--instance selects an instance of the PostgreSQL mirror (--db-env or audit.postgres), not of a file',
      );
    const path = auditFileOf(file, opts, io);
    refuseBroken(await verifyAudit(auditFiles(path), key, { anchorOf: path }), path);
    for await (const r of readRecords(auditFiles(path))) usage.add(r);
    source = path;
    notes.push(
      `only the instance that wrote ${path} is seen: grants used only through other instances (replicas, other state directories) would be proposed for removal; with several instances, read the PostgreSQL mirror (--db-env) instead`,
    );
  }

  const result = rightsize({ policy, catalog, usage, callers: callerGrants(policy.doc), windowLabel });
  const out: string[] = [
    `# rightsize ${opts.policy}: ${usage.records} record(s) of ${source}, verified; window ${windowLabel} (since ${new Date(since).toISOString()}), ${usage.facts.length} call(s) in it`,
  ];
  for (const w of [...warnings, ...result.warnings]) {
    out.push(`# WARNING: ${w}`);
    io.stderr(`WARNING: ${w}\n`);
  }
  result.changes.forEach((c, i) => {
    out.push(`# change ${i + 1}: ${c.what}`, ...c.evidence.map((e) => `#   ${e}`));
  });
  for (const s of result.skipped) out.push(`# kept: ${s}`);
  for (const n of [...notes, ...result.notes]) out.push(`# note: ${n}`);
  if (!result.changes.length) out.push('# no change proposed');
  io.stdout(`${out.join('\n')}\n`);
  if (result.changes.length)
    io.stdout(createTwoFilesPatch(opts.policy, opts.write ?? opts.policy, policy.text, result.text, '', ''));
  if (opts.write !== undefined) {
    writePrivateFile(opts.write, result.text);
    io.stderr(`wrote ${opts.write}: ${result.changes.length} change(s)\n`);
  }
}

/** `--key-env`, else the policy's `audit.signingKey` when it can be read: checkpoints are then checked too. */
function signingKey(keyEnv: string | undefined, doc: PolicyDoc): Buffer | undefined {
  if (keyEnv !== undefined) {
    const v = process.env[keyEnv];
    if (!v) throw new WardenError('USAGE', `${keyEnv} is not set`);
    return Buffer.from(v, 'utf8');
  }
  const ref = doc.audit?.signingKey;
  const v = ref !== undefined ? readSecretRef(ref, process.env) : undefined;
  return v !== undefined ? Buffer.from(v, 'utf8') : undefined;
}

function refuseBroken(r: VerifyResult, where: string): void {
  if (r.ok) return;
  throw new WardenError(
    'AUDIT_BROKEN',
    `the audit ${where} does not verify (${r.problemCount} problem(s)); nothing is proposed from a broken chain (see mcp-warden audit verify)`,
    {
      details: r.problems
        .slice(0, 5)
        .map((p) => `${p.file}:${p.line}${p.seq !== undefined ? ` (seq ${p.seq})` : ''}: ${p.message}`),
    },
  );
}

/** The callers the policy grants scopes to itself, with the principal ids the audit names them by. */
export function callerGrants(doc: PolicyDoc): CallerGrant[] {
  const c = doc.callers;
  const out: CallerGrant[] = [];
  // With no HTTP caller configured, anonymous loopback callers get the stdio scopes (src/server/callers.ts).
  const shared = !(c?.apiKeys?.length || c?.apiKeysFile || c?.jwt || c?.anonymous);
  if (c?.stdio?.scopes)
    out.push({
      principals: [principalIds.stdio(c.stdio.principal), ...(shared ? [principalIds.anonymous()] : [])],
      path: ['callers', 'stdio', 'scopes'],
      scopes: c.stdio.scopes,
      http: shared,
    });
  c?.apiKeys?.forEach((k, i) => {
    out.push({
      principals: [principalIds.key(k.id)],
      path: ['callers', 'apiKeys', i, 'scopes'],
      scopes: k.scopes,
      http: true,
    });
  });
  if (c?.anonymous)
    out.push({
      principals: [principalIds.anonymous()],
      path: ['callers', 'anonymous', 'scopes'],
      scopes: c.anonymous.scopes,
      http: true,
    });
  return out;
}
