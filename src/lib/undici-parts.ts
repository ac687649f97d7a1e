import AgentClass from 'undici/lib/dispatcher/agent.js';
import formData from 'undici/lib/web/fetch/formdata.js';

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
export const FormData = formData.FormData;
export type FormData = InstanceType<typeof formData.FormData>;
