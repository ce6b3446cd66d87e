/**
 * The slice of oidc-provider v9's API the dev IdP uses, typed structurally.
 *
 * oidc-provider ships no type declarations (they live in @types/oidc-provider, which is not a
 * dependency), so idp.ts loads the module through `loadOidcProvider()` and narrows it to these
 * interfaces instead of declaring an ambient module for the whole project.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The Koa context fields the page renderers touch. */
export interface OidcKoaContext {
  body: unknown;
  type: string;
  oidc: { client?: { clientId: string; clientName?: string } };
}

export interface OidcDeviceCode {
  clientId: string;
  accountId?: string;
  grantId?: string;
  error?: string;
  errorDescription?: string;
  scope?: string;
  resource?: string | string[];
  authTime?: number;
  amr?: string[];
  params: Record<string, unknown>;
  readonly isExpired: boolean;
  save(): Promise<string>;
}

export interface OidcGrant {
  accountId: string;
  clientId: string;
  addOIDCScope(scope: string): void;
  addResourceScope(resource: string, scope: string): void;
  save(): Promise<string>;
}

export interface OidcInteraction {
  uid: string;
  params: Record<string, unknown>;
  prompt: { name: string; reasons: string[]; details: Record<string, unknown> };
  session?: { accountId?: string };
}

export interface OidcClientModel {
  clientId: string;
  clientName?: string;
}

export interface OidcProvider {
  readonly issuer: string;
  proxy: boolean;
  /** Koa's request listener. */
  callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  readonly DeviceCode: {
    findByUserCode(userCode: string, options?: { ignoreExpiration?: boolean }): Promise<OidcDeviceCode | undefined>;
  };
  readonly Grant: {
    new (init: { accountId: string; clientId: string }): OidcGrant;
    find(id: string): Promise<OidcGrant | undefined>;
  };
  readonly Client: { find(id: string): Promise<OidcClientModel | undefined> };
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<OidcInteraction>;
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
}

export interface OidcProviderModule {
  Provider: new (issuer: string, configuration: Record<string, unknown>) => OidcProvider;
  errors: {
    InvalidTarget: new (description?: string) => Error;
    SessionNotFound: new (description?: string) => Error;
  };
}

/** Loads oidc-provider; the specifier is a variable so tsc does not look for its (absent) types. */
export async function loadOidcProvider(): Promise<OidcProviderModule> {
  const specifier: string = 'oidc-provider';
  return (await import(specifier)) as OidcProviderModule;
}
