/**
 * `compute` remembered per text, for the catalogue's per-text work that specs repeat on every
 * operation (word splits, description cleaning and cuts). Bounded: past `cap` texts the memory is
 * dropped and refilled, so a reload of another spec cannot grow it without end.
 */
export function memoByText<T>(compute: (text: string) => T, cap: number): (text: string) => T {
  const memo = new Map<string, T>();
  return (text) => {
    let v = memo.get(text);
    if (v === undefined) {
      v = compute(text);
      if (memo.size > cap) memo.clear();
      memo.set(text, v);
    }
    return v;
  };
}
