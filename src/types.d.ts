declare module 'swagger2openapi' {
  interface ConvertOptions {
    patch?: boolean;
    warnOnly?: boolean;
    resolve?: boolean;
    direct?: boolean;
    [key: string]: unknown;
  }
  export function convertObj(
    doc: object,
    options: ConvertOptions,
  ): Promise<{ openapi: Record<string, unknown> }>;
  const s2o: { convertObj: typeof convertObj };
  export default s2o;
}

// undici's own files for its Agent and FormData (src/lib/undici-parts.ts); both CommonJS, typed as
// the classes its index exports.
declare module 'undici/lib/dispatcher/agent.js' {
  import type { Agent } from 'undici';

  const AgentClass: typeof Agent;
  export default AgentClass;
}
declare module 'undici/lib/web/fetch/formdata.js' {
  import type { FormData as UndiciFormData } from 'undici';

  export const FormData: typeof UndiciFormData;
}

// rate-limiter-flexible's own files for the limiters the gateway uses (src/lib/rate-limiters.ts);
// CommonJS, typed as the classes its index exports.
declare module 'rate-limiter-flexible/lib/RateLimiterMemory.js' {
  import type { RateLimiterMemory } from 'rate-limiter-flexible';

  const MemoryClass: typeof RateLimiterMemory;
  export default MemoryClass;
}
declare module 'rate-limiter-flexible/lib/RateLimiterRedis.js' {
  import type { RateLimiterRedis } from 'rate-limiter-flexible';

  const RedisClass: typeof RateLimiterRedis;
  export default RedisClass;
}
declare module 'rate-limiter-flexible/lib/RateLimiterRes.js' {
  import type { RateLimiterRes } from 'rate-limiter-flexible';

  const ResClass: typeof RateLimiterRes;
  export default ResClass;
}
