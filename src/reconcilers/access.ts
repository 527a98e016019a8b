/**
 * The Gateway and AccessPolicy reconciler (issue 26): every pass plans the
 * access settings from the directory (access-plan.ts), builds the live parts
 * (the token verifier, the rate limiter, the audit sink, the telemetry) and
 * hands the backend's gateway the AccessConfig whole, whichever backend runs
 * the servers. A part is rebuilt only when what it is built from changed: a
 * verifier is kept while spec.auth.oidc is the same (its JWKS cache is the
 * point), the limiter while the limits are (its buckets are).
 *
 * One pass covers every access resource, so both kinds share this
 * reconciler, one pass at a time. It is also a runnable, added after the
 * manifest watcher: its start applies the directory's settings before the
 * first reconcile creates a server's endpoint.
 */
import type { AuditSink } from '../api/audit.js';
import { NO_TELEMETRY, type AccessConfig, type RateLimiter, type Telemetry, type TokenVerifier } from '../api/gate.js';
import { withRevision } from '../api/applied-revision.js';
import { specHash } from '../api/generation.js';
import { parseResourceKey, resourceKey, type ResourceKey } from '../api/names.js';
import type { Host, ReconcileResult, Reconciler, Runnable } from '../api/runnable.js';
import { setCondition, type AccessPolicyStatus, type Condition, type ConditionStatus, type GatewayStatus } from '../api/status.js';
import { messageOf } from '../errors.js';
import type { DesiredEntry, DesiredState } from '../manifests/desired-state.js';
import type { MCPServerResource } from '../manifests/resource.js';
import type { Gateway } from '../mcp/gateway.js';
import type { RecordBook } from '../state/record-book.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { planAccess, type AccessPlan, type AuditSettings, type GatewayOidc, type GatewayRateLimits, type GatewayTelemetry, type PlannedStatus, type RateLimits } from './access-plan.js';
import { probeIssuer } from './issuer-probe.js';

export interface ClosableVerifier extends TokenVerifier {
  close(): void;
}

export interface OpenedTelemetry extends Telemetry {
  /** Flushes what is buffered and stops the exporters (a Prometheus listener frees its port). */
  close(): Promise<void>;
  /** Where Prometheus scrapes, when the spec asks for it. */
  metricsUrl?: string;
}

/**
 * The parts written beside this one, handed in by the controller (the real
 * ones) or a test (its own): this reconciler decides when each is built and
 * what from, never how.
 */
export interface AccessParts {
  /** `onUnavailable`: the verifier could not have the provider's keys (why, no token in it): the Gateway's status says IssuerUnreachable. */
  verifier(oidc: GatewayOidc, onUnavailable: (problem: string) => void): ClosableVerifier;
  limiter(gateway: GatewayRateLimits | undefined, perServer: ReadonlyMap<string, RateLimits>): RateLimiter | undefined;
  /** Opened only when spec.telemetry is set (the real one imports the OpenTelemetry SDK then). */
  telemetry(spec: GatewayTelemetry): Promise<OpenedTelemetry>;
  /** Whether the provider gives out its keys: undefined if it does, else why not. Default: OIDC discovery, then the JWKS, fetched once. */
  probe?(oidc: GatewayOidc, signal: AbortSignal): Promise<string | undefined>;
}

/** The audit log's owner (a runnable): the sink for these settings, the log opened, reopened or closed to match. Throws when it cannot open. */
export interface AuditOwner {
  use(settings: AuditSettings | undefined): Promise<AuditSink | undefined>;
}

/** The telemetry's owner (a runnable): NO_TELEMETRY without a spec. Throws when the exporters cannot be opened. */
export interface TelemetryOwner {
  use(spec: GatewayTelemetry | undefined): Promise<{ telemetry: Telemetry; metricsUrl?: string }>;
}

export interface AccessControlOptions {
  desired: DesiredState;
  records: RecordBook;
  clock: Clock;
  logger: Logger;
  /** The running backend's gateway (local processes or a cluster). */
  gateway(): Gateway;
  /** False under `up --no-auth`. */
  auth: boolean;
  parts: Pick<AccessParts, 'verifier' | 'limiter' | 'probe'>;
  audit: AuditOwner;
  telemetry: TelemetryOwner;
}

/** How long an unreachable issuer waits before it is asked again (the endpoints answer 401 meanwhile, and the verifier retries on its own). */
export const ISSUER_RETRY_MS = 30_000;

/** What the live parts said when they were built: reported in the Gateway's status. */
interface Live {
  auditError?: string;
  telemetryError?: string;
  metricsUrl?: string;
  audit: boolean;
}

interface IssuerCheck {
  key: string;
  issuer: string;
  startedAt: number;
  /** null: the provider answered; a string: why not; undefined: still asking. */
  result?: string | null;
  abort: AbortController;
}

/**
 * What a pass read. The desired state makes new entries whenever it re-reads
 * a file and keeps them otherwise, so the same objects mean the same manifests.
 */
interface PassInputs {
  entries: readonly DesiredEntry[];
  servers: readonly MCPServerResource[];
  news: number;
}

function sameInputs(a: PassInputs, b: PassInputs): boolean {
  return a.news === b.news && sameItems(a.entries, b.entries) && sameItems(a.servers, b.servers);
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}

/** What is known of the provider: still asking, answering, or not (and when to ask again). */
interface IssuerState {
  checking: boolean;
  error?: string;
  retryInMs?: number;
}

const GATEWAY_KEY = resourceKey('Gateway', 'default');

export class AccessControl implements Runnable {
  readonly name = 'the access settings';
  readonly #opts: AccessControlOptions;
  #host: Host | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  /** What the endpoints apply now; kept while a manifest does not validate. */
  #applied: { live: Live; summary: string } | undefined;
  #verifier: { key: string; verifier: ClosableVerifier } | undefined;
  #limiter: { key: string; limiter: RateLimiter | undefined } | undefined;
  #issuer: IssuerCheck | undefined;
  #overrideWarned: string | undefined;
  /** Counts what the parts told since (the provider's answer, the verifier's trouble): news makes the next pass. */
  #news = 0;
  /** The inputs of the last pass that left nothing pending. */
  #steady: PassInputs | undefined;

  constructor(options: AccessControlOptions) {
    this.#opts = options;
  }

  async start(host: Host): Promise<void> {
    this.#host = host;
    const reconciler: Reconciler = { reconcile: () => this.sync() };
    host.register('Gateway', reconciler, { workers: 1 });
    host.register('AccessPolicy', reconciler, { workers: 1 });
    await this.sync();
  }

  /** The verifier stays until the endpoints have stopped: the controller calls close() then. */
  async stop(): Promise<void> {
    this.#issuer?.abort.abort();
  }

  close(): void {
    this.#issuer?.abort.abort();
    this.#verifier?.verifier.close();
    this.#verifier = undefined;
  }

  /** One pass over every access resource; passes never overlap (two queues feed this one reconciler). */
  sync(): Promise<ReconcileResult> {
    const run = this.#chain.then(() => this.#pass());
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #pass(): Promise<ReconcileResult> {
    const { desired, auth } = this.#opts;
    // 1. Desired state: every declared Gateway and AccessPolicy (valid or not), and the servers' own limits.
    const entries = desired.keys().flatMap((key) => (isAccessKey(key) ? [desired.get(key)!] : []));
    const servers = desired.resources().filter((r): r is MCPServerResource => r.kind === 'MCPServer');
    // Every key of both kinds, and every server's, queues a pass: one that would read what the last read is not made.
    const inputs: PassInputs = { entries, servers, news: this.#news };
    if (this.#steady !== undefined && sameInputs(this.#steady, inputs)) return {};
    const plan = planAccess({ entries, servers, auth });
    this.#warnOverride(plan.overridden);
    // 2. The live parts and the config, unless an invalid manifest holds what is applied.
    const live = plan.hold && this.#applied !== undefined ? this.#applied.live : await this.#apply(plan);
    // 3. Whether the provider answers (asked in the background; its answer queues the Gateway again).
    const issuer = this.#checkIssuer(plan.settings.oidc);
    // 4. Status of each access resource; records of removed ones go.
    await this.#writeStatuses(plan, entries, live, issuer);
    await this.#prune(entries);
    const retry = [issuer?.retryInMs, live.telemetryError !== undefined || live.auditError !== undefined ? ISSUER_RETRY_MS : undefined].filter((n): n is number => n !== undefined);
    // Settled (nothing to ask again later, no answer awaited): the next pass over the same inputs would change nothing.
    this.#steady = retry.length === 0 && issuer?.checking !== true ? inputs : undefined;
    return retry.length > 0 ? { requeueAfterMs: Math.min(...retry) } : {};
  }

  async #apply(plan: AccessPlan): Promise<Live> {
    const { settings } = plan;
    const live: Live = { audit: false };
    let audit: AuditSink | undefined;
    try {
      audit = await this.#opts.audit.use(settings.audit);
      live.audit = audit !== undefined;
    } catch (err) {
      live.auditError = messageOf(err);
    }
    let telemetry: Telemetry = NO_TELEMETRY;
    try {
      const opened = await this.#opts.telemetry.use(settings.telemetry);
      telemetry = opened.telemetry;
      if (opened.metricsUrl !== undefined) live.metricsUrl = opened.metricsUrl;
    } catch (err) {
      live.telemetryError = messageOf(err);
    }
    const replaced = this.#verifierFor(settings.oidc);
    const limiter = this.#limiterFor(settings.rateLimits, settings.perServer);
    const verifier = this.#verifier?.verifier;
    const oidc = settings.oidc;
    const config: Omit<AccessConfig, 'token'> = {
      mode: settings.mode,
      ...(oidc !== undefined
        ? { oidc: { issuer: oidc.issuer, audience: oidc.audience, ...(oidc.requiredScopes !== undefined ? { requiredScopes: oidc.requiredScopes } : {}), ...(oidc.scopes !== undefined ? { scopes: oidc.scopes } : {}) } }
        : {}),
      ...(verifier !== undefined ? { verifier } : {}),
      policies: settings.policies,
      ...(limiter !== undefined ? { limiter } : {}),
      ...(audit !== undefined ? { audit } : {}),
      telemetry,
    };
    this.#opts.gateway().configure(config);
    // Requests in flight finish with the verifier they started with; it is closed once the new one is in place.
    replaced?.close();
    const summary = `${settings.mode}|${settings.policies.policies}|${plan.hold}|${live.audit}|${telemetry !== NO_TELEMETRY}|${limiter !== undefined}`;
    if (summary !== this.#applied?.summary) {
      this.#opts.logger.info(plan.hold ? 'access settings held: every call is denied until the access manifests validate' : 'access settings applied', {
        mode: settings.mode,
        policies: settings.policies.policies,
        audit: live.audit,
        telemetry: telemetry !== NO_TELEMETRY,
        rateLimits: limiter !== undefined,
      });
    }
    this.#applied = { live, summary };
    return live;
  }

  /** The verifier for this provider: kept while spec.auth.oidc is unchanged; the one it replaces is returned, to be closed. */
  #verifierFor(oidc: GatewayOidc | undefined): ClosableVerifier | undefined {
    const key = oidc === undefined ? undefined : JSON.stringify(oidc);
    if (key === this.#verifier?.key) return undefined;
    const replaced = this.#verifier?.verifier;
    this.#verifier = oidc === undefined || key === undefined ? undefined : { key, verifier: this.#opts.parts.verifier(oidc, (problem) => this.#unavailable(key, problem)) };
    return replaced;
  }

  /** The verifier could not fetch the keys when a token came: as a failed probe (asked again after ISSUER_RETRY_MS, when the Gateway is reconciled). */
  #unavailable(key: string, problem: string): void {
    const check = this.#issuer;
    if (check?.key !== key || this.#verifier?.key !== key || check.result === problem) return;
    check.result = problem;
    check.startedAt = this.#opts.clock.now();
    this.#opts.logger.warn('the OpenID provider did not give its keys', { issuer: check.issuer, problem });
    this.#news++;
    this.#host?.enqueue([GATEWAY_KEY]);
  }

  /** The limiter: kept (with its buckets) while the Gateway's and the servers' limits are unchanged; none when nothing is limited. */
  #limiterFor(gateway: GatewayRateLimits | undefined, perServer: ReadonlyMap<string, RateLimits>): RateLimiter | undefined {
    const key = JSON.stringify([gateway ?? null, [...perServer]]);
    if (key !== this.#limiter?.key) {
      const limited = gateway !== undefined || perServer.size > 0;
      this.#limiter = { key, limiter: limited ? this.#opts.parts.limiter(gateway, perServer) : undefined };
    }
    return this.#limiter.limiter;
  }

  #warnOverride(gatewayAt: string | undefined): void {
    if (gatewayAt !== undefined && gatewayAt !== this.#overrideWarned) {
      this.#opts.logger.warn("apiary up --no-auth: the Gateway's auth mode and the AccessPolicies are not applied (every caller may use everything)", { gateway: gatewayAt });
    }
    this.#overrideWarned = gatewayAt;
  }

  /**
   * Asks the provider for its keys once per spec.auth.oidc, and again every
   * ISSUER_RETRY_MS while it does not answer. Never waited for: a pass (and
   * apiary's start) does not hang on an issuer that does not answer.
   */
  #checkIssuer(oidc: GatewayOidc | undefined): IssuerState | undefined {
    if (oidc === undefined) {
      this.#issuer?.abort.abort();
      this.#issuer = undefined;
      return undefined;
    }
    const key = JSON.stringify(oidc);
    const now = this.#opts.clock.now();
    const current = this.#issuer;
    const due = current !== undefined && typeof current.result === 'string' && now - current.startedAt >= ISSUER_RETRY_MS;
    if (current?.key !== key || due) this.#startCheck(oidc, key, now);
    const check = this.#issuer!;
    if (check.result === undefined) return { checking: true };
    if (check.result === null) return { checking: false };
    return { checking: false, error: check.result, retryInMs: Math.max(1, check.startedAt + ISSUER_RETRY_MS - now) };
  }

  #startCheck(oidc: GatewayOidc, key: string, now: number): void {
    this.#issuer?.abort.abort();
    const check: IssuerCheck = { key, issuer: oidc.issuer, startedAt: now, abort: new AbortController(), ...(this.#issuer?.key === key ? { result: this.#issuer.result } : {}) };
    this.#issuer = check;
    const probe = this.#opts.parts.probe ?? probeIssuer;
    void probe(oidc, check.abort.signal)
      .catch((err: unknown) => messageOf(err))
      .then((result) => {
        if (this.#issuer !== check || check.abort.signal.aborted) return;
        check.result = result ?? null;
        this.#news++;
        this.#host?.enqueue([GATEWAY_KEY]);
      });
  }

  async #writeStatuses(plan: AccessPlan, entries: readonly DesiredEntry[], live: Live, issuer: IssuerState | undefined): Promise<void> {
    const { records, clock } = this.#opts;
    const now = new Date(clock.now()).toISOString();
    for (const planned of plan.statuses) {
      const entry = entries.find((e) => e.key === planned.key)!;
      const { kind, name } = parseResourceKey(planned.key);
      const generation = this.#observe(entry);
      const previous = records.get(kind, name)?.status as GatewayStatus | AccessPolicyStatus | undefined;
      const ready = kind === 'Gateway' && planned.valid ? gatewayReadiness(planned, live, issuer) : { status: planned.ready ? 'True' : 'False', reason: planned.reason, message: planned.message } as const;
      const conditions: Condition[] = setCondition(previous?.conditions ?? [], { type: 'Ready', ...ready, observedGeneration: generation }, now);
      const before = previous?.conditions.find((c) => c.type === 'Ready');
      if (before?.reason !== ready.reason && ready.reason !== 'Applied' && ready.reason !== 'CheckingIssuer') records.event(kind, name, ready.status === 'True' ? 'Normal' : 'Warning', ready.reason, ready.message);
      const phase = !planned.valid ? 'Invalid' : ready.status === 'True' ? 'Ready' : kind === 'Gateway' ? 'Degraded' : 'Unused';
      const common = { observedGeneration: generation, conditions, ...(ready.status !== 'True' || ready.reason !== 'Applied' ? { message: ready.message } : {}) };
      if (kind === 'Gateway') {
        const mode = plan.hold && this.#applied !== undefined ? (previous as GatewayStatus | undefined)?.mode ?? plan.settings.mode : plan.settings.mode;
        const was = (previous as Partial<GatewayStatus> | undefined)?.mode ?? (this.#opts.auth ? 'token' : 'none');
        if (planned.valid && was !== mode) records.event(kind, name, 'Normal', 'AuthModeChanged', `auth mode ${was} -> ${mode}`);
        const status: GatewayStatus = { ...common, phase: phase as GatewayStatus['phase'], mode, audit: live.audit, policies: plan.settings.policies.policies, ...(live.metricsUrl !== undefined ? { metricsUrl: live.metricsUrl } : {}) };
        await records.setStatus(kind, name, withRevision(status, entry.revision));
      } else {
        const status: AccessPolicyStatus = { ...common, phase: phase as AccessPolicyStatus['phase'], rules: planned.rules ?? 0 };
        await records.setStatus(kind, name, withRevision(status, entry.revision));
      }
    }
  }

  /** The resource's generation (a record made for it the first time). */
  #observe(entry: DesiredEntry): number {
    const { records } = this.#opts;
    const { kind, name } = parseResourceKey(entry.key);
    if (entry.resource === undefined) {
      records.ensure(kind, name);
      return records.generation(kind, name);
    }
    const { labels, annotations } = entry.resource.manifest.metadata;
    return records.observeSpec(kind, name, specHash(entry.resource.manifest), { ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) });
  }

  async #prune(entries: readonly DesiredEntry[]): Promise<void> {
    const { records, logger } = this.#opts;
    const declared = new Set(entries.map((e) => e.key));
    for (const key of records.keys()) {
      if (!isAccessKey(key) || declared.has(key)) continue;
      const { kind, name } = parseResourceKey(key);
      if (kind === 'Gateway') logger.info('Gateway removed: the endpoints take the bearer token again, without audit log', { mode: this.#opts.auth ? 'token' : 'none' });
      await records.remove(kind, name);
    }
  }
}

/** The Gateway is ready when what it asks for is in force: its log open, its exporters running, its provider answering. */
function gatewayReadiness(planned: PlannedStatus, live: Live, issuer: IssuerState | undefined): { status: ConditionStatus; reason: string; message: string } {
  if (!planned.ready) return { status: 'False', reason: planned.reason, message: planned.message };
  if (live.auditError !== undefined) return { status: 'False', reason: 'AuditFailed', message: `the audit log cannot be opened: ${live.auditError}` };
  if (live.telemetryError !== undefined) return { status: 'False', reason: 'TelemetryFailed', message: `telemetry cannot be started: ${live.telemetryError}` };
  if (issuer?.error !== undefined) return { status: 'False', reason: 'IssuerUnreachable', message: `${issuer.error}; OAuth tokens are refused (401) until it answers, asked again every ${ISSUER_RETRY_MS / 1000}s` };
  if (issuer?.checking === true) return { status: 'Unknown', reason: 'CheckingIssuer', message: 'asking the OpenID provider for its keys' };
  return { status: 'True', reason: planned.reason, message: planned.message };
}

/** A Gateway's or an AccessPolicy's key: what this reconciler reads. */
export function isAccessKey(key: ResourceKey): boolean {
  return key.startsWith('Gateway/') || key.startsWith('AccessPolicy/');
}
