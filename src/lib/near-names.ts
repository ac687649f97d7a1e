/**
 * Names close to a mistyped one, for "did you mean": case-insensitive edit distance (insertions,
 * deletions, substitutions, adjacent swaps), within about a third of the name's length. Bounded: a
 * name longer than 100 characters, or a list of more than 5,000 names, gets no suggestion.
 */
export function nearNames(name: string, candidates: Iterable<string>, max = 3): string[] {
  if (name.length === 0 || name.length > 100) return [];
  const wanted = name.toLowerCase();
  const limit = Math.max(2, Math.floor(wanted.length / 3));
  const found: Array<{ name: string; d: number }> = [];
  let seen = 0;
  for (const c of candidates) {
    if (++seen > 5_000) return [];
    if (c === name || Math.abs(c.length - wanted.length) > limit) continue;
    const d = distance(wanted, c.toLowerCase(), limit);
    if (d <= limit) found.push({ name: c, d });
  }
  return found
    .sort((a, b) => a.d - b.d || a.name.localeCompare(b.name))
    .slice(0, max)
    .map((f) => f.name);
}

/** Optimal-string-alignment distance, stopped early once every cell of a row exceeds `limit`. */
function distance(a: string, b: string, limit: number): number {
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, prev2[j - 2]! + 1);
      row.push(v);
      if (v < best) best = v;
    }
    if (best > limit) return limit + 1;
    prev2 = prev;
    prev = row;
  }
  return prev[b.length]!;
}
