/**
 * Ajv ships CommonJS with `module.exports = Class` and `exports.default = Class`; under NodeNext the
 * default import is the module object for the type checker and the class at run time. `.default`
 * is the class in both worlds, so every import of Ajv goes through here.
 */
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

export const Ajv2020 = Ajv2020Module.default;
export const addFormats = addFormatsModule.default;
export type { ErrorObject, ValidateFunction } from 'ajv';
