/**
 * What makes an apiary endpoint an OAuth 2.1 protected resource in mode oidc
 * (MCP authorization, RFC 9728, RFC 6750): its Protected Resource Metadata,
 * the `WWW-Authenticate` challenge that points a client at it, and the audit
 * record of a request that did not authenticate.
 *
 * Every endpoint (one port per server, plus the aggregate) is a resource of
 * its own: the SDK clients accept a metadata `resource` only when it has the
 * endpoint's origin and a prefix of its path (research note §2, §9.2), so a
 * single gateway-wide resource URL would be refused. The origin is the one
 * the client used (its Host, which loopbackRefusal has already held to
 * 127.0.0.1, localhost or [::1]; a port-forwarded endpoint is reached on
 * another port than it listens on).
 *
 * The `resource` is a URL, the Gateway's `audience` a name: the provider maps
 * one to the other when it mints a token for the resource the client asked
 * for (RFC 8707). In oidc-provider that is `getResourceServerInfo(ctx,
 * resource)` returning `{audience: 'apiary', ...}` for every apiary endpoint
 * URL; Keycloak, Entra and Auth0 have an audience mapper or an API identifier
 * for the same thing. One audience for all of a gateway's endpoints is what
 * lets one token serve each of them.
 */
import type { IncomingMessage } from 'node:http';
import type { AccessConfig, TokenRefusal } from '../api/gate.js';
import { recordOf, type AuditedRequest } from '../api/audit.js';

export const RESOURCE_METADATA_PATH = '/.well-known/oauth-protected-resource';

/** Why a request did not authenticate, for the challenge and the audit record (never the token). */
export interface Refused {
  /** no-token: nothing was sent; otherwise what was wrong with what was sent. */
  reason: 'no-token' | TokenRefusal['error'] | 'not-the-local-token';
  description?: string;
}

type Oidc = NonNullable<AccessConfig['oidc']>;

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0]!.replace(/\/$/, '');
}

/** The endpoint path a request belongs to: the legacy HTTP+SSE transport's (/sse, and its /messages) or Streamable HTTP's. */
function resourcePath(path: string): '/mcp' | '/sse' {
  return path === '/sse' || path === '/messages' || path === `${RESOURCE_METADATA_PATH}/sse` ? '/sse' : '/mcp';
}

function originOf(req: IncomingMessage): string {
  return `http://${req.headers.host ?? '127.0.0.1'}`;
}

/** Whether the request asks for Protected Resource Metadata: the root form or the path-suffixed one (RFC 9728 §3.1). */
export function asksForResourceMetadata(req: IncomingMessage): boolean {
  const path = pathOf(req);
  return path === RESOURCE_METADATA_PATH || path === `${RESOURCE_METADATA_PATH}/mcp` || path === `${RESOURCE_METADATA_PATH}/sse`;
}

/** What a client is told to ask for: the scopes tokens must carry, then those the Gateway adds for the provider's sake. */
function advertisedScopes(oidc: Oidc): string[] {
  return [...new Set([...(oidc.requiredScopes ?? []), ...(oidc.scopes ?? [])])];
}

/**
 * The metadata document (RFC 9728 §2) of the endpoint `req` reached.
 * `resource` is the identifier the well-known path was built from (§3.3: a
 * client must refuse anything else): the endpoint's URL for the suffixed
 * forms, the bare origin for the root form. `server`: its name, for people.
 */
export function resourceMetadata(req: IncomingMessage, oidc: Oidc, server: string): Record<string, unknown> {
  const path = pathOf(req);
  const scopes = advertisedScopes(oidc);
  return {
    resource: `${originOf(req)}${path === RESOURCE_METADATA_PATH ? '' : resourcePath(path)}`,
    authorization_servers: [oidc.issuer],
    bearer_methods_supported: ['header'],
    ...(scopes.length > 0 ? { scopes_supported: scopes } : {}),
    resource_name: server === '*' ? 'apiary (every server)' : `apiary: ${server}`,
  };
}

/**
 * 401 (no token, or a refused one) or 403 (insufficient_scope) with the
 * challenge RFC 6750 §3 and the MCP authorization spec ask for: where the
 * metadata is, the scopes wanted, and what was wrong with the token.
 */
export function bearerChallenge(req: IncomingMessage, oidc: Oidc | undefined, refused: Refused): { status: 401 | 403; headers: Record<string, string>; message: string } {
  const metadataUrl = `${originOf(req)}${RESOURCE_METADATA_PATH}${resourcePath(pathOf(req))}`;
  const params = [`resource_metadata="${metadataUrl}"`];
  const scopes = oidc === undefined ? [] : advertisedScopes(oidc);
  if (refused.reason === 'insufficient_scope' || refused.reason === 'invalid_token') params.push(`error="${refused.reason}"`);
  if (scopes.length > 0) params.push(`scope="${scopes.join(' ')}"`);
  if (refused.description !== undefined) params.push(`error_description="${quotable(refused.description)}"`);
  const headers = { 'WWW-Authenticate': `Bearer ${params.join(', ')}` };
  if (refused.reason === 'insufficient_scope') return { status: 403, headers, message: `the access token was refused: ${refused.description ?? 'insufficient scope'}` };
  if (refused.reason === 'no-token') {
    return { status: 401, headers, message: `this endpoint takes OAuth access tokens${oidc !== undefined ? ` from ${oidc.issuer}` : ''}: send Authorization: Bearer <token> (${metadataUrl} says where to get one)` };
  }
  return { status: 401, headers, message: `the access token was refused: ${refused.description ?? 'not valid'}` };
}

/** RFC 6750 §3: error_description is printable ASCII without `"` or `\`. */
function quotable(text: string): string {
  return text.replace(/"/g, "'").replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '?');
}

/**
 * The audit record of a request refused at the door: subject
 * unauthenticated, decision deny, and why in `rule` (no-token, or the
 * refusal's error and description, which never quote the token). The body
 * has not been read, so the method and name are the ones a 2026-07-28 client
 * sends as headers (Mcp-Method, Mcp-Name), else the HTTP request line.
 */
export function refusalRecord(req: IncomingMessage, server: string, refused: Refused, status: number, time: string, durationMs: number): ReturnType<typeof recordOf> {
  const method = single(req.headers['mcp-method']);
  const name = single(req.headers['mcp-name']);
  const request: AuditedRequest = method !== undefined ? { method, ...(name !== undefined ? { params: method === 'resources/read' ? { uri: name } : { name } } : {}) } : { method: `${req.method ?? 'GET'} ${pathOf(req)}` };
  const rule = refused.description !== undefined ? `${refused.reason}: ${refused.description}` : refused.reason;
  return recordOf(request, { time, subject: { kind: 'unauthenticated' }, server, decision: 'deny', rule, durationMs, outcome: 'unauthenticated', code: status });
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
