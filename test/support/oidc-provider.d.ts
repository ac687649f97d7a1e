/**
 * oidc-provider ships no types (and @types/oidc-provider is not installed): the part of its API the
 * tests use, typed as they use it. Test-only (the gateway itself speaks OAuth through oauth4webapi).
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface ClientMetadata {
    client_id: string;
    client_secret?: string;
    redirect_uris?: string[];
    grant_types?: string[];
    response_types?: string[];
    token_endpoint_auth_method?: string;
    id_token_signed_response_alg?: string;
    [key: string]: unknown;
  }

  export interface Client {
    clientId: string;
    grantTypeAllowed(type: string): boolean;
    [key: string]: unknown;
  }

  export interface Account {
    accountId: string;
    claims(...args: unknown[]): Promise<Record<string, unknown>> | Record<string, unknown>;
  }

  export interface Interaction {
    uid: string;
    [key: string]: unknown;
  }

  export interface ResourceServer {
    audience?: string;
    scope: string;
    accessTokenFormat?: 'opaque' | 'jwt';
    accessTokenTTL?: number;
    jwt?: { sign?: { alg?: string } };
  }

  export class AccessToken {
    constructor(properties: {
      accountId?: string;
      client: Client;
      scope?: string | undefined;
      gty?: string;
      [key: string]: unknown;
    });
    resourceServer?: ResourceServer;
    scope?: string;
    /** Seconds until it expires. */
    readonly expiration: number;
    save(): Promise<string>;
  }

  export class Grant {
    constructor(properties: { accountId: string; clientId: string });
    static find(id: string): Promise<Grant | undefined>;
    addOIDCScope(scope: string): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  }

  export interface OIDCContext {
    params: Record<string, unknown>;
    client?: Client;
    provider: Provider;
    [key: string]: unknown;
  }

  export interface KoaContextWithOIDC {
    oidc: OIDCContext;
    body?: unknown;
    [key: string]: unknown;
  }

  export interface Configuration {
    clients?: ClientMetadata[];
    issueRefreshToken?: (
      ctx: KoaContextWithOIDC,
      client: Client,
      code?: unknown,
    ) => boolean | Promise<boolean>;
    findAccount?: (
      ctx: KoaContextWithOIDC,
      sub: string,
      token?: unknown,
    ) => Account | undefined | Promise<Account | undefined>;
    interactions?: { url?: (ctx: KoaContextWithOIDC, interaction: Interaction) => string | Promise<string> };
    [key: string]: unknown;
  }

  export interface InteractionDetails {
    uid: string;
    prompt: { name: string; details: Record<string, unknown>; reasons?: string[] };
    params: Record<string, unknown>;
    grantId?: string;
    session?: { accountId: string; [key: string]: unknown };
    [key: string]: unknown;
  }

  export default class Provider {
    constructor(issuer: string, configuration?: Configuration);
    readonly issuer: string;
    proxy: boolean;
    AccessToken: typeof AccessToken;
    Grant: typeof Grant;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: Record<string, unknown>,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>;
    registerGrantType(
      name: string,
      handler: (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void>,
      parameters?: string | string[] | Set<string>,
      allowedDuplicateParameters?: string | string[] | Set<string>,
    ): void;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }

  class OIDCProviderError extends Error {
    constructor(description?: string, detail?: string);
    error: string;
    error_description?: string;
    status: number;
  }
  export const errors: {
    InvalidRequest: typeof OIDCProviderError;
    InvalidGrant: typeof OIDCProviderError;
    InvalidTarget: typeof OIDCProviderError;
    InvalidScope: typeof OIDCProviderError;
    InvalidClient: typeof OIDCProviderError;
    AccessDenied: typeof OIDCProviderError;
  };
}
