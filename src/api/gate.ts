/**
 * The seam between apiary's MCP endpoints and what step 17 puts in front of
 * every call (issue 26): who is calling (a Caller, established once per
 * request or 2025 session), and the parts the gateway is given rather than
 * builds (the token verifier, the rate limiter, the audit sink, telemetry).
 * Pure types: the endpoints (src/mcp) ask, the implementations live where
 * their dependencies may be imported (jose in src/mcp, OpenTelemetry loaded
 * lazily), and the controller plugs them in from the Gateway manifest.
 */
import type { AccessPolicySet, Subject } from './access.js';
import type { AuditOutcome, AuditSink, AuditSubject } from './audit.js';
import type { AuthMode } from './manifests.js';

/** Who is calling, as the endpoint established it. */
export interface Caller {
  /** What policies are asked about. */
  subject: Subject;
  /** What audit records say. */
  audit: AuditSubject;
  /**
   * One stable text per caller (`token:local`, `user:alice`, `none`): rate
   * limits are kept per key, and a 2025 session belongs to the key that
   * opened it (another caller sending its Mcp-Session-Id gets 404).
   */
  key: string;
  /** The OAuth scopes its token carried (oidc mode). */
  scopes?: readonly string[];
}

/** What a verified OAuth access token says. */
export interface VerifiedToken {
  user: string;
  groups: readonly string[];
  scopes: readonly string[];
  /** Seconds since the epoch. */
  exp?: number;
}

/**
 * Why a token was refused, in RFC 6750's words: `invalid_token` (expired,
 * forged, another issuer or audience; 401) or `insufficient_scope` (403).
 * `description` goes to the client: it never quotes the token.
 */
export interface TokenRefusal {
  error: 'invalid_token' | 'insufficient_scope';
  description: string;
}

/** Checks access tokens against the OpenID provider (src/mcp holds the jose one). */
export interface TokenVerifier {
  verify(token: string): Promise<VerifiedToken | TokenRefusal>;
}

/** A rate limit a call ran into: which bucket, and when to try again. */
export interface RateLimited {
  limit: 'subject' | 'server' | 'tool';
  retryAfterMs: number;
}

/** Token buckets per caller, server and tool; `take` spends one token from each bucket that applies, or none. */
export interface RateLimiter {
  take(callerKey: string, server: string, tool: string | undefined): RateLimited | undefined;
}

/** What a request's span and metrics need to know when it starts. */
export interface RequestTelemetry {
  method: string;
  server: string;
  /** The tool or prompt name, the resource URI. */
  name?: string;
  requestId?: string | number;
  protocolVersion?: string;
  sessionId?: string;
  /** The request's `params._meta`: a `traceparent` there is the span's parent. */
  meta?: Readonly<Record<string, unknown>>;
}

export interface RequestSpan {
  /** `_meta` entries to send upstream with the request (`traceparent`, `tracestate`), continuing this span's trace. */
  upstreamMeta(): Record<string, string>;
  end(outcome: AuditOutcome, error?: { code?: number; message?: string }): void;
}

/** Traces and metrics: the no-op below unless the Gateway asks for telemetry. */
export interface Telemetry {
  startRequest(request: RequestTelemetry): RequestSpan;
  /** A session opened (+1) or closed (-1) at a server's endpoint. */
  sessions(server: string, delta: number): void;
  /** A server's process was restarted, or rolled out. */
  lifecycle(server: string, event: 'restart' | 'rollout'): void;
}

const NO_SPAN: RequestSpan = { upstreamMeta: () => ({}), end: () => undefined };
export const NO_TELEMETRY: Telemetry = { startRequest: () => NO_SPAN, sessions: () => undefined, lifecycle: () => undefined };

/**
 * Everything the endpoints enforce, as one value the controller replaces
 * whole when the Gateway or a policy changes (requests in flight keep the
 * one they started with).
 */
export interface AccessConfig {
  mode: AuthMode;
  /** The state directory's bearer token: required in mode token; in mode oidc accepted as `token: local` too. */
  token?: string;
  /** Mode oidc: the provider, as the Gateway names it. */
  /** `scopes`: what clients are told to ask for besides `requiredScopes` (advertised, not checked). */
  oidc?: { issuer: string; audience: string; requiredScopes?: readonly string[]; scopes?: readonly string[] };
  /** Mode oidc: checks the tokens. */
  verifier?: TokenVerifier;
  policies: AccessPolicySet;
  limiter?: RateLimiter;
  audit?: AuditSink;
  telemetry: Telemetry;
}
