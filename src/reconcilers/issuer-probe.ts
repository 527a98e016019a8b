/**
 * Whether an OpenID provider gives out its signing keys: OIDC discovery
 * (then RFC 8414's metadata), then the JWKS, each fetched once with a short
 * timeout. The Gateway's status says IssuerUnreachable with the answer; the
 * verifier fetches the keys itself when a token comes (this only tells).
 * Nothing secret is sent or quoted: the URLs are the manifest's (or the
 * provider's), credentials in one never shown.
 */
import { messageOf } from '../errors.js';
import { redactUrl } from '../util/redact-url.js';
import type { GatewayOidc } from './access-plan.js';

const PROBE_TIMEOUT_MS = 5_000;

export async function probeIssuer(oidc: GatewayOidc, signal: AbortSignal): Promise<string | undefined> {
  let jwksUrl = oidc.jwksURL;
  if (jwksUrl === undefined) {
    const found = await discover(oidc.issuer, signal);
    if (typeof found === 'string') return found;
    jwksUrl = found.jwksUrl;
  }
  const jwks = await getJson(jwksUrl, signal);
  if (typeof jwks === 'string') return jwks;
  const keys = (jwks as { keys?: unknown }).keys;
  return Array.isArray(keys) && keys.length > 0 ? undefined : `${redactUrl(jwksUrl)} holds no signing keys`;
}

/** The provider's jwks_uri, from its OpenID configuration or else its RFC 8414 metadata (the path after the well-known part). */
async function discover(issuer: string, signal: AbortSignal): Promise<{ jwksUrl: string } | string> {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/$/, '');
  const candidates = [`${url.origin}${path}/.well-known/openid-configuration`, `${url.origin}/.well-known/oauth-authorization-server${path}`];
  let why = '';
  for (const candidate of candidates) {
    const doc = await getJson(candidate, signal);
    if (typeof doc === 'string') {
      why ||= doc;
      continue;
    }
    const { issuer: named, jwks_uri: jwksUri } = doc as { issuer?: unknown; jwks_uri?: unknown };
    if (named !== issuer) return `${redactUrl(candidate)} names issuer ${JSON.stringify(typeof named === 'string' ? redactUrl(named) : named)}, not ${redactUrl(issuer)}: tokens from it would be refused`;
    if (typeof jwksUri !== 'string') return `${redactUrl(candidate)} names no jwks_uri`;
    return { jwksUrl: jwksUri };
  }
  return why;
}

/** The JSON at `url`, or why there is none. */
async function getJson(url: string, signal: AbortSignal): Promise<unknown> {
  // fetch refuses such a URL with an error that quotes it whole.
  if (URL.canParse(url) && new URL(url).username !== '') return `${redactUrl(url)} carries credentials, which apiary does not send`;
  try {
    const response = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(PROBE_TIMEOUT_MS)]), headers: { accept: 'application/json' }, redirect: 'error' });
    if (!response.ok) return `${redactUrl(url)} answered HTTP ${response.status}`;
    const body: unknown = await response.json();
    return typeof body === 'object' && body !== null ? body : `${redactUrl(url)} did not answer a JSON object`;
  } catch (err) {
    // fetch says only "fetch failed"; the cause says why (ECONNREFUSED, a timeout).
    const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
    const detail = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : undefined;
    return `cannot reach ${redactUrl(url)}: ${messageOf(err)}${detail !== undefined ? ` (${detail})` : ''}`;
  }
}
