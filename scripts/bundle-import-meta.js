// Injected by scripts/bundle-cli.mjs where a bundled module reads `import.meta.url`: the bundle's own
// file URL (the bundles sit where the modules' chunks did: the same `../..` reach the package root).
import { pathToFileURL } from 'node:url';

export const __wardenImportMetaUrl = pathToFileURL(__filename).href;
