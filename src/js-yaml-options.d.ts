// js-yaml 4.3 (the 4.x line, still maintained) takes these load options, its guards against deep
// nesting and merge-key bombs; @types/js-yaml 4.0.9 predates them.
import 'js-yaml';

declare module 'js-yaml' {
  interface LoadOptions {
    /** Deepest nesting accepted (default 100): deeper throws a YAMLException. */
    maxDepth?: number;
    /** Most merge keys (`<<`) in one document (default 10,000). */
    maxTotalMergeKeys?: number;
  }
}
