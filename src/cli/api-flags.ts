import { WardenError } from '../errors/index.js';
import { API_NAME } from '../policy/schema.js';

/** One API given on the command line: `--api name=spec[,base-url]`, or a bare spec named for it. */
export interface ApiArg {
  name: string;
  spec: string;
  baseUrl?: string;
}

/**
 * `--api crm=specs/crm.yaml,https://crm.internal/v2` → `{ name: 'crm', spec: …, baseUrl: … }`. The base
 * URL is what follows the last comma when it is an http(s) URL, so a spec path with a comma still reads.
 */
export function parseApiFlag(value: string): ApiArg {
  const eq = value.indexOf('=');
  const name = eq < 0 ? '' : value.slice(0, eq);
  const rest = eq < 0 ? '' : value.slice(eq + 1);
  if (!API_NAME.test(name) || rest === '')
    throw new WardenError(
      'USAGE',
      `--api ${JSON.stringify(value.slice(0, 200))}: write name=spec[,base-url], the name 1 to 32 lower-case letters, digits or -, starting with a letter`,
    );
  const comma = rest.lastIndexOf(',');
  if (comma > 0 && /^https?:\/\//i.test(rest.slice(comma + 1)))
    return { name, spec: rest.slice(0, comma), baseUrl: rest.slice(comma + 1) };
  return { name, spec: rest };
}

/** Words of a spec title that say nothing about which API it is. */
const NOISE = /^(api|apis|swagger|openapi|rest|restful|http|web|service|services|the|v?\d+(\.\d+)*)$/;

/**
 * An API name from a spec's title, for specs given without one (`scan a.yaml b.yaml`): `Swagger
 * Petstore` → `petstore`, `Acme Shop API` → `acme-shop`, `GitHub v3 REST API` → `github` (words that
 * say nothing dropped); taken names get `-2`, `-3`…; a title with no letter gives `api`.
 */
export function apiNameFromTitle(title: string, taken: ReadonlySet<string>): string {
  const words = title
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .split(/[^a-z0-9_.-]+|[._-]+(?=[^0-9])/)
    .filter(Boolean);
  const kept = words.filter((w) => !NOISE.test(w));
  const base =
    (kept.length ? kept : words)
      .join('-')
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^[^a-z]+/, '')
      .slice(0, 29)
      .replace(/-+$/, '') || 'api';
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
}

/** Refuses two APIs with the same name, naming it. */
export function checkUniqueNames(apis: readonly { name: string }[]): void {
  const seen = new Set<string>();
  for (const a of apis) {
    if (seen.has(a.name))
      throw new WardenError('USAGE', `two APIs are named "${a.name}"; give each its own name`);
    seen.add(a.name);
  }
}
