// Writes schema/policy.schema.json from the zod schema (run after `tsc`). A test fails when the
// committed file and the schema drift apart, so editors never autocomplete a stale policy format.
import { writeFileSync } from 'node:fs';
import { policyJsonSchema } from '../dist/policy/schema.js';

const out = new URL('../schema/policy.schema.json', import.meta.url);
writeFileSync(out, `${JSON.stringify(policyJsonSchema(), null, 2)}\n`);
console.error(`wrote ${out.pathname}`);
