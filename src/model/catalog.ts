import type { JsonSchema, JsonSchemaObject } from './json-schema.js';

export type HttpMethod = 'get' | 'put' | 'post' | 'delete' | 'options' | 'head' | 'patch' | 'trace';
export const HTTP_METHODS: readonly HttpMethod[] = [
  'get',
  'put',
  'post',
  'delete',
  'options',
  'head',
  'patch',
  'trace',
];

/** Every risk class, in report order. */
export const RISK_CLASSES = [
  'read',
  'write',
  'destructive',
  'admin',
  'credential',
  'bulk-export',
  'raw-query',
] as const;
export type RiskClass = (typeof RISK_CLASSES)[number];
/** Classes that keep a tool hidden under the secure defaults: all but `read`. */
export const HIDING_CLASSES: readonly RiskClass[] = RISK_CLASSES.filter((c) => c !== 'read');

export interface RiskFinding {
  class: RiskClass | 'unbounded';
  /** Id of the rule in the classification table that fired. */
  rule: string;
  reason: string;
}

export type DataClass = 'pii' | 'secret' | 'financial';

export interface DataField {
  /** JSONPath-like location inside the response body: `$.data[*].email`, `$.*.token`. */
  path: string;
  class: DataClass;
  /** What it is: `email`, `phone`, `password`, `card-number`… */
  kind: string;
  rule: string;
  reason: string;
}

export type ParamLocation = 'path' | 'query' | 'header' | 'cookie';

/** How one tool argument maps onto the HTTP request. */
export interface ArgBinding {
  arg: string;
  in: ParamLocation | 'body';
  /** Name on the wire (parameter name; for the body, the content type). */
  name: string;
  required: boolean;
  style?: string;
  explode?: boolean;
  allowReserved?: boolean;
  /** For `in: body`: the chosen request content type. */
  contentType?: string;
}

export interface StrippedParam {
  in: ParamLocation;
  name: string;
  reason: string;
}

export interface AuthRequirement {
  scheme: string;
  type: 'apiKey' | 'http' | 'oauth2' | 'openIdConnect' | 'mutualTLS' | 'unknown';
  /** apiKey: where the key goes and under which name. */
  in?: 'header' | 'query' | 'cookie';
  paramName?: string;
  /** http: `bearer`, `basic`, `digest`… */
  httpScheme?: string;
  bearerFormat?: string;
  /** Bearer tokens declared as JWTs. */
  jwt: boolean;
  scopes: string[];
  /** oauth2: the flows the scheme declares. */
  flows?: string[];
}

/**
 * Where an OAuth scheme's authorization server is, as the spec declares it: the `authorizationCode`
 * flow's URLs (Swagger 2.0 `accessCode` arrives converted to it) and an `openIdConnect` scheme's
 * discovery URL. Kept per API beside the catalogue, never inside a Tool, so a tool's pin does not
 * depend on them. URLs as written: a relative one resolves against the API's base URL when used.
 */
export interface OAuthSchemeUrls {
  authorizationUrl?: string;
  tokenUrl?: string;
  refreshUrl?: string;
  openIdConnectUrl?: string;
}

export interface ToolAuth {
  /** `security: []` (explicitly, or no security anywhere): callable without upstream credentials. */
  public: boolean;
  /** Alternatives (OR) of requirement sets (AND), as in OpenAPI. */
  alternatives: AuthRequirement[][];
}

export interface PageSizeInfo {
  arg: string;
  maximum?: number;
}

export interface ToolSource {
  method: HttpMethod;
  path: string;
  operationId?: string;
  tags: string[];
  /** JSON pointer of the operation in the (bundled) document. */
  pointer: string;
  servers: ServerInfo[];
  deprecated: boolean;
}

export interface ServerInfo {
  url: string;
  variables?: Record<string, { default: string; enum?: string[] }>;
}

export interface ToolAnnotations {
  title?: string;
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
}

export interface Tool {
  name: string;
  /**
   * The API of an API set this tool belongs to (its name in `apis:`); absent when one spec is served
   * alone. Tool names in a set carry the API's prefix; this is the API's name, not the prefix.
   */
  api?: string;
  title?: string;
  description: string;
  inputSchema: JsonSchemaObject;
  outputSchema?: JsonSchemaObject;
  /** The response is not an object, so structured output wraps it as `{ "result": … }`. */
  outputWrapped: boolean;
  annotations: ToolAnnotations;
  source: ToolSource;
  bindings: ArgBinding[];
  strippedParams: StrippedParam[];
  responseContentTypes: string[];
  risk: {
    classes: RiskClass[];
    unbounded: boolean;
    findings: RiskFinding[];
    /**
     * A POST whose verbs say it only reads (`POST /accounts/get`): a hint, never a change of class;
     * a policy rule `treatAs: read` is what exposes it (src/classify/read-like.ts).
     */
    readLike?: { verb: string; reason: string };
  };
  dataClasses: DataField[];
  /** True when the data-class walk stopped at its depth or size budget. */
  dataClassesTruncated: boolean;
  auth: ToolAuth;
  pageSize?: PageSizeInfo;
  exposure: { exposed: boolean; reasons: string[] };
}

export interface Catalog {
  title: string;
  apiVersion: string;
  specVersion: string;
  source: string;
  servers: ServerInfo[];
  tools: Tool[];
  /** `format` values used by the schemas (the validator needs to know the non-standard ones). */
  formats: string[];
  warnings: string[];
}

export type { JsonSchema, JsonSchemaObject };
