/**
 * A hosted server's OAuth login as the gateway uses it: one headers object
 * (the manifest's headers plus `Authorization: Bearer <access token>`) that
 * the proxy, its sessions and the probe all send, kept current in place:
 * the token is refreshed on a timer ahead of its expiry, so no request waits
 * for a refresh and calls in flight keep the token they were sent with.
 * Without tokens, or when the authorization server refuses a refresh, the
 * server needs a login (AuthorizationRequired); a new `apiary connect` is
 * noticed by the tokens file changing, and the server recovers by itself.
 */
import { SecretValue } from '../crypto/secret-value.js';
import { isApiaryError, messageOf } from '../errors.js';
import type { OAuthTokenStore } from '../state/oauth-tokens.js';
import type { Clock, Timer } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { Reauthorized } from './http-proxy.js';
import type { OAuthSettings } from './oauth-client.js';
import { fetchWithOwnSignal } from './own-signal-fetch.js';
import { OAuthSession } from './oauth-session.js';

/** How often the tokens file is looked at (a stat, no key): a connect or a disconnect is noticed by it changing. */
const WATCH_MS = 2_000;
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 60_000;

export interface AuthorizationProblem {
  reason: 'AuthorizationRequired' | 'AuthorizationServerUnreachable';
  message: string;
}

export interface OAuthRemoteOptions {
  name: string;
  store: OAuthTokenStore;
  settings: OAuthSettings;
  /** The manifest's own headers (spec.remote.headers), sent beside the token. */
  baseHeaders: Record<string, string>;
  /** The secret values in the URL and those headers (kept out of messages, with the token). */
  baseSecrets?: readonly string[];
  clock: Clock;
  logger: Logger;
  /** The token or the problem changed: the proxy takes the headers again, the reconciler the status. */
  onChange(): void;
}

export class OAuthRemote {
  /** Sent with every request to the server; changed in place, never replaced. */
  readonly headers: Record<string, string>;
  /** The manifest's secret values and the token in use, for redaction: a server's error that quotes one is shown without it. Changed in place. */
  readonly secrets: string[];
  readonly #opts: OAuthRemoteOptions;
  readonly #session: OAuthSession;
  #problem: AuthorizationProblem | undefined;
  #timer: Timer | undefined;
  #watchTimer: Timer | undefined;
  #stopped = false;
  #failures = 0;
  /** The tokens file's version last read or written here: another one is a connect or disconnect. */
  #knownVersion: number | undefined;
  /** The first token being had: a request sent before it waits for it. */
  #starting: Promise<void> = Promise.resolve();

  constructor(options: OAuthRemoteOptions) {
    this.#opts = options;
    this.headers = { ...options.baseHeaders };
    this.secrets = [...(options.baseSecrets ?? [])];
    this.#session = new OAuthSession({ name: options.name, store: options.store, settings: options.settings, now: () => options.clock.now() });
  }

  /** Why the server cannot be sent a valid token now, if so. */
  problem(): AuthorizationProblem | undefined {
    return this.#problem;
  }

  get refreshes(): number {
    return this.#session.refreshes;
  }

  /** The first token (or the problem); never throws. */
  async start(): Promise<void> {
    this.#starting = this.#renew();
    await this.#starting;
    this.#watchTimer = this.#opts.clock.setTimeout(() => void this.#watch(), WATCH_MS);
  }

  /**
   * The server answered 401 to `sent` (the Authorization value a request
   * carried): refresh once, unless another request already has. True when
   * there is a new token to send the request again with; otherwise why not.
   */
  async unauthorized(sent: string | null | undefined): Promise<Reauthorized> {
    await this.#starting;
    const current = this.headers['Authorization'];
    if (current !== undefined && current !== sent) return { retry: true };
    if (sent === undefined || sent === null || !sent.startsWith('Bearer ')) return { retry: false, message: this.#problem?.message ?? `MCPServer ${this.#opts.name} has no token; connect it with: apiary connect ${this.#opts.name}` };
    try {
      const token = await this.#session.afterUnauthorized(new SecretValue(sent.slice('Bearer '.length)));
      this.#set(`Bearer ${token.reveal()}`, undefined);
      const due = this.#session.refreshDueAt();
      if (due !== undefined) this.#after(Math.max(RETRY_MIN_MS, due - this.#opts.clock.now()), () => this.#renew());
      return `Bearer ${token.reveal()}` !== sent ? { retry: true } : { retry: false, message: 'the authorization server gave the same token again' };
    } catch (err) {
      await this.#failed(err);
      return { retry: false, message: this.#problem?.message ?? messageOf(err) };
    }
  }

  /**
   * fetch for the SDK sessions apiary holds with the server (their headers are
   * this object, read at each request): a 401 is answered by one refresh and
   * the request sent again, when its body can be sent twice.
   */
  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const res = await fetchWithOwnSignal(input, init);
    const body = init?.body;
    const replayable = body === undefined || body === null || typeof body === 'string';
    if (res.status !== 401 || !replayable) return res;
    const sent = new Headers(init?.headers).get('authorization');
    if (!(await this.unauthorized(sent)).retry) return res;
    await res.body?.cancel().catch(() => undefined);
    const headers = new Headers(init?.headers);
    headers.set('Authorization', this.headers['Authorization'] ?? '');
    return fetchWithOwnSignal(input, { ...init, headers });
  };

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#watchTimer?.cancel();
  }

  async #renew(): Promise<void> {
    if (this.#stopped) return;
    try {
      const token = await this.#session.accessToken();
      this.#knownVersion = await this.#opts.store.grantVersion(this.#opts.name);
      this.#set(`Bearer ${token.reveal()}`, undefined);
      const due = this.#session.refreshDueAt();
      // Still due: the refresh did not reach the server, and the token is used while valid; tried again with back-off.
      const overdue = due !== undefined && due <= this.#opts.clock.now();
      this.#failures = overdue ? this.#failures + 1 : 0;
      if (due !== undefined) this.#after(overdue ? this.#backoff() : due - this.#opts.clock.now(), () => this.#renew());
    } catch (err) {
      await this.#failed(err);
    }
  }

  async #failed(err: unknown): Promise<void> {
    const message = messageOf(err);
    if (isApiaryError(err, 'AuthorizationRequired')) {
      // Nothing to retry: the watch notices the next connect.
      this.#timer?.cancel();
      this.#knownVersion = await this.#opts.store.grantVersion(this.#opts.name);
      this.#set(undefined, { reason: 'AuthorizationRequired', message: `${message}; connect it with: apiary connect ${this.#opts.name}` });
      return;
    }
    // Unreachable, or a problem with the store: the token is kept while it is valid (accessToken did), retried with back-off.
    this.#failures++;
    this.#opts.logger.warn('hosted server token not refreshed', { server: this.#opts.name, reason: message });
    this.#set(undefined, { reason: 'AuthorizationServerUnreachable', message });
    this.#after(this.#backoff(), () => this.#renew());
  }

  #backoff(): number {
    return Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(Math.max(this.#failures - 1, 0), 6));
  }

  /** `apiary connect` or `disconnect` while apiary runs: the tokens file changed (appeared, went) under it. */
  async #watch(): Promise<void> {
    if (this.#stopped) return;
    const version = await this.#opts.store.grantVersion(this.#opts.name);
    if (version !== this.#knownVersion) {
      this.#knownVersion = version;
      this.#session.reload();
      await this.#renew();
    }
    if (!this.#stopped) this.#watchTimer = this.#opts.clock.setTimeout(() => void this.#watch(), WATCH_MS);
  }

  #after(ms: number, fn: () => Promise<void>): void {
    this.#timer?.cancel();
    if (this.#stopped) return;
    this.#timer = this.#opts.clock.setTimeout(() => void fn(), ms);
  }

  /** A new Authorization value (undefined: none) and problem; the owner hears of a change. */
  #set(authorization: string | undefined, problem: AuthorizationProblem | undefined): void {
    const before = `${this.headers['Authorization']}\0${this.#problem?.reason}\0${this.#problem?.message}`;
    // A refresh that failed while the token is still valid leaves the header as it was.
    if (authorization !== undefined) this.headers['Authorization'] = authorization;
    else if (problem?.reason === 'AuthorizationRequired') delete this.headers['Authorization'];
    this.secrets.splice(0, this.secrets.length, ...(this.#opts.baseSecrets ?? []), ...(this.headers['Authorization'] !== undefined ? [this.headers['Authorization'].slice('Bearer '.length)] : []));
    this.#problem = problem;
    if (`${this.headers['Authorization']}\0${this.#problem?.reason}\0${this.#problem?.message}` !== before) this.#opts.onChange();
  }
}
