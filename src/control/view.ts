import { economizeInput, economizeOutput } from '../catalog/economy.js';
import { outputSchemaParts } from '../catalog/tool.js';
import type { Tool } from '../model/catalog.js';
import type { DefsLookup } from '../model/json-schema.js';
import type { RuntimeSnapshot } from '../model/state.js';
import type { Blocker, ToolDecision } from '../policy/evaluate.js';
import { maskerFor } from '../protect/mask.js';

/** The name of the argument that carries a two-step confirmation token. */
export const CONFIRM_ARG = 'mcp_warden_confirmation';

/** A tool as `tools/list` shows it. */
export interface ListedTool {
  name: string;
  title?: string;
  description: string;
  inputSchema: Tool['inputSchema'];
  outputSchema?: Tool['outputSchema'];
  annotations: Tool['annotations'];
}

export interface ViewEntry {
  decision: ToolDecision;
  /** Policy blockers plus the credential and runtime ones. Exposed when empty. */
  blockers: Blocker[];
  exposed: boolean;
  /** The tool as listed with its output schema (describe_tool, `toolsList.outputSchemas: true`). */
  listed: ListedTool;
}

/** An entry with the same listing without the output schema: what `tools/list` shows by default. */
type Entry = ViewEntry & { readonly bare: ListedTool };

/**
 * What the gateway serves right now: the policy's decisions with the environment's credentials and
 * the runtime switches applied. Immutable; a new view replaces it on every change, so a call sees one
 * consistent state from start to end.
 */
export interface ToolView {
  readonly policyVersion: number;
  get(name: string): ViewEntry | undefined;
  readonly entries: readonly ViewEntry[];
  /**
   * The tools a caller with these scopes may see (cached per distinct scope set). Without
   * `outputSchemas`, none is built: publishing a masked output schema walks its whole `$defs`
   * closure, nearly half of Stripe's start-up when every tool's was built for the first list.
   */
  listFor(scopes: readonly string[], outputSchemas?: boolean): ListedTool[];
  /** The same set, by name only: nothing is built (dynamic mode's search needs no schemas). */
  visibleTo(scopes: readonly string[]): ReadonlySet<string>;
}

/** Methods that cannot change state on a conforming server (RFC 9110 §9.2.1). */
const SAFE_METHODS: ReadonlySet<string> = new Set(['get', 'head', 'options']);

export function buildView(
  decisions: readonly ToolDecision[],
  missingCredential: ReadonlyMap<string, string>,
  runtime: RuntimeSnapshot,
  policyVersion: number,
  /** Tools whose definition is not approved (new or changed since pinned), with the reason. */
  unapproved: ReadonlyMap<string, string> = new Map(),
  /** With `--toolsets`: the tools they hold (the others are hidden), and their names for the reason. */
  inToolsets?: ReadonlySet<string>,
  toolsetNames = '',
): ToolView {
  const entries = decisions.map((decision): Entry => {
    const name = decision.tool.name;
    const toggle = runtime.toggles.get(name);
    // A runtime enable lifts only `disabled`; risk, mode and credential blockers stay.
    let blockers =
      toggle === 'enabled' ? decision.blockers.filter((b) => b.kind !== 'disabled') : [...decision.blockers];
    if (toggle === 'disabled') blockers.push({ kind: 'disabled', reason: 'disabled at run time' });
    if (inToolsets && !inToolsets.has(name))
      blockers.push({ kind: 'toolset', reason: `not in the served toolsets (${toolsetNames})` });
    const pending = unapproved.get(name);
    if (pending !== undefined) blockers.push({ kind: 'unapproved', reason: pending });
    const missing = missingCredential.get(name);
    if (missing !== undefined)
      blockers.push({ kind: 'credential', reason: `no upstream credential: ${missing}` });
    if (runtime.kill === 'off') blockers.push({ kind: 'mode', reason: 'kill switch: all tools off' });
    // In an incident "read-only" means nothing that can change state goes out: a POST the policy
    // treats as a read (`treatAs: read`) is still a POST, and is stopped with the writes.
    if (
      runtime.kill === 'read-only' &&
      (decision.kind !== 'read' || !SAFE_METHODS.has(decision.tool.source.method))
    )
      blockers.push({ kind: 'mode', reason: 'kill switch: read-only' });
    blockers = dedupe(blockers);
    // Built on first use: publishing a masked output schema walks it, and most tools are never listed.
    let bare: ListedTool | undefined;
    let listed: ListedTool | undefined;
    const bareNow = (): ListedTool => {
      bare ??= bareOf(decision);
      return bare;
    };
    const entry = {
      decision,
      blockers,
      exposed: blockers.length === 0,
      get listed() {
        listed ??= withOutputSchema(bareNow(), decision);
        return listed;
      },
    };
    // The view's own (lists without output schemas): not part of the entry a call resolves to.
    return Object.defineProperty(entry, 'bare', { get: bareNow, enumerable: false }) as Entry;
  });
  const byName = new Map(entries.map((e) => [e.decision.tool.name, e]));
  const exposed = entries.filter((e) => e.exposed);
  const cache = new Map<string, ListedTool[]>();
  const names = new Map<string, Set<string>>();
  const visibleTo = (scopes: readonly string[]): ReadonlySet<string> => {
    const key = [...new Set(scopes)].sort().join(' ');
    let set = names.get(key);
    if (!set) {
      const have = new Set(scopes);
      set = new Set(
        exposed.filter((e) => e.decision.scopes.every((s) => have.has(s))).map((e) => e.decision.tool.name),
      );
      if (names.size < 256) names.set(key, set);
    }
    return set;
  };
  return {
    policyVersion,
    entries,
    get: (name) => byName.get(name),
    visibleTo,
    listFor(scopes, outputSchemas = true) {
      const key = `${outputSchemas ? '+' : '-'}${[...new Set(scopes)].sort().join(' ')}`;
      let list = cache.get(key);
      if (!list) {
        const visible = visibleTo(scopes);
        const shown = exposed.filter((e) => visible.has(e.decision.tool.name));
        list = outputSchemas ? shown.map((e) => e.listed) : shown.map((e) => e.bare);
        // Bounded: scope sets are few in practice; a flood of distinct ones must not grow memory.
        if (cache.size < 256) cache.set(key, list);
      }
      return list;
    },
  };
}

/** The listed tool without its output schema: name, texts, published input schema, annotations. */
function bareOf(d: ToolDecision): ListedTool {
  const t = d.tool;
  let inputSchema = economizeInput(t.inputSchema);
  let description = t.description;
  if (d.confirm && d.approval === 'agent') {
    // The agent's own confirmation (approval: agent): the token travels as an argument.
    inputSchema = {
      ...inputSchema,
      properties: {
        ...(inputSchema.properties ?? {}),
        [CONFIRM_ARG]: {
          type: 'string',
          description:
            'Leave out on the first call: the gateway answers with a preview and a token. Call again with ' +
            'the same arguments and this token only after the user has approved the preview.',
        },
      },
    };
    description = `${description}\n\nThis tool asks for the user's confirmation before it runs.`.trim();
  } else if (d.confirm) {
    description = `${description}\n\n${
      d.approval === 'operator'
        ? 'This tool runs only after a human operator approved the call (the first call is parked; repeat it with the same arguments once approved).'
        : d.approval === 'elicit'
          ? "This tool asks for the user's confirmation before it runs."
          : "This tool asks for the user's confirmation before it runs (or, where the client cannot ask, a human operator's approval)."
    }`.trim();
  }
  return {
    name: t.name,
    ...(t.title ? { title: t.title } : {}),
    description,
    inputSchema,
    annotations: t.annotations,
  };
}

/** The listed tool with its published output schema (in the place `tools/list` has always put it). */
function withOutputSchema(bare: ListedTool, d: ToolDecision): ListedTool {
  const t = d.tool;
  // A catalogued tool's parts, not `t.outputSchema`: reading that builds the `$defs` closure.
  const parts = outputSchemaParts(t);
  if (!parts && !t.outputSchema) return bare;
  const { annotations, ...head } = bare;
  return {
    ...head,
    // What the agent receives is masked and redacted: it is valid against this schema, not the spec's;
    // and only its outline is published (results are checked against the full schema before this).
    outputSchema: publishedOutline(parts ?? { schema: t.outputSchema! }, d),
    annotations,
  };
}

/** The economy outline of the masked output schema: only the definitions it reaches are converted. */
function publishedOutline(
  p: { schema: NonNullable<Tool['outputSchema']>; defs?: DefsLookup },
  d: ToolDecision,
) {
  const { schema, def } = maskerFor(p.schema, d.masking, p.defs).publishedOutline();
  return economizeOutput(schema, { defs: def });
}

/**
 * Whether a caller with these scopes is listed the same tools by both views: names, texts, input
 * schemas and annotations compared as text; output schemas only where they could differ. A
 * published output schema is made from the tool's output schema and the masking rules alone (both
 * immutable, rules interned by `maskRules`), so the same tool under the same rules needs no build.
 */
export function sameListing(a: ToolView, b: ToolView, scopes: readonly string[]): boolean {
  if (a === b) return true;
  // Memoised per pair of views and scope set: every listener with the same scopes asks the same.
  let byB = compared.get(a);
  if (!byB) {
    byB = new WeakMap();
    compared.set(a, byB);
  }
  let byScopes = byB.get(b);
  if (!byScopes) {
    byScopes = new Map();
    byB.set(b, byScopes);
  }
  const key = [...new Set(scopes)].sort().join(' ');
  let same = byScopes.get(key);
  if (same === undefined) {
    same = compareListings(a, b, scopes);
    if (byScopes.size < 256) byScopes.set(key, same);
  }
  return same;
}

/** Both views held weakly: a comparison must not keep a replaced catalogue alive. */
const compared = new WeakMap<ToolView, WeakMap<ToolView, Map<string, boolean>>>();

function compareListings(a: ToolView, b: ToolView, scopes: readonly string[]): boolean {
  const la = a.listFor(scopes, false);
  const lb = b.listFor(scopes, false);
  if (la.length !== lb.length || listText(la) !== listText(lb)) return false;
  for (const l of la) {
    const ea = a.get(l.name)!;
    const eb = b.get(l.name)!;
    const ta = ea.decision.tool;
    const tb = eb.decision.tool;
    if (ta === tb && ea.decision.masking === eb.decision.masking) continue;
    // `in` reads no lazily built schema: a tool without one has no such key.
    if (!('outputSchema' in ta) && !('outputSchema' in tb)) continue;
    if (JSON.stringify(ea.listed.outputSchema) !== JSON.stringify(eb.listed.outputSchema)) return false;
  }
  return true;
}

const listTexts = new WeakMap<readonly ListedTool[], string>();
/** A list's JSON text, once per list (lists are cached per view and scope set). */
function listText(list: readonly ListedTool[]): string {
  let t = listTexts.get(list);
  if (t === undefined) {
    t = JSON.stringify(list);
    listTexts.set(list, t);
  }
  return t;
}

function dedupe(blockers: Blocker[]): Blocker[] {
  const seen = new Set<string>();
  return blockers.filter((b) => {
    const k = `${b.kind}\0${b.reason}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
