/**
 * apiary as an OAuth 2.1 resource server (issue 26, item 2): access tokens
 * from the Gateway's OpenID provider, checked with jose against the
 * provider's published keys. What is checked: the signature (an allow-list
 * of asymmetric algorithms, so never `none` and never an HMAC keyed by a
 * public key), `iss` exactly, `aud` containing the Gateway's audience (RFC
 * 8707: a token minted for another resource is refused), `exp` (required,
 * RFC 9068) and `nbf` with a small clock skew.
 *
 * Verifying an ES256 token costs 70-100 µs of CPU (research note §1); the
 * budget for everything added per call is 0.2 ms, so a verified token is
 * remembered (by its SHA-256, never the token itself) until it expires.
 *
 * The provider being away is never a crash: a failed fetch of its discovery
 * document or its keys (refused, timed out, or undici's UND_ERR_SOCKET on a
 * keep-alive socket the restarted provider closed) refuses the token now
 * (401) and is tried again on the next request.
 */
import { createHash } from 'node:crypto';
import { createRemoteJWKSet, customFetch, errors, jwtVerify, type JWTPayload, type RemoteJWKSetOptions } from 'jose';
import type { TokenRefusal, TokenVerifier, VerifiedToken } from '../api/gate.js';
import { isTrustedKeyUrl } from '../api/manifests.js';

export interface TokenVerifierOptions {
  /** Exactly as tokens carry it in `iss`. */
  issuer: string;
  /** What tokens must carry in `aud`. */
  audience: string;
  /** The provider's keys; found by discovery when absent. */
  jwksURL?: string;
  /** The claim naming the caller (default `sub`). */
  usernameClaim?: string;
  /** The claim listing its groups, a list of strings (default `groups`). */
  groupsClaim?: string;
  /** Scopes every token must carry; a token without them is refused as insufficient_scope (403). */
  requiredScopes?: readonly string[];
  /** How far `exp` and `nbf` may be off (default 30 s). */
  clockToleranceSec?: number;
  /**
   * How long after fetching the keys an unknown key id may not fetch them
   * again (jose's default, 30 s, keeps a flood of forged key ids from
   * hammering the provider; tests set 0 to see a rotation at once).
   */
  cooldownMs?: number;
  fetch?: typeof fetch;
  /** Told why the provider's keys could not be had (no token in it): the controller's log and the Gateway's status. */
  onUnavailable?: (problem: string) => void;
}

/** Asymmetric JWS algorithms only: a symmetric one would let a public key be used as an HMAC secret. */
export const TOKEN_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA', 'Ed25519'] as const;

/** Verified tokens remembered at most; past it the oldest goes first. */
export const VERIFIED_CACHE_SIZE = 1024;

interface Remembered {
  token: VerifiedToken;
  /** When it stops being good, in ms since the epoch. */
  expiresAt: number;
}

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier & { close(): void } {
  const keys = lazyKeys(options, options.fetch ?? fetch);
  const cache = new Map<string, Remembered>();
  const required = options.requiredScopes ?? [];
  const verifyOptions = {
    issuer: options.issuer,
    audience: options.audience,
    clockTolerance: options.clockToleranceSec ?? 30,
    algorithms: [...TOKEN_ALGORITHMS],
    requiredClaims: ['exp'],
  };

  async function verified(token: string): Promise<VerifiedToken | TokenRefusal> {
    const digest = createHash('sha256').update(token).digest('base64url');
    const known = cache.get(digest);
    if (known !== undefined && known.expiresAt > Date.now()) return known.token;
    if (known !== undefined) cache.delete(digest);
    let payload: JWTPayload;
    try {
      payload = (await jwtVerify(token, await keys.get(), verifyOptions)).payload;
    } catch (err) {
      return refusal(err, keys, options.onUnavailable);
    }
    const result = claimsOf(payload, options);
    if ('error' in result) return result;
    remember(cache, digest, { token: result, expiresAt: (result.exp ?? 0) * 1000 });
    return result;
  }

  return {
    async verify(token) {
      const result = await verified(token);
      if ('error' in result) return result;
      const missing = required.filter((s) => !result.scopes.includes(s));
      return missing.length === 0 ? result : { error: 'insufficient_scope', description: `the token lacks the scope${missing.length > 1 ? 's' : ''} ${missing.join(' ')}` };
    },
    close() {
      cache.clear();
    },
  };
}

function remember(cache: Map<string, Remembered>, digest: string, entry: Remembered): void {
  if (cache.size >= VERIFIED_CACHE_SIZE) {
    const now = Date.now();
    for (const [k, v] of cache) if (v.expiresAt <= now) cache.delete(k);
    // A Map iterates in insertion order: the first key is the oldest.
    if (cache.size >= VERIFIED_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  }
  cache.set(digest, entry);
}

/** The caller a verified payload names, or why it names none. */
function claimsOf(payload: JWTPayload, options: TokenVerifierOptions): VerifiedToken | TokenRefusal {
  const usernameClaim = options.usernameClaim ?? 'sub';
  const user = payload[usernameClaim];
  if (typeof user !== 'string' || user === '') return { error: 'invalid_token', description: `the token has no '${usernameClaim}' claim naming the caller` };
  const groups = payload[options.groupsClaim ?? 'groups'];
  return {
    user,
    // Anything but a list of strings names no group: a policy for a group must not match by accident of a claim's shape.
    groups: Array.isArray(groups) && groups.every((g) => typeof g === 'string') ? groups : [],
    scopes: scopesOf(payload),
    ...(typeof payload.exp === 'number' ? { exp: payload.exp } : {}),
  };
}

/** `scope` (RFC 9068: space-separated), or `scp` (a list, as some providers send). */
function scopesOf(payload: JWTPayload): string[] {
  const scope = payload['scope'];
  if (typeof scope === 'string') return scope.split(' ').filter((s) => s !== '');
  const scp = payload['scp'];
  return Array.isArray(scp) ? scp.filter((s): s is string => typeof s === 'string') : [];
}

/** What the client is told, in words that never quote the token. */
function refusal(err: unknown, keys: Keys, onUnavailable: ((problem: string) => void) | undefined): TokenRefusal {
  const invalid = (description: string): TokenRefusal => ({ error: 'invalid_token', description });
  if (err instanceof errors.JWTExpired) return invalid('the token has expired');
  if (err instanceof errors.JWTClaimValidationFailed) return invalid(err.claim === 'nbf' ? 'the token is not valid yet' : `the token's '${err.claim}' claim is not what apiary accepts`);
  if (err instanceof errors.JWSSignatureVerificationFailed) return invalid("the token's signature does not verify with the provider's keys");
  if (err instanceof errors.JOSEAlgNotAllowed) return invalid('the token is signed with an algorithm apiary does not accept');
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) return invalid("no key of the provider matches the token's key id");
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid || err instanceof errors.JOSENotSupported) return invalid('the token is not a signed JWT apiary can read');
  // The provider's discovery document or keys could not be had: the next request tries again.
  keys.forget();
  const problem = `the OpenID provider's keys could not be fetched (${problemOf(err)})`;
  onUnavailable?.(problem);
  return invalid(`${problem}; try again`);
}

/** An error's class and code, never its message (a URL's query could be in one). */
function problemOf(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  const code = (err as { code?: unknown } | undefined)?.code ?? cause?.code;
  if (err instanceof UnavailableError) return err.message;
  return typeof code === 'string' ? code : err instanceof Error ? err.name : 'unknown error';
}

class UnavailableError extends Error {}

interface Keys {
  get(): Promise<ReturnType<typeof createRemoteJWKSet>>;
  /** A failed discovery is forgotten, so the next request looks again. */
  forget(): void;
}

/** The key set, found once (jwksURL, else discovery) and kept; jose refetches it when a key id is unknown or it is 10 min old. */
function lazyKeys(options: TokenVerifierOptions, fetchImpl: typeof fetch): Keys {
  let found: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
  const jwksOptions: RemoteJWKSetOptions = { cooldownDuration: options.cooldownMs ?? 30_000, [customFetch]: fetchImpl };
  return {
    get() {
      found ??= (options.jwksURL !== undefined ? Promise.resolve(options.jwksURL) : discoverJwksUri(options.issuer, fetchImpl)).then((url) => createRemoteJWKSet(new URL(url), jwksOptions));
      return found;
    },
    forget() {
      found = undefined;
    },
  };
}

/**
 * The provider's `jwks_uri`: OpenID Connect Discovery first (every OpenID
 * provider serves it; oidc-provider 8 serves only that), then RFC 8414's
 * metadata for a plain OAuth server. The document must name the issuer
 * exactly (RFC 8414 §3.3), and its keys must come over https or loopback.
 */
export async function discoverJwksUri(issuer: string, fetchImpl: typeof fetch = fetch): Promise<string> {
  const base = issuer.replace(/\/$/, '');
  const url = new URL(base);
  const path = url.pathname === '/' ? '' : url.pathname;
  const candidates = [`${base}/.well-known/openid-configuration`, `${url.origin}/.well-known/oauth-authorization-server${path}`];
  const tried: string[] = [];
  for (const candidate of candidates) {
    const res = await fetchImpl(candidate, { headers: { accept: 'application/json' }, redirect: 'manual', signal: AbortSignal.timeout(5000) });
    if (res.status !== 200) {
      await res.body?.cancel();
      tried.push(`${new URL(candidate).pathname} answered ${res.status}`);
      continue;
    }
    const doc = (await res.json().catch(() => undefined)) as { issuer?: unknown; jwks_uri?: unknown } | undefined;
    if (doc === undefined || (doc.issuer !== issuer && doc.issuer !== base)) throw new UnavailableError(`${new URL(candidate).pathname} names another issuer`);
    if (typeof doc.jwks_uri !== 'string' || !isTrustedKeyUrl(doc.jwks_uri)) throw new UnavailableError(`${new URL(candidate).pathname} has no https jwks_uri`);
    return doc.jwks_uri;
  }
  throw new UnavailableError(`no discovery document: ${tried.join(', ')}`);
}
