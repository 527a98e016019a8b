/**
 * What every endpoint of one gateway asks before serving a request: who is
 * calling (authenticate), and (step 17) may they, how often, and what is
 * recorded of it. One per Gateway, shared by every endpoint it serves, so a
 * changed Gateway manifest or policy takes effect everywhere at once: the
 * controller replaces the AccessConfig whole (`configure`).
 *
 * Without a Gateway manifest the config is the one apiary always had: mode
 * token with the state directory's token (or none for `up --no-auth`), no
 * policies, no audit, no telemetry.
 */
import type { IncomingMessage } from 'node:http';
import { compilePolicies } from '../api/access.js';
import { NO_TELEMETRY, type AccessConfig, type Caller, type VerifiedToken } from '../api/gate.js';
import { bearerToken, sameToken } from '../util/tokens.js';
import { asksForResourceMetadata, bearerChallenge, refusalRecord, resourceMetadata, type Refused } from './resource-server.js';

export const LOCAL_TOKEN_CALLER: Caller = { subject: { groups: [], authenticated: false, token: 'local' }, audit: { kind: 'token' }, key: 'token:local' };
export const ANONYMOUS_CALLER: Caller = { subject: { groups: [], authenticated: false }, audit: { kind: 'none' }, key: 'none' };

/** The answer to a request that did not authenticate: its HTTP status, headers (WWW-Authenticate) and message. */
export interface Challenge {
  status: 401 | 403;
  headers: Record<string, string>;
  message: string;
}

export type Authentication = { caller: Caller } | { challenge: Challenge };

export const TOKEN_REQUIRED =
  "apiary's MCP endpoints need its token: send Authorization: Bearer <token> (apiary client config prints a configuration with it; apiary up --no-auth turns this off)";

/** The config apiary has without a Gateway manifest: its token, or nothing (`up --no-auth`). */
export function defaultAccess(token: string | undefined): AccessConfig {
  return { mode: token !== undefined ? 'token' : 'none', ...(token !== undefined ? { token } : {}), policies: compilePolicies([], token !== undefined ? 'token' : 'none'), telemetry: NO_TELEMETRY };
}

const callers = new WeakMap<IncomingMessage, Caller>();

/** The caller an endpoint established for this request (ANONYMOUS_CALLER for one that was never authenticated). */
export function callerOf(req: IncomingMessage): Caller {
  return callers.get(req) ?? ANONYMOUS_CALLER;
}

export class Gatekeeper {
  #config: AccessConfig;

  constructor(config: AccessConfig) {
    this.#config = config;
  }

  get config(): AccessConfig {
    return this.#config;
  }

  configure(config: AccessConfig): void {
    this.#config = config;
  }

  /** Whether answers are for one principal only (cache hints say private). */
  get authRequired(): boolean {
    return this.#config.mode !== 'none';
  }

  /**
   * Who sent `req`; remembered for callerOf(req). `server`: the endpoint's
   * server (`*` for the aggregate), as the audit record of a refusal names it.
   * The endpoint's resource URL, for the challenge, is the request's own
   * origin and path (resource-server.ts says why).
   */
  async authenticate(req: IncomingMessage, server = '*'): Promise<Authentication> {
    const config = this.#config;
    const time = new Date().toISOString();
    const started = performance.now();
    const caller = await this.#callerFor(config, req);
    if ('refused' in caller) {
      const challenge = caller.refused.challenge;
      config.audit?.append(refusalRecord(req, server, caller.refused, challenge.status, time, performance.now() - started));
      return { challenge };
    }
    callers.set(req, caller.caller);
    return caller;
  }

  /**
   * Protected Resource Metadata for a request that asks for it, in mode oidc
   * (undefined otherwise: the endpoint answers as it always has). Served
   * without authentication: it is how a client finds out where to get a token.
   */
  resourceMetadata(req: IncomingMessage, server = '*'): Record<string, unknown> | undefined {
    const config = this.#config;
    if (config.mode !== 'oidc' || config.oidc === undefined || req.method !== 'GET' || !asksForResourceMetadata(req)) return undefined;
    return resourceMetadata(req, config.oidc, server);
  }

  async #callerFor(config: AccessConfig, req: IncomingMessage): Promise<{ caller: Caller } | { refused: Refused & { challenge: Challenge } }> {
    if (config.mode === 'none') return { caller: ANONYMOUS_CALLER };
    const given = bearerToken(req);
    // Checked first in oidc mode too: the local token never reaches the verifier (nor its cache). What it may do is a policy's (`token: local`).
    if (given !== undefined && config.token !== undefined && sameToken(given, config.token)) return { caller: LOCAL_TOKEN_CALLER };
    if (config.mode === 'token') {
      const challenge: Challenge = { status: 401, headers: { 'WWW-Authenticate': 'Bearer realm="apiary"' }, message: TOKEN_REQUIRED };
      return { refused: { reason: given === undefined ? 'no-token' : 'not-the-local-token', challenge } };
    }
    /*
     * A request without a token is recorded too, although every OAuth client's
     * first request is one (that 401 is how it discovers the metadata): it is
     * one record per client connect, since the client then keeps its token,
     * and a caller probing the endpoints without credentials is exactly what
     * the log should show. Only a token's refusal says more (its reason).
     */
    if (given === undefined) return this.#refused(req, config, { reason: 'no-token' });
    if (config.verifier === undefined) return this.#refused(req, config, { reason: 'invalid_token', description: 'apiary has no token verifier configured' });
    const verified = await config.verifier.verify(given);
    if ('error' in verified) return this.#refused(req, config, { reason: verified.error, description: verified.description });
    return { caller: userCaller(verified) };
  }

  #refused(req: IncomingMessage, config: AccessConfig, refused: Refused): { refused: Refused & { challenge: Challenge } } {
    return { refused: { ...refused, challenge: bearerChallenge(req, config.oidc, refused) } };
  }
}

/** The caller an OpenID token names: a user, their groups, and the scopes the token carried. */
export function userCaller(token: VerifiedToken): Caller {
  const groups = [...token.groups];
  return { subject: { user: token.user, groups, authenticated: true }, audit: { kind: 'user', user: token.user, groups }, key: `user:${token.user}`, scopes: token.scopes };
}
