import { Ajv2020, addFormats, type ValidateFunction } from '../lib/ajv.js';
import { linearRegExp } from '../lib/linear-regexp.js';
import type { JsonSchemaObject } from '../model/json-schema.js';

/**
 * One Ajv instance per catalogue, configured for untrusted arguments: no type coercion, no
 * defaults injected, strict about the schema's own keywords (the converter emits only 2020-12),
 * lenient about type-keyword pairing that real specs leave implicit. Formats outside ajv-formats'
 * set (`int64`, `binary`, `uri-template`…) are annotations.
 */
export function createSchemaCompiler(formats: readonly string[]) {
  const ajv = new Ajv2020({
    strictSchema: true,
    strictTypes: false,
    strictTuples: false,
    strictRequired: false,
    allowUnionTypes: true,
    allErrors: true,
    coerceTypes: false,
    useDefaults: false,
    unicodeRegExp: false,
    validateSchema: false,
    // Ajv would otherwise keep every compiled schema forever, keyed by the schema object.
    addUsedSchema: false,
    // Spec patterns run on RE2: linear time whatever the pattern (no ReDoS from a hostile spec).
    code: { regExp: linearRegExp },
  });
  addFormats(ajv);
  for (const f of formats) if (!ajv.formats[f]) ajv.addFormat(f, true);
  // An annotation only (the operator's data-class tag, kept in output schemas for masking).
  ajv.addKeyword({ keyword: 'x-data-class', schemaType: 'string' });
  // An annotation only (OpenAPI's discriminator, kept in input schemas to explain branch errors).
  ajv.addKeyword({ keyword: 'x-discriminator', schemaType: 'object' });
  return {
    compile(schema: JsonSchemaObject): ValidateFunction {
      return ajv.compile(schema);
    },
  };
}
