// A dummy credential for every security scheme of a spec (MCP_WARDEN_CRED_<SCHEME>): without one
// mcp-warden hides the tools that need it, and a bench's list would not be the API's.
import { readFileSync } from 'node:fs';
import { CORE_SCHEMA, load as loadYaml } from 'js-yaml';

/** The environment variables giving each security scheme of `spec` (a file) a placeholder credential. */
export function credentialEnv(spec) {
  const text = readFileSync(spec, 'utf8').replace(/^\ufeff/, '');
  const doc = /^\s*[{[]/.test(text) ? JSON.parse(text) : loadYaml(text, { schema: CORE_SCHEMA });
  const schemes = { ...doc?.securityDefinitions, ...doc?.components?.securitySchemes };
  return Object.fromEntries(
    Object.keys(schemes).map((k) => [
      `MCP_WARDEN_CRED_${k.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`,
      'bench:bench',
    ]),
  );
}
