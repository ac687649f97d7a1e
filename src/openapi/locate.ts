import { isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import { pointerTokens } from './parse.js';

// Apart from ./parse.ts so that loading a spec does not load the `yaml` package (a position-keeping
// parser, some 200 KB of code): only error paths and reports need lines.

/**
 * Returns a function that finds the line of a JSON pointer in the original text. Only used on error
 * and report paths: it parses once more with a position-keeping parser, slower than the load path.
 */
export function createLineLocator(
  text: string,
): (pointer: string) => { line: number; column: number } | undefined {
  const lc = new LineCounter();
  const doc = parseDocument(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, {
    lineCounter: lc,
    uniqueKeys: false,
  });
  return (pointer) => {
    let node: unknown = doc.contents;
    let range = (node as { range?: [number, number] } | null)?.range;
    for (const token of pointerTokens(pointer)) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === token);
        if (!pair) break;
        range = (pair.key as { range?: [number, number] }).range ?? range;
        node = pair.value;
      } else if (isSeq(node)) {
        const item = node.items[Number(token)];
        if (item === undefined) break;
        range = (item as { range?: [number, number] }).range ?? range;
        node = item;
      } else break;
    }
    if (!range) return undefined;
    const p = lc.linePos(range[0]);
    return { line: p.line, column: p.col };
  };
}
