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
