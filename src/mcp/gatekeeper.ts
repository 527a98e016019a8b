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

export const LOCAL_TOKEN_CALLER: Caller = { subject: { groups: [], authenticated: false, token: 'local' }, audit: { kind: 'token' }, key: 'token:local' };
export const ANONYMOUS_CALLER: Caller = { subject: { groups: [], authenticated: false }, audit: { kind: 'none' }, key: 'none' };

/** The caller a verified OAuth token names: one key per user, so a 2025 session and a rate limit are that user's. */
export function userCaller(token: VerifiedToken): Caller {
  return { subject: { user: token.user, groups: token.groups, authenticated: true }, audit: { kind: 'user', user: token.user, groups: [...token.groups] }, key: `user:${token.user}`, scopes: token.scopes };
}

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
   * Who sent `req`; remembered for callerOf(req). `resource`: the endpoint's
   * URL, as Protected Resource Metadata and the challenge name it.
   */
  async authenticate(req: IncomingMessage): Promise<Authentication> {
    const config = this.#config;
    const caller = await this.#callerFor(config, req);
    if ('challenge' in caller) return caller;
    callers.set(req, caller.caller);
    return caller;
  }

  async #callerFor(config: AccessConfig, req: IncomingMessage): Promise<Authentication> {
    if (config.mode === 'none') return { caller: ANONYMOUS_CALLER };
    const given = bearerToken(req);
    if (given !== undefined && config.token !== undefined && sameToken(given, config.token)) return { caller: LOCAL_TOKEN_CALLER };
    if (config.mode === 'token') return { challenge: { status: 401, headers: { 'WWW-Authenticate': 'Bearer realm="apiary"' }, message: TOKEN_REQUIRED } };
    // The least that lets an endpoint tell two people apart; the oidc part (PRM, challenges, caching) is built beside this.
    if (given !== undefined && config.verifier !== undefined) {
      const verified = await config.verifier.verify(given);
      if ('user' in verified) return { caller: userCaller(verified) };
      return { challenge: { status: verified.error === 'insufficient_scope' ? 403 : 401, headers: { 'WWW-Authenticate': `Bearer realm="apiary", error="${verified.error}"` }, message: verified.description } };
    }
    return { challenge: { status: 401, headers: { 'WWW-Authenticate': 'Bearer realm="apiary"' }, message: 'this endpoint takes OAuth access tokens; none was valid' } };
  }
}
