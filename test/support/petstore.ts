// @ts-expect-error: the demo upstream is plain JavaScript
import { startPetstore as startDemoPetstore } from '../../examples/petstore/server.mjs';

/** The demo's second API (examples/petstore): its spec. */
export const PETS_SPEC = new URL('../../examples/petstore/openapi.yaml', import.meta.url).pathname;

/** The demo pet store, a real upstream recording every request that reached it (key in X-Pets-Key). */
export interface Petstore {
  url: string;
  key: string;
  requests: Array<{ method: string; url: string; headers: Record<string, string> }>;
  close(): Promise<void>;
}

export function startPetstore(): Promise<Petstore> {
  return startDemoPetstore();
}
