/**
 * The access token a hosted server's requests carry, kept fresh: refreshed
 * ahead of expiry (a third of its lifetime before, at most a minute), once
 * more when the server answers 401 to it, and every refresh wanted at the
 * same time is one request to the authorization server. A refresh the
 * server refuses (revoked, expired refresh token) is AuthorizationRequired
 * with the server's reason; one that cannot reach it keeps the token while
 * it is valid, so calls in flight do not fail because of a refresh.
 */
import { checkResourceAllowed, discoverAuthorizationServerMetadata, OAuthError, refreshAuthorization, type AuthorizationServerMetadata } from '@modelcontextprotocol/client';
import type { SecretValue } from '../crypto/secret-value.js';
import { ApiaryError, isApiaryError, messageOf } from '../errors.js';
import type { OAuthGrant, OAuthTokenStore } from '../state/oauth-tokens.js';
import { clientOfGrant, grantOf, type OAuthSettings } from './oauth-client.js';

const MAX_REFRESH_AHEAD_MS = 60_000;
/** How long one request to the authorization server may take: a server that stops answering is an error, not a hang. */
const AUTHORIZATION_SERVER_TIMEOUT_MS = 15_000;

const boundedFetch: typeof fetch = (input, init) => fetch(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(AUTHORIZATION_SERVER_TIMEOUT_MS) });

export interface OAuthSessionOptions {
  name: string;
  store: OAuthTokenStore;
  settings: OAuthSettings;
  now?: () => number;
  fetchFn?: typeof fetch;
}

export class OAuthSession {
  readonly #options: OAuthSessionOptions;
  readonly #now: () => number;
  #grant: OAuthGrant | undefined;
  #refreshing: Promise<OAuthGrant> | undefined;
  #metadata: AuthorizationServerMetadata | undefined;
  /** Refreshes that reached the authorization server and gave a token. */
  refreshes = 0;

  constructor(options: OAuthSessionOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** A token to send now; refreshed first when it is near its end. */
  async accessToken(): Promise<SecretValue> {
    const grant = await this.#current();
    if (!this.#dueForRefresh(grant)) return grant.accessToken;
    try {
      return (await this.#refresh(grant)).accessToken;
    } catch (err) {
      // Unreachable for now, the token still valid: use it, and try again on the next request.
      if (isApiaryError(err, 'AuthorizationFailed') && !this.#expired(grant)) return grant.accessToken;
      throw err;
    }
  }

  /** The server refused `used` with 401: refresh once (unless another request already has) and give the new token. */
  async afterUnauthorized(used: SecretValue): Promise<SecretValue> {
    const grant = await this.#current();
    if (!grant.accessToken.equals(used)) return grant.accessToken;
    return (await this.#refresh(grant)).accessToken;
  }

  /** When the token in use is due for a refresh (undefined: it does not expire, or none is loaded). */
  refreshDueAt(): number | undefined {
    const grant = this.#grant;
    if (grant?.expiresAt === undefined) return undefined;
    return grant.expiresAt - Math.min(MAX_REFRESH_AHEAD_MS, (grant.expiresAt - grant.issuedAt) / 3);
  }

  /** Forget what is in memory (after a connect or disconnect wrote the store). */
  reload(): void {
    this.#grant = undefined;
  }

  async #current(): Promise<OAuthGrant> {
    this.#grant ??= await this.#options.store.grant(this.#options.name);
    if (this.#grant === undefined) throw this.#required('it has no tokens yet');
    // The tokens are kept by the server's name, the URL they go to is the manifest's now: an edited (or pulled) URL must not get them.
    const url = this.#options.settings.serverUrl;
    if (url !== undefined && !checkResourceAllowed({ requestedResource: url, configuredResource: this.#grant.resource })) {
      throw this.#required('its tokens were asked for another URL than spec.remote.url names now, and are never sent to another server');
    }
    return this.#grant;
  }

  #dueForRefresh(grant: OAuthGrant): boolean {
    return grant.expiresAt !== undefined && this.#now() >= grant.expiresAt - Math.min(MAX_REFRESH_AHEAD_MS, (grant.expiresAt - grant.issuedAt) / 3);
  }

  #expired(grant: OAuthGrant): boolean {
    return grant.expiresAt !== undefined && this.#now() >= grant.expiresAt;
  }

  #refresh(grant: OAuthGrant): Promise<OAuthGrant> {
    this.#refreshing ??= this.#refreshOnce(grant).finally(() => (this.#refreshing = undefined));
    return this.#refreshing;
  }

  async #refreshOnce(grant: OAuthGrant): Promise<OAuthGrant> {
    const { name, store, settings } = this.#options;
    if (grant.refreshToken === undefined) throw this.#required('its access token expired and the authorization server gave no refresh token');
    const client = await clientOfGrant(grant, settings, store);
    if (client === undefined) throw this.#required(`the client its tokens were issued to (at ${grant.issuer}) is no longer configured`);
    const metadata = await this.#metadataOf(grant.issuer);
    const askedAt = this.#now();
    let tokens;
    try {
      tokens = await refreshAuthorization(grant.issuer, { metadata, clientInformation: client, refreshToken: grant.refreshToken.reveal(), resource: grant.resource, fetchFn: this.#options.fetchFn ?? boundedFetch });
    } catch (err) {
      if (err instanceof OAuthError) throw this.#required(`the authorization server refused to refresh its tokens: ${err.code}${err.message === '' || err.message === err.code ? '' : ` (${err.message.slice(0, 300)})`}`);
      throw new ApiaryError('AuthorizationFailed', `MCPServer ${name}: cannot refresh its token at ${grant.issuer}: ${messageOf(err)}`, { cause: err });
    }
    const fresh = grantOf(grant, grant.clientId, tokens, askedAt, grant);
    // Disconnected meanwhile: the tokens are not written back.
    if ((await store.grantVersion(name)) === undefined) throw this.#required('it was disconnected');
    await store.saveGrant(name, fresh);
    this.#grant = fresh;
    this.refreshes++;
    return fresh;
  }

  async #metadataOf(issuer: string): Promise<AuthorizationServerMetadata | undefined> {
    if (this.#metadata?.issuer === issuer) return this.#metadata;
    try {
      this.#metadata = await discoverAuthorizationServerMetadata(issuer, { fetchFn: this.#options.fetchFn ?? boundedFetch });
    } catch (err) {
      throw new ApiaryError('AuthorizationFailed', `MCPServer ${this.#options.name}: cannot reach its authorization server ${issuer}: ${messageOf(err)}`, { cause: err });
    }
    return this.#metadata;
  }

  #required(why: string): ApiaryError {
    const { name } = this.#options;
    return new ApiaryError('AuthorizationRequired', `MCPServer ${name} needs a login: ${why}`, { hints: [`Connect it: apiary connect ${name}`] });
  }
}

/**
 * fetch with the session's token on every request, retried once with a
 * refreshed token when the server answers 401 (a body that can be sent
 * twice only: a string, bytes, or none). The client's own Authorization
 * never goes through: the hosted server sees apiary's token only.
 */
export function bearerFetch(session: OAuthSession, fetchFn: typeof fetch = fetch): typeof fetch {
  const send = (input: Parameters<typeof fetch>[0], init: RequestInit | undefined, token: SecretValue): Promise<Response> => {
    const headers = new Headers(init?.headers);
    headers.set('Authorization', `Bearer ${token.reveal()}`);
    return fetchFn(input, { ...init, headers });
  };
  return async (input, init) => {
    const token = await session.accessToken();
    const res = await send(input, init, token);
    const body = init?.body;
    const replayable = body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array || body instanceof URLSearchParams;
    if (res.status !== 401 || !replayable) return res;
    await res.body?.cancel().catch(() => undefined);
    return send(input, init, await session.afterUnauthorized(token));
  };
}
