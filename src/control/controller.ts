import { createHash } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createTwoFilesPatch } from 'diff';
import { formatError, formatLocation, toWardenError, WardenError } from '../errors/index.js';
import { watchFileChanges } from '../lib/watched-file.js';
import type { Catalog, Tool } from '../model/catalog.js';
import type { KillSwitch, RuntimeSnapshot, StateStore, Toggle } from '../model/state.js';
import { checkPolicy } from '../policy/check.js';
import { DEFAULT_POLICY, evaluatePolicy, type ToolDecision } from '../policy/evaluate.js';
import { type LoadedPolicy, parsePolicy, readPolicyText } from '../policy/load.js';
import type { Environment, PolicyDoc } from '../policy/schema.js';
import { listToolsets, selectToolsets } from '../policy/toolsets.js';
import { type CredentialSet, loadCredentials } from '../upstream/credentials.js';
import { Pins, treeDigest } from './pins.js';
import { buildView, type ToolView } from './view.js';

/** One control-plane change, for the audit: who did what, before → after. */
export interface ControlEvent {
  actor: string;
  action:
    | 'policy.load'
    | 'policy.reload'
    | 'policy.rollback'
    | 'policy.rejected'
    | 'tool.toggle'
    | 'tool.approve'
    | 'spec.reload'
    | 'mode'
    | 'alert.ack'
    | 'admin.login'
    | 'admin.login-refused'
    | 'admin.token-refused'
    | 'admin.logout'
    // An operator revoked someone's per-user OAuth connection (src/admin/api.ts).
    | 'connection.revoke'
    // An operator lifted a caller's read-only restriction after it hit a budget (src/admin/api.ts).
    | 'budget.lift';
  target?: string;
  before?: unknown;
  after?: unknown;
  detail?: string;
}

export interface PolicyVersion {
  version: number;
  time: string;
  actor: string;
  source: 'defaults' | 'file' | 'rollback';
  sha256: string;
  text: string;
}

export interface ControllerOptions {
  catalog: Catalog;
  /** The policy file as loaded at start-up; undefined: the secure defaults. */
  policy?: LoadedPolicy;
  environment?: Environment;
  env: NodeJS.ProcessEnv;
  state: StateStore;
  /** Tool-definition pins; default: in memory, trusting the first catalogue. */
  pins?: Pins;
  onSecret: (values: string[]) => void;
  onControl: (e: ControlEvent) => void;
  /** Serve only these toolsets (`serve --toolsets`); undefined: every tool. */
  toolsets?: readonly string[];
  warn: (msg: string, data?: Record<string, unknown>) => void;
}

interface Active {
  doc: PolicyDoc;
  decisions: ToolDecision[];
  credentials: CredentialSet;
  environment: Environment;
  /** Tools in the served toolsets; undefined when every toolset is served. */
  inToolsets: ReadonlySet<string> | undefined;
}

/**
 * Owns what changes while the gateway runs: the policy (versions, reloads, rollback), the credentials
 * it names, and the runtime switches. Readers take `view()` once per call; every change builds a new
 * view and tells the listeners (which send `tools/list_changed`).
 */
export class Controller {
  private active: Active;
  private current: ToolView;
  private readonly versions: PolicyVersion[] = [];
  private readonly listeners: Array<() => void> = [];
  private watcher: { close(): void } | undefined;
  private catalog: Catalog;
  private loaded: LoadedPolicy | undefined;
  private readonly pins: Pins;
  private unapproved: Map<string, string>;
  /** Definitions approved while this process ran, so a pending change can be shown, not just named. */
  private readonly approvedHere = new Map<string, Tool>();

  constructor(private readonly o: ControllerOptions) {
    const p = o.policy;
    this.catalog = o.catalog;
    this.loaded = p;
    if (p) {
      const problems = checkPolicy(o.catalog, p).filter((x) => x.level === 'error');
      if (problems.length) throw policyProblems(p.file, problems);
    }
    this.pins = o.pins ?? new Pins(undefined);
    // Trust on first use: with nothing pinned yet, the catalogue the operator started with is approved.
    // (Shared pins are seeded by the caller, awaited, before this; local ones are done synchronously.)
    if (this.pins.empty) void this.pins.approve(o.catalog.tools);
    this.unapproved = this.pins.pending(o.catalog.tools);
    this.rememberApproved(o.catalog.tools);
    this.active = this.activate(p?.doc ?? DEFAULT_POLICY, p);
    this.record(
      p ? 'file' : 'defaults',
      'startup',
      p?.text ?? '# no policy file: the secure defaults\nversion: 1\n',
    );
    this.current = this.rebuild();
    o.state.onChange(() => {
      // Another instance may have approved a definition (shared pins).
      if (o.state.pins) {
        this.unapproved = this.pins.pending(this.catalog.tools);
        this.rememberApproved(this.catalog.tools);
      }
      this.refresh();
    });
    o.onControl({
      actor: 'startup',
      action: 'policy.load',
      after: { version: 1, sha256: this.versions[0]!.sha256 },
    });
  }

  view(): ToolView {
    return this.current;
  }
  currentCatalog(): Catalog {
    return this.catalog;
  }
  /** Tools hidden until approved, with the reason. */
  pending(): ReadonlyMap<string, string> {
    return this.unapproved;
  }

  /**
   * What changed in a tool waiting for approval, as a unified diff of what the agent would see and
   * what the gateway would send (name, text, input schema, method, path, risk, auth), when this
   * process knows the approved definition; undefined for a new tool or one approved before a restart.
   */
  changeOf(name: string): string | undefined {
    if (!this.unapproved.has(name)) return undefined;
    const before = this.approvedHere.get(name);
    const now = this.catalog.tools.find((t) => t.name === name);
    if (!before || !now) return undefined;
    const text = (t: Tool) =>
      `${JSON.stringify(
        {
          name: t.name,
          title: t.title,
          description: t.description,
          method: t.source.method,
          path: t.source.path,
          servers: t.source.servers,
          inputSchema: t.inputSchema,
          annotations: t.annotations,
          risk: t.risk.classes,
          auth: t.auth,
        },
        null,
        2,
      )}\n`;
    let diff = createTwoFilesPatch('approved', 'now', text(before), text(now), '', '', { context: 2 });
    if (treeDigest(before.outputSchema ?? null) !== treeDigest(now.outputSchema ?? null))
      diff += '\n(the output schema changed too)\n';
    return diff.length > 20_000 ? `${diff.slice(0, 20_000)}\n… (cut at 20,000 characters)\n` : diff;
  }

  /** Tools whose definition is approved now, as they are (older objects are let go). */
  private rememberApproved(tools: readonly Tool[]): void {
    for (const t of tools) if (!this.unapproved.has(t.name)) this.approvedHere.set(t.name, t);
  }

  /**
   * Replaces the catalogue after a spec reload. The running policy is re-applied to it (names it
   * no longer matches are logged, not fatal); new and changed tools stay hidden until approved.
   */
  setCatalog(catalog: Catalog, actor: string): void {
    const before = new Set(this.catalog.tools.map((t) => t.name));
    if (this.loaded)
      for (const p of checkPolicy(catalog, this.loaded))
        this.o.warn(`after the spec reload the policy says: ${p.message}`, { line: p.line });
    this.catalog = catalog;
    const previous = this.active;
    this.active = this.activate(previous.doc, this.loaded);
    previous.credentials.close();
    this.unapproved = this.pins.pending(catalog.tools);
    this.rememberApproved(catalog.tools);
    const after = new Set(catalog.tools.map((t) => t.name));
    this.o.onControl({
      actor,
      action: 'spec.reload',
      before: { tools: before.size },
      after: {
        tools: after.size,
        added: [...after].filter((n) => !before.has(n)).slice(0, 50),
        removed: [...before].filter((n) => !after.has(n)).slice(0, 50),
        pendingApproval: [...this.unapproved.keys()].slice(0, 50),
      },
    });
    this.refresh();
  }

  /** Approves the current definition of the named tools (or every pending one), pinning it. */
  async approve(names: readonly string[] | 'all-pending', actor: string): Promise<string[]> {
    const chosen =
      names === 'all-pending'
        ? this.catalog.tools.filter((t) => this.unapproved.has(t.name))
        : names.map((n) => {
            const t = this.catalog.tools.find((x) => x.name === n);
            if (!t) throw new WardenError('USAGE', `no tool named ${JSON.stringify(n.slice(0, 100))}`);
            return t;
          });
    await this.pins.approve(chosen);
    const approved = chosen.map((t) => t.name);
    this.unapproved = this.pins.pending(this.catalog.tools);
    this.rememberApproved(chosen);
    this.o.onControl({
      actor,
      action: 'tool.approve',
      target: approved.join(',').slice(0, 500),
      after: 'approved',
    });
    this.refresh();
    return approved;
  }
  credentials(): CredentialSet {
    return this.active.credentials;
  }
  policy(): PolicyDoc {
    return this.active.doc;
  }
  decisions(): readonly ToolDecision[] {
    return this.active.decisions;
  }
  environment(): Environment {
    return this.active.environment;
  }
  runtime(): RuntimeSnapshot {
    return this.o.state.snapshot();
  }
  /** sha256 of the policy text being served: the same on every instance serving the same file. */
  policyDigest(): string {
    const served = this.current.policyVersion;
    return (this.versions.find((v) => v.version === served) ?? this.versions.at(-1)!).sha256;
  }
  history(): ReadonlyArray<Omit<PolicyVersion, 'text'>> {
    return this.versions.map(({ text: _t, ...v }) => v);
  }
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Unified diff between two versions (default: the one before `to`, and `to`). */
  diff(from: number, to: number): string {
    const a = this.version(from);
    const b = this.version(to);
    return createTwoFilesPatch(`v${a.version}`, `v${b.version}`, a.text, b.text, a.time, b.time);
  }

  /**
   * Applies a new policy text. Invalid text (syntax, schema, or names unknown to the spec) is refused
   * and the running policy stays; the refusal is logged and audited.
   */
  applyText(text: string, actor: string, source: 'file' | 'rollback' = 'file'): PolicyVersion {
    const file = this.o.policy?.file ?? 'policy';
    let loaded: LoadedPolicy;
    try {
      loaded = parsePolicy(text, file);
      sameApiSet(this.active.doc, loaded.doc);
      const problems = checkPolicy(this.catalog, loaded).filter((x) => x.level === 'error');
      if (problems.length) throw policyProblems(file, problems);
    } catch (e) {
      const err = toWardenError(e);
      this.o.onControl({ actor, action: 'policy.rejected', detail: err.message });
      throw err;
    }
    const sha = sha256(text);
    if (sha === this.versions.at(-1)!.sha256) return this.versions.at(-1)!;
    const previous = this.active;
    this.active = this.activate(loaded.doc, loaded);
    this.loaded = loaded;
    previous.credentials.close();
    const before = this.versions.at(-1)!.version;
    const v = this.record(source, actor, text);
    this.o.onControl({
      actor,
      action: source === 'rollback' ? 'policy.rollback' : 'policy.reload',
      before: { version: before },
      after: { version: v.version, sha256: v.sha256 },
    });
    this.refresh();
    return v;
  }

  /** Re-applies an earlier version (as a new version) and writes it back to the policy file. */
  rollback(version: number, actor: string): PolicyVersion {
    const target = this.version(version);
    const v = this.applyText(target.text, actor, 'rollback');
    const file = this.o.policy?.file;
    if (file) {
      // Atomic replace, so the watcher never reads half a file; the watcher then sees the same hash.
      try {
        const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
        writeFileSync(tmp, target.text, { mode: 0o600 });
        renameSync(tmp, file);
      } catch (e) {
        this.o.warn(
          'rolled back in memory, but the policy file could not be rewritten; the next edit of the file wins',
          {
            code: (e as NodeJS.ErrnoException).code,
          },
        );
      }
    }
    return v;
  }

  async setToggle(tool: string, value: Toggle | undefined, actor: string): Promise<void> {
    if (!this.catalog.tools.some((t) => t.name === tool))
      throw new WardenError('USAGE', `no tool named ${JSON.stringify(tool.slice(0, 100))}`);
    const before = this.o.state.snapshot().toggles.get(tool) ?? 'policy';
    await this.o.state.setToggle(tool, value);
    this.o.onControl({ actor, action: 'tool.toggle', target: tool, before, after: value ?? 'policy' });
  }

  async setKill(value: KillSwitch, actor: string): Promise<void> {
    const before = this.o.state.snapshot().kill;
    await this.o.state.setKill(value);
    this.o.onControl({ actor, action: 'mode', before, after: value });
  }

  /** Watches the policy file: a valid edit applies and is versioned; an invalid one is logged and refused. */
  watchFile(): void {
    const file = this.o.policy?.file;
    if (!file || this.watcher) return;
    // Polled, not a folder watch: see watchFileChanges (an audit file beside the policy woke it every call).
    this.watcher = watchFileChanges(file, () => this.reloadFromFile(file), { settleMs: 100 });
  }

  private reloadFromFile(file: string): void {
    let text: string;
    try {
      text = readPolicyText(file);
    } catch (e) {
      this.o.warn(`policy file unreadable; keeping version ${this.versions.at(-1)!.version}`, {
        code: toWardenError(e).code,
      });
      return;
    }
    try {
      const before = this.versions.at(-1)!.version;
      const v = this.applyText(text, 'file-watch');
      if (v.version !== before) this.o.warn(`policy reloaded: version ${v.version}`, { sha256: v.sha256 });
    } catch (e) {
      const err = toWardenError(e);
      this.o.warn(
        `policy edit rejected; keeping version ${this.versions.at(-1)!.version}: ${formatError(err)}`,
        {
          code: err.code,
          where: formatLocation(err.location),
        },
      );
    }
  }

  close(): void {
    this.watcher?.close();
    this.active.credentials.close();
  }

  version(n: number): PolicyVersion {
    const v = this.versions.find((x) => x.version === n);
    if (!v) throw new WardenError('USAGE', `no policy version ${n}; versions are 1..${this.versions.length}`);
    return v;
  }

  private activate(doc: PolicyDoc, loaded: LoadedPolicy | undefined): Active {
    const environment = this.o.environment ?? doc.environment ?? 'dev';
    const decisions = evaluatePolicy(this.catalog, {
      doc,
      ...(loaded ? { file: basename(loaded.file), lineOf: loaded.lineOf } : {}),
    });
    // At start-up an unknown toolset stops the gateway; after a reload it is reported and skipped.
    const inToolsets = this.o.toolsets?.length
      ? selectToolsets(
          listToolsets(this.catalog, doc),
          this.o.toolsets,
          this.versions.length > 0 ? (m) => this.o.warn(m) : undefined,
        )
      : undefined;
    // Credentials are looked up only for tools the policy would expose: a hidden tool needs none.
    const credentials = loadCredentials({
      tools: decisions
        .filter((d) => d.blockers.every((b) => b.kind === 'disabled'))
        .filter((d) => !inToolsets || inToolsets.has(d.tool.name))
        .map((d) => ({ tool: d.tool, ...(d.credential !== undefined ? { credential: d.credential } : {}) })),
      ...(doc.credentials ? { defs: doc.credentials } : {}),
      ...(doc.apis
        ? { apiDefs: Object.fromEntries(Object.entries(doc.apis).map(([n, a]) => [n, a.credentials])) }
        : {}),
      environment,
      env: this.o.env,
      onSecret: this.o.onSecret,
      warn: (m) => this.o.warn(m),
    });
    this.o.onSecret(credentials.secrets);
    return { doc, decisions, credentials, environment, inToolsets };
  }

  private record(source: PolicyVersion['source'], actor: string, text: string): PolicyVersion {
    const v: PolicyVersion = {
      version: this.versions.length + 1,
      time: new Date().toISOString(),
      actor,
      source,
      sha256: sha256(text),
      text,
    };
    this.versions.push(v);
    return v;
  }

  private rebuild(): ToolView {
    return buildView(
      this.active.decisions,
      this.active.credentials.missing,
      this.o.state.snapshot(),
      this.versions.at(-1)!.version,
      this.unapproved,
      this.active.inToolsets,
      this.o.toolsets?.join(', '),
    );
  }

  private refresh(): void {
    this.current = this.rebuild();
    for (const l of this.listeners) {
      try {
        l();
      } catch {
        /* a listener's failure must not stop the others */
      }
    }
  }
}

/**
 * Which APIs are served, from where and under which prefix is fixed at start-up (the catalogue, the
 * audit and the pins are built from it); a policy edit may change everything else in `apis:`
 * (rules, credentials, limits) and applies, but one that changes the set is refused until a restart.
 */
function sameApiSet(running: PolicyDoc, next: PolicyDoc): void {
  const shape = (d: PolicyDoc) =>
    JSON.stringify(
      Object.entries(d.apis ?? {}).map(([n, a]) => [n, a.spec, a.baseUrl ?? null, a.prefix ?? n]),
    );
  if (shape(running) !== shape(next))
    throw new WardenError(
      'CONFIG_INVALID',
      'the edit changes the API set (an API added or removed, or its spec, baseUrl or prefix): restart the gateway to apply it',
    );
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function policyProblems(file: string, problems: Array<{ line?: number; message: string }>): WardenError {
  const [first, ...rest] = problems;
  return new WardenError('CONFIG_INVALID', `policy: ${first!.message}`, {
    location: { file, ...(first!.line !== undefined ? { line: first!.line } : {}) },
    details: rest.map((p) => `${p.line !== undefined ? `line ${p.line}: ` : ''}${p.message}`),
  });
}
