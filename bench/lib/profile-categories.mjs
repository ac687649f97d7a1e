// Self time of a .cpuprofile by category and by module, in the window from the first sample inside a
// call to the last (a whole process's profile has start-up and shut-down around them).

const NATIVE_IO = new Set([
  'writeUtf8String',
  'writeLatin1String',
  'writeBuffer',
  'writev',
  'writeString',
  'writeSync',
  'fsync',
  'fdatasync',
  'read',
  'readSync',
]);

export function moduleOf(url) {
  if (!url) return '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 13).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const d = url.indexOf('/dist/');
  if (d >= 0) return `warden:${url.slice(d + 6).replace(/\.js$/, '')}`;
  if (url.startsWith('node:')) return url;
  return url
    .replace(/^file:\/\//, '')
    .split('/')
    .slice(-2)
    .join('/');
}

export function categorise(profile, inCallUrl, weight = 'ticks') {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const memo = new Map();
  const callOn = (id) => {
    if (memo.has(id)) return memo.get(id);
    const n = byId.get(id);
    const v = inCallUrl(n.callFrame.url) || (parent.has(id) && callOn(parent.get(id)));
    memo.set(id, v);
    return v;
  };
  let first = 0;
  let last = profile.samples.length - 1;
  while (first < last && !callOn(profile.samples[first])) first++;
  while (last > first && !callOn(profile.samples[last])) last--;
  const nominal = [...profile.timeDeltas].sort((a, b) => a - b)[profile.timeDeltas.length >> 1] ?? 0;
  const self = new Map();
  let total = 0;
  for (let i = first + 1; i <= last; i++) {
    const id = profile.samples[i];
    const us = weight === 'ticks' ? nominal : (profile.timeDeltas[i] ?? 0);
    const { functionName } = byId.get(id).callFrame;
    if (functionName === '(idle)') continue;
    total += us;
    self.set(id, (self.get(id) ?? 0) + us);
  }
  const cat = new Map();
  const mod = new Map();
  const fn = new Map();
  const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v);
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const m = moduleOf(url);
    let c;
    if (functionName === '(garbage collector)') c = 'gc';
    else if (functionName === '(program)') c = '(program)';
    else if (!url && NATIVE_IO.has(functionName)) c = `io: ${functionName}`;
    else if (!url) c = 'native other';
    else if (m.startsWith('warden:')) c = `warden ${m.slice(7).split('/')[0]}`;
    else if (m.startsWith('node:')) c = 'node internals';
    else c = m;
    add(cat, c, us);
    add(mod, m, us);
    add(fn, `${functionName || '(anonymous)'} ${m}${url ? `:${lineNumber + 1}` : ''}`, us);
  }
  const sorted = (m) => [...m].sort((a, b) => b[1] - a[1]);
  return { total, cat: sorted(cat), mod: sorted(mod), fn: sorted(fn), byId, parent, self };
}

/** Inclusive time per function name found on the stack (outermost match wins), among `names`. */
export function inclusive(summary, pick) {
  const { byId, parent, self } = summary;
  const out = new Map();
  for (const [id, us] of self) {
    let found;
    for (let n = byId.get(id); n; n = byId.get(parent.get(n.id))) {
      const k = pick(n.callFrame);
      if (k) found = k;
    }
    out.set(found ?? '(none)', (out.get(found ?? '(none)') ?? 0) + us);
  }
  return [...out].sort((a, b) => b[1] - a[1]);
}
