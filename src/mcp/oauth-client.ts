/**
 * apiary as the OAuth client of a hosted MCP server (the MCP authorization
 * spec, 2025-11-25 and 2026-07-28): discovery from the server's 401 (RFC
 * 9728, then RFC 8414 / OpenID discovery), a client (pre-registered, or one
 * registered dynamically, RFC 7591, and kept per issuer), the
 * authorization-code flow with PKCE S256, `resource` (RFC 8707), `state` and
 * the `iss` check (RFC 9207) through a loopback redirect, and revocation
 * (RFC 7009). The protocol steps are the MCP SDK v2 client's own functions
 * (discoverOAuthServerInfo, registerClient, startAuthorization,
 * exchangeAuthorization, checkResourceAllowed); apiary adds the order, the
 * per-issuer keeping and the errors a person can act on.
 *
 * Client ID Metadata Documents: a CIMD client_id is an https URL the
 * authorization server fetches. apiary running on a laptop has no such URL,
 * so it never offers one; where the server also offers dynamic registration
 * apiary registers, and where it offers only CIMD the error says to
 * pre-register a client and set spec.remote.auth.clientId.
 */
import { randomBytes } from 'node:crypto';
import {
  buildDiscoveryUrls,
  checkResourceAllowed,
  discoverOAuthServerInfo,
  exchangeAuthorization,
  extractWWWAuthenticateParams,
  registerClient,
  startAuthorization,
  type AuthorizationServerMetadata,
  type OAuthClientInformationMixed,
  type OAuthTokens,
} from '@modelcontextprotocol/client';
import { SecretValue } from '../crypto/secret-value.js';
import { ApiaryError, messageOf } from '../errors.js';
import type { OAuthClientRecord, OAuthGrant, OAuthTokenStore } from '../state/oauth-tokens.js';
import { listenForRedirect } from './oauth-loopback.js';

/** What a manifest's spec.remote.auth says, its clientSecretRef resolved. */
export interface OAuthSettings {
  scopes?: readonly string[];
  clientId?: string;
  clientSecret?: SecretValue;
  /**
   * The hosted server's URL the tokens are sent to (spec.remote.url, resolved; the controller's): tokens asked for
   * another resource are never sent there.
   */
  serverUrl?: string;
}

export interface Discovery {
  /** The resource to ask tokens for: the PRM's `resource`, verbatim (the SDK's rule). */
  resource: string;
  issuer: string;
  metadata: AuthorizationServerMetadata;
  /** The scope to ask for: the manifest's, or the server's challenge, or the PRM's scopes_supported. */
  scope?: string;
}

type FetchLike = typeof fetch;

/** From the hosted server's own answer (its 401 challenge) to the authorization server's metadata. */
export async function discoverAuthorization(serverUrl: string, settings: OAuthSettings = {}, fetchFn: FetchLike = fetch): Promise<Discovery> {
  const where = hostOf(serverUrl);
  const challenge = await probe(serverUrl, fetchFn);
  const info = await discoverOAuthServerInfo(serverUrl, { resourceMetadataUrl: challenge.resourceMetadataUrl, fetchFn }).catch((err: unknown) => {
    throw new ApiaryError('AuthorizationFailed', `cannot discover how ${where} authorizes: ${messageOf(err)}`, { cause: err });
  });
  const prm = info.resourceMetadata;
  if (prm !== undefined && !checkResourceAllowed({ requestedResource: serverUrl, configuredResource: prm.resource })) {
    throw new ApiaryError('AuthorizationFailed', `${where}'s protected resource metadata names the resource ${prm.resource}, which is not its URL: apiary will not ask tokens for another server`);
  }
  const metadata = info.authorizationServerMetadata;
  if (metadata === undefined) throw new ApiaryError('AuthorizationFailed', `${where}'s authorization server ${info.authorizationServerUrl} publishes no metadata (RFC 8414 or OpenID discovery)`);
  if (!(metadata.code_challenge_methods_supported ?? []).includes('S256')) {
    throw new ApiaryError('AuthorizationFailed', `the authorization server ${metadata.issuer} does not offer PKCE with S256 (code_challenge_methods_supported), which the MCP authorization spec requires`);
  }
  return { resource: prm?.resource ?? serverUrl, issuer: metadata.issuer, metadata, scope: scopeFor(settings, challenge.scope, prm?.scopes_supported, metadata.scopes_supported) };
}

/** The hosted server asked without a token: its 401 challenge names the metadata (or nothing: the well-known fallbacks). */
async function probe(serverUrl: string, fetchFn: FetchLike, timeoutMs = 15_000): Promise<{ unauthorized?: true; resourceMetadataUrl?: URL; scope?: string }> {
  let res: Response;
  try {
    res = await fetchFn(serverUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'apiary', version: '1' } } }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new ApiaryError('AuthorizationFailed', `cannot reach ${hostOf(serverUrl)}: ${messageOf(err)}`, { cause: err });
  }
  await res.body?.cancel().catch(() => undefined);
  if (res.status !== 401) return {};
  const params = extractWWWAuthenticateParams(res);
  return { unauthorized: true, resourceMetadataUrl: params.resourceMetadataUrl, scope: params.scope };
}

/**
 * Whether a hosted server wants an OAuth login, as the MCP authorization
 * spec has it say so: asked without a token, a 401 whose challenge names its
 * protected resource metadata (RFC 9728). Unreachable or anything else: no.
 */
export async function asksForOAuthLogin(serverUrl: string, fetchFn: FetchLike = fetch, timeoutMs = 5_000): Promise<boolean> {
  return probe(serverUrl, fetchFn, timeoutMs).then(
    (challenge) => challenge.unauthorized === true && challenge.resourceMetadataUrl !== undefined,
    () => false,
  );
}

function scopeFor(settings: OAuthSettings, challenged: string | undefined, prmScopes: string[] | undefined, asScopes: string[] | undefined): string | undefined {
  const asked = settings.scopes !== undefined && settings.scopes.length > 0 ? settings.scopes.join(' ') : (challenged ?? prmScopes?.join(' '));
  const words = new Set((asked ?? '').split(/\s+/).filter((s) => s !== ''));
  // A refresh token is what keeps a server connected across expiry: ask for it where the server names the scope.
  if ((asScopes ?? []).includes('offline_access')) words.add('offline_access');
  return words.size === 0 ? undefined : [...words].join(' ');
}

/** The client to use with this issuer: the manifest's, the one registered before, or a new registration. */
export async function clientFor(name: string, discovery: Discovery, settings: OAuthSettings, store: OAuthTokenStore, redirectUri: string, fetchFn: FetchLike = fetch): Promise<OAuthClientInformationMixed> {
  if (settings.clientId !== undefined) return preRegistered(settings);
  // Kept even when its redirect port was taken this time: RFC 8252 §7.3 has the server allow any loopback port.
  const kept = await store.client(discovery.issuer);
  if (kept !== undefined) return informationOf(kept);
  const { metadata } = discovery;
  if (metadata.registration_endpoint === undefined) {
    const cimd = metadata.client_id_metadata_document_supported === true ? ' (it takes only Client ID Metadata Documents, which need an https URL apiary does not have)' : '';
    throw new ApiaryError('AuthorizationFailed', `the authorization server ${discovery.issuer} offers no dynamic client registration${cimd}`, {
      hints: [`Register a client there (redirect URI http://127.0.0.1/callback, any port) and set spec.remote.auth.clientId (and clientSecretRef if it has a secret) in MCPServer ${name}.`],
    });
  }
  let registered;
  try {
    registered = await registerClient(discovery.issuer, {
      metadata,
      clientMetadata: {
        client_name: 'apiary',
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        application_type: 'native',
      },
      scope: discovery.scope,
      fetchFn,
    });
  } catch (err) {
    throw new ApiaryError('AuthorizationFailed', `the authorization server ${discovery.issuer} refused to register apiary as a client: ${messageOf(err)}`, { cause: err });
  }
  const record: OAuthClientRecord = {
    issuer: discovery.issuer,
    clientId: registered.client_id,
    clientSecret: registered.client_secret === undefined ? undefined : new SecretValue(registered.client_secret),
    redirectUri,
    tokenEndpointAuthMethod: registered.token_endpoint_auth_method,
  };
  await store.saveClient(record);
  return informationOf(record);
}

function preRegistered(settings: OAuthSettings): OAuthClientInformationMixed {
  return { client_id: settings.clientId!, ...(settings.clientSecret === undefined ? {} : { client_secret: settings.clientSecret.reveal() }) };
}

function informationOf(record: OAuthClientRecord): OAuthClientInformationMixed {
  return {
    client_id: record.clientId,
    ...(record.clientSecret === undefined ? {} : { client_secret: record.clientSecret.reveal() }),
    ...(record.tokenEndpointAuthMethod === undefined ? {} : { token_endpoint_auth_method: record.tokenEndpointAuthMethod }),
  };
}

/** The client information a later refresh or revocation uses for a grant (never another issuer's client). */
export async function clientOfGrant(grant: OAuthGrant, settings: OAuthSettings, store: OAuthTokenStore): Promise<OAuthClientInformationMixed | undefined> {
  if (settings.clientId !== undefined) return settings.clientId === grant.clientId ? preRegistered(settings) : undefined;
  const kept = await store.client(grant.issuer);
  return kept !== undefined && kept.clientId === grant.clientId ? informationOf(kept) : undefined;
}

export interface ConnectOptions {
  /** The MCPServer's name (the tokens' file, messages). */
  name: string;
  serverUrl: string;
  settings: OAuthSettings;
  store: OAuthTokenStore;
  /** Called with the authorization URL once the redirect listener is up: print it, open a browser. */
  open(authorizationUrl: string): void | Promise<void>;
  timeoutMs?: number;
  /** Cancels the wait for the browser (the console stopping, the login started again). */
  signal?: AbortSignal;
  now?: () => number;
  fetchFn?: FetchLike;
}

export interface Connected {
  issuer: string;
  scope?: string;
  expiresAt?: number;
  refreshable: boolean;
}

/** The whole login: discovery, client, browser, code exchange; the tokens end sealed in the store. */
export async function connect(options: ConnectOptions): Promise<Connected> {
  const { name, settings, store } = options;
  const fetchFn = options.fetchFn ?? fetch;
  const discovery = await discoverAuthorization(options.serverUrl, settings, fetchFn);
  const kept = settings.clientId === undefined ? await store.client(discovery.issuer) : undefined;
  const state = randomBytes(24).toString('base64url');
  const redirect = await listenForRedirect({ state, preferredPort: portOf(kept?.redirectUri), timeoutMs: options.timeoutMs ?? 300_000, label: name, ...(options.signal !== undefined ? { signal: options.signal } : {}) });
  try {
    const client = await clientFor(name, discovery, settings, store, redirect.redirectUri, fetchFn);
    const { authorizationUrl, codeVerifier } = await startAuthorization(discovery.issuer, {
      metadata: discovery.metadata,
      clientInformation: client,
      redirectUrl: redirect.redirectUri,
      scope: discovery.scope,
      state,
      resource: discovery.resource,
    });
    await options.open(authorizationUrl.href);
    const callback = await redirect.result;
    const askedAt = (options.now ?? Date.now)();
    const tokens = await exchange(discovery, client, callback, codeVerifier, redirect.redirectUri, fetchFn);
    const grant = grantOf(discovery, client.client_id, tokens, askedAt);
    await store.saveGrant(name, grant);
    return { issuer: grant.issuer, scope: grant.scope, expiresAt: grant.expiresAt, refreshable: grant.refreshToken !== undefined };
  } finally {
    redirect.close();
  }
}

async function exchange(discovery: Discovery, client: OAuthClientInformationMixed, callback: URLSearchParams, codeVerifier: string, redirectUri: string, fetchFn: FetchLike): Promise<OAuthTokens> {
  const code = callback.get('code');
  if (code === null) throw new ApiaryError('AuthorizationFailed', 'the login came back without an authorization code');
  try {
    return await exchangeAuthorization(discovery.issuer, {
      metadata: discovery.metadata,
      clientInformation: client,
      authorizationCode: code,
      // RFC 9207: a response from another issuer (a mix-up attack) is refused before its code is redeemed.
      iss: callback.get('iss') ?? undefined,
      codeVerifier,
      redirectUri,
      resource: discovery.resource,
      fetchFn,
    });
  } catch (err) {
    throw new ApiaryError('AuthorizationFailed', `the authorization server ${discovery.issuer} did not give tokens for the login: ${messageOf(err)}`, { cause: err });
  }
}

/**
 * A token's `exp` is whole seconds from when the server issued it: counted
 * from when apiary asked, less this, its expiry is never later than the
 * server's.
 */
const EXPIRY_MARGIN_MS = 1_000;

/** Tokens as kept: secrets wrapped, expiry as a time. `now`: when they were asked for (before the request). */
export function grantOf(discovery: Pick<Discovery, 'issuer' | 'resource'>, clientId: string, tokens: OAuthTokens, now: number, previous?: OAuthGrant): OAuthGrant {
  const refresh = tokens.refresh_token ?? previous?.refreshToken?.reveal();
  return {
    issuer: discovery.issuer,
    resource: discovery.resource,
    clientId,
    accessToken: new SecretValue(tokens.access_token),
    refreshToken: refresh === undefined ? undefined : new SecretValue(refresh),
    expiresAt: tokens.expires_in === undefined ? undefined : now + Math.max(0, tokens.expires_in * 1000 - EXPIRY_MARGIN_MS),
    issuedAt: now,
    scope: tokens.scope ?? previous?.scope,
    tokenType: tokens.token_type,
  };
}

export type Revocation = 'revoked' | 'not-offered' | 'no-client';

/** RFC 7009: the refresh token (which ends the grant at most servers), then the access token, where the server offers it. */
export async function revoke(grant: OAuthGrant, settings: OAuthSettings, store: OAuthTokenStore, fetchFn: FetchLike = fetch): Promise<Revocation> {
  const endpoint = await revocationEndpoint(grant.issuer, fetchFn);
  if (endpoint === undefined) return 'not-offered';
  const client = await clientOfGrant(grant, settings, store);
  if (client === undefined) return 'no-client';
  const tokens: [SecretValue, string][] = [...(grant.refreshToken === undefined ? [] : [[grant.refreshToken, 'refresh_token'] as [SecretValue, string]]), [grant.accessToken, 'access_token']];
  for (const [token, hint] of tokens) {
    const body = new URLSearchParams({ token: token.reveal(), token_type_hint: hint });
    const headers: Record<string, string> = { 'Content-Type': 'application/x-www-form-urlencoded' };
    if (client.client_secret !== undefined) headers['Authorization'] = `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`).toString('base64')}`;
    else body.set('client_id', client.client_id);
    const res = await fetchFn(endpoint, { method: 'POST', headers, body, signal: AbortSignal.timeout(15_000) }).catch((err: unknown) => {
      throw new ApiaryError('AuthorizationFailed', `cannot reach ${endpoint} to revoke the tokens: ${messageOf(err)}`, { cause: err });
    });
    await res.body?.cancel().catch(() => undefined);
    // 200 means revoked or already unknown (RFC 7009 §2.2); anything else is the server's refusal.
    if (!res.ok) throw new ApiaryError('AuthorizationFailed', `${endpoint} refused to revoke the ${hint.replace('_', ' ')} (HTTP ${res.status})`);
  }
  return 'revoked';
}

/**
 * RFC 8414's revocation_endpoint, read from the issuer's own metadata (the
 * SDK's parsed metadata drops fields it does not use), in its discovery order.
 */
async function revocationEndpoint(issuer: string, fetchFn: FetchLike): Promise<string | undefined> {
  for (const { url } of buildDiscoveryUrls(issuer)) {
    let res: Response;
    try {
      res = await fetchFn(url, { headers: { Accept: 'application/json' }, signal: AbortSignal.timeout(15_000) });
    } catch (err) {
      throw new ApiaryError('AuthorizationFailed', `cannot reach the authorization server ${issuer} to revoke the tokens: ${messageOf(err)}`, { cause: err });
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      continue;
    }
    const metadata = (await res.json().catch(() => undefined)) as { issuer?: unknown; revocation_endpoint?: unknown } | undefined;
    // The same issuer echoed (RFC 8414 §3.3), or this is not its metadata.
    if (metadata?.issuer !== issuer) continue;
    return typeof metadata.revocation_endpoint === 'string' ? metadata.revocation_endpoint : undefined;
  }
  return undefined;
}

function portOf(uri: string | undefined): number | undefined {
  if (uri === undefined) return undefined;
  const port = Number(new URL(uri).port);
  return Number.isInteger(port) && port > 0 ? port : undefined;
}

function hostOf(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return 'the hosted server';
  }
}
