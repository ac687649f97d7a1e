import AgentClass from 'undici/lib/dispatcher/agent.js';
import { FormData as UndiciFormData } from 'undici/lib/web/fetch/formdata.js';

/**
 * The two parts of undici the guard pipeline uses, its connection pool (`Agent`) and its `FormData`
 * (multipart bodies), taken from undici's own files rather than from its index (issue 22: a first
 * call loads them). The index evaluates the whole of undici — fetch, WebSocket, EventSource, the
 * cache and mock agents — about 1 MB of bundled code: 37 ms to load against 16–19 ms for these two
 * (a bundle of each, scratch measurement; BENCHMARKS.md, thirteenth pass). They are the very
 * classes the index exports (the same files), so undici's own checks on a request's body (a
 * prototype check in its multipart encoder) hold; test/lib/undici-parts.test.ts checks that, and
 * fails if undici moves them. Only what the index adds is missing: `request`, `stream` and the
 * other API methods it puts on every dispatcher (use `dispatch`, as pipeline/send.ts does).
 */
export const Agent = AgentClass;
export type Agent = InstanceType<typeof AgentClass>;
export type FormData = InstanceType<typeof UndiciFormData>;

// Read at the first multipart body, not at import: the bundle evaluates undici's FormData file (and
// its webidl and fetch helpers, ~5–10 ms) only then (scripts/bundle-cli.mjs, LAZY_PACKAGES), so a
// first call of any other kind does not load it (issue 22). undici's own encoder requires it lazily too.
let formDataClass: typeof UndiciFormData | undefined;

/** A new (empty) undici FormData, for a multipart/form-data body. */
export function newFormData(): FormData {
  formDataClass ??= UndiciFormData;
  return new formDataClass();
}

/** Whether `x` is one of undici's FormData (none can be until newFormData has run). */
export function isFormData(x: unknown): x is FormData {
  return formDataClass !== undefined && x instanceof formDataClass;
}
