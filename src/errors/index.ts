/**
 * The error module: the table of codes (`codes.ts`), the one error class (`error.ts`) and one mapper
 * per surface (`surfaces.ts`). Importers take everything from here.
 */
export { ERROR_CODES, type ErrorCode, type ErrorMapping, mappingOf } from './codes.js';
export {
  type ErrorLocation,
  formatError,
  formatLocation,
  isWardenError,
  toWardenError,
  WardenError,
} from './error.js';
export {
  auditDecision,
  exitCode,
  type HttpEnvelope,
  type HttpError,
  httpStatus,
  isProtocolSurface,
  jsonRpcError,
  replyHttpError,
  settleCallError,
  surfacedCode,
  type ToolErrorResult,
  toolErrorResult,
  toProtocolError,
} from './surfaces.js';
