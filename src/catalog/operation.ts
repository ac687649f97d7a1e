import type { HttpMethod } from '../model/catalog.js';

/** One operation of the document, as the walk over `paths` found it. */
export interface Operation {
  path: string;
  method: HttpMethod;
  op: Record<string, unknown>;
  /** The (followed) Path Item holding it: path-level parameters and servers. */
  item: Record<string, unknown>;
  /** JSON pointer of the operation, `#/paths/…/get`. */
  pointer: string;
}
