import { readFileSync, statSync } from 'node:fs';
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import type { z } from 'zod';
import { type ErrorLocation, WardenError } from '../errors/index.js';
import { type PolicyDoc, policySchema } from './schema.js';

/** A policy file is small; anything larger is a mistake or an attack on the parser. */
const MAX_POLICY_BYTES = 1024 * 1024;

export interface LoadedPolicy {
  doc: PolicyDoc;
  /** The file as read, kept for versions, diffs and rollback. */
  text: string;
  file: string;
  /** Where each value came from, for errors and `explain`: JSON path → `file:line`. */
  lineOf(path: ReadonlyArray<string | number>): number | undefined;
}

export function readPolicyFile(file: string): LoadedPolicy {
  return parsePolicy(readPolicyText(file), file);
}

/** The file's text, with the size cap applied before reading it whole. */
export function readPolicyText(file: string): string {
  let text: string;
  try {
    if (statSync(file).size > MAX_POLICY_BYTES)
      throw new WardenError('CONFIG_INVALID', `the policy file is larger than ${MAX_POLICY_BYTES} bytes`, {
        location: { file },
      });
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof WardenError) throw e;
    throw new WardenError(
      'CONFIG_INVALID',
      `cannot read the policy file: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
      { location: { file } },
    );
  }
  return text;
}

/**
 * Parses YAML (JSON is YAML too) and checks it against the schema. Every problem is reported at
 * once, each with the file, line and column of the offending key, so a fix takes one edit round.
 */
export function parsePolicy(text: string, file: string): LoadedPolicy {
  const lines = new LineCounter();
  const yamlDoc = parseDocument(text.replace(/^\uFEFF/, ''), {
    lineCounter: lines,
    uniqueKeys: true,
    prettyErrors: false,
  });
  const posOf = (offset: number): Pick<ErrorLocation, 'line' | 'column'> => {
    const p = lines.linePos(offset);
    return { line: p.line, column: p.col };
  };
  if (yamlDoc.errors.length > 0) {
    const first = yamlDoc.errors[0]!;
    throw new WardenError(
      'CONFIG_INVALID',
      `the policy is not valid YAML/JSON: ${first.code.toLowerCase()}`,
      {
        location: { file, ...posOf(first.pos[0]) },
        details: yamlDoc.errors
          .slice(1, 10)
          .map((e) => `${lineCol(posOf(e.pos[0]))} ${e.code.toLowerCase()}`),
      },
    );
  }
  let raw: unknown;
  try {
    raw = yamlDoc.toJS({ maxAliasCount: 50 });
  } catch {
    throw new WardenError('CONFIG_INVALID', 'the policy uses too many YAML aliases', { location: { file } });
  }
  if (raw === null || raw === undefined)
    throw new WardenError('CONFIG_INVALID', 'the policy file is empty; it needs at least `version: 1`', {
      location: { file },
    });

  const nodeAt = (path: ReadonlyArray<PropertyKey>, key?: string): Node | undefined => {
    let node: unknown = yamlDoc.contents;
    for (const seg of path) {
      if (isMap(node)) node = node.items.find((p) => isScalar(p.key) && p.key.value === String(seg))?.value;
      else if (isSeq(node)) node = node.items[Number(seg)];
      else return undefined;
    }
    if (key !== undefined && isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === key);
      return (pair?.key as Node | undefined) ?? (node as Node);
    }
    return (node as Node | undefined) ?? undefined;
  };
  const lineOf = (path: ReadonlyArray<string | number>): number | undefined => {
    // Walk up until some ancestor exists (a defaulted key has no node of its own).
    for (let n = path.length; n >= 0; n--) {
      const node = nodeAt(path.slice(0, n));
      if (node?.range) return posOf(node.range[0]).line;
    }
    return undefined;
  };

  const parsed = policySchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => describeIssue(issue, nodeAt, posOf));
    problems.sort((a, b) => (a.loc.line ?? 0) - (b.loc.line ?? 0));
    const [first, ...rest] = problems;
    throw new WardenError('CONFIG_INVALID', `policy: ${first!.text}`, {
      location: { file, ...first!.loc },
      details: rest.slice(0, 20).map((p) => `${lineCol(p.loc)} ${p.text}`),
    });
  }
  return { doc: parsed.data, text, file, lineOf };
}

function describeIssue(
  issue: z.core.$ZodIssue,
  nodeAt: (path: ReadonlyArray<PropertyKey>, key?: string) => Node | undefined,
  posOf: (offset: number) => Pick<ErrorLocation, 'line' | 'column'>,
): { text: string; loc: Pick<ErrorLocation, 'line' | 'column'> } {
  const keyPath = issue.path.map(String);
  let node: Node | undefined;
  let text: string;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    node = nodeAt(issue.path, key);
    text = `unknown key ${render([...keyPath, key])}${issue.keys.length > 1 ? ` (and ${issue.keys.slice(1).join(', ')})` : ''}`;
  } else {
    // A missing key has no node: point at its parent object.
    node = nodeAt(issue.path) ?? nodeAt(issue.path.slice(0, -1));
    text = `${render(keyPath)}: ${issue.message}`;
  }
  return { text, loc: node?.range ? posOf(node.range[0]) : {} };
}

/** `rules[2].match.name` — how a user would point at the key. */
function render(path: readonly string[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

function lineCol(loc: Pick<ErrorLocation, 'line' | 'column'>): string {
  return loc.line !== undefined ? `line ${loc.line}:${loc.column ?? 1}:` : '';
}
