/**
 * The GitRepository reconciler, in the shape of Flux's source-controller: it
 * runs in the ordinary work queue and owns no timer. A pass fetches when a
 * fetch is due (its interval, or the back-off after a failure, has passed),
 * when the GitRepository's spec changed since the last fetch, or when an
 * `apiary reconcile source` request is pending; otherwise it asks to be
 * requeued when the next fetch is due. A fetching pass runs its sub-steps as
 * a list over one in-memory outcome (read the spec, fetch, check out and
 * validate, switch `current`) and writes the status once, in a final
 * summarize step; a new revision is then announced to the wiring, which
 * applies it (as Flux's source-controller publishes an artifact for others
 * to apply). A revision that does not validate is never applied:
 * the status says why (file:line:col and the sha) and the last good revision
 * keeps running. A failed fetch is retried with back-off, also without
 * touching what runs.
 */
import { join } from 'node:path';
import { specHash } from '../api/generation.js';
import { resourceKey, type ResourceKey } from '../api/names.js';
import type { Host, ReconcileResult, Reconciler, Runnable } from '../api/runnable.js';
import { setCondition, type Condition, type GitRepositoryStatus } from '../api/status.js';
import { messageOf } from '../errors.js';
import { readSourceDirectory } from '../source/directory.js';
import { GitMirror, type Fetched } from '../source/git.js';
import { formatRevision, redactText, revisionSha, sourceSpec, type GitSourceSpec } from '../source/spec.js';
import { validateRevision, type ParseCache } from '../source/validate.js';
import type { ParsedDocument } from '../manifests/parse.js';
import type { StateLayout } from '../state/layout.js';
import type { RecordBook } from '../state/record-book.js';
import { readReconcileRequest } from '../state/requests.js';
import { backoff, jitter } from '../util/backoff.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { redactUrl } from '../util/redact-url.js';

const KIND = 'GitRepository';
/** First retry after a failed fetch; doubles up to the interval. */
const RETRY_BASE_MS = 5_000;
/** Errors shown in the status message of a revision that does not validate (all are in the event). */
const ERRORS_SHOWN = 5;

export interface GitRepositoryOptions {
  /** The state directory: `<state>/git` holds the mirror, the revisions and the `current` link; the reconcile request is read from it. */
  layout: StateLayout;
  /** The directory that declares the GitRepository (the user's, or the one `up --git` writes in the state directory). */
  sourceDir: string;
  records: RecordBook;
  clock: Clock;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  /** Stands in for Math.random in the interval's jitter (tests). */
  random?: () => number;
  /**
   * A revision the wiring has not read yet is now current (a new one, or a
   * new name for the one that runs): re-read the manifests from `current`
   * with it and reconcile everything. Called after the pass's status is
   * written. The revision found at start is the wiring's to read then.
   */
  applied(revision: string): Promise<void>;
}

type Event = ['Normal' | 'Warning', string, string];

/** What a pass found, which the summarize step writes as the status. */
interface Outcome {
  phase: GitRepositoryStatus['phase'];
  ready?: ['True' | 'False', string, string];
  stalled?: boolean;
  fetchedAt?: string;
  artifactRevision?: string;
  artifactUpdated?: string;
  /** A revision fetched and refused; null clears it. */
  attempted?: string | null;
  message?: string;
}

/** One fetching pass: the steps fill it in, the summary writes it. */
interface Pass {
  readonly name: string;
  readonly spec: GitSourceSpec;
  /** The spec's errors (the GitRepository manifest went bad since it was last valid). */
  readonly specErrors: readonly string[];
  readonly signal: AbortSignal;
  /** The `apiary reconcile source` request this pass handles (its requestedAt). */
  readonly request: string | undefined;
  outcome?: Outcome;
  events: Event[];
  /** When to come back: the interval, or the back-off after a failure. */
  requeueAfterMs: number;
  fetched?: Fetched;
  revision?: string;
  /** `current` was switched: the pass is recorded even if a stop comes after. */
  committed: boolean;
  /** Revisions to keep once the wiring has the new one (the rest are removed). */
  keep?: string[];
}

/** A step returns true when the pass is finished (the rest of the list is skipped). */
type Step = (pass: Pass) => Promise<boolean>;

export class GitRepositoryReconciler implements Reconciler, Runnable {
  readonly name = 'git source';
  readonly #opts: GitRepositoryOptions;
  readonly #mirror: GitMirror;
  readonly #steps: readonly Step[];
  #spec: GitSourceSpec | undefined;
  #specHash: string | undefined;
  #documents: readonly ParsedDocument[] = [];
  #revision: string | undefined;
  #path = '';
  /** When the next fetch is due (0: at the first pass). */
  #nextFetchAt = 0;
  /** The spec as of the last pass that acted on it: another one is acted on at once. */
  #handledSpecHash: string | undefined;
  #failures = 0;
  /** The revision the wiring last heard of (through `applied`, or read at start). */
  #announced: string | undefined;
  readonly #parsed: ParseCache = new Map();
  /** Aborted by stop: a fetch or checkout in progress is killed at once rather than waited for (up to spec.timeout). */
  readonly #abort = new AbortController();
  /** Passes in progress: stop returns once they have given up. */
  readonly #inFlight = new Set<Promise<unknown>>();

  constructor(options: GitRepositoryOptions) {
    this.#opts = options;
    this.#mirror = new GitMirror(options.layout.gitDir, options.env);
    this.#steps = [(p) => this.#checkSpec(p), (p) => this.#fetch(p), (p) => this.#verify(p), (p) => this.#switchAndApply(p)];
  }

  /** The folder the manifests are read from: always this path; what it points at changes. */
  get manifestDir(): string {
    return this.#mirror.current;
  }

  /** The revision that runs (what `current` points at), if any. */
  get revision(): string | undefined {
    return this.#revision;
  }

  /** The folder in the repository the manifests are in ('' for the top): how files are named in messages. */
  get path(): string {
    return this.#path;
  }

  /** The source directory's documents as last read (the GitRepository): what readers show beside the repository's. */
  get documents(): readonly ParsedDocument[] {
    return this.#documents;
  }

  /** Finds what the last run switched to (it runs until a newer good revision is fetched), and takes the GitRepository kind. */
  async start(host: Host): Promise<void> {
    await this.#loadSpec();
    const current = await this.#mirror.currentTarget();
    if (current !== undefined) {
      const name = this.#spec?.name;
      const recorded = name !== undefined ? this.#status(name)?.artifact?.revision : undefined;
      this.#revision = recorded !== undefined && revisionSha(recorded) === current.sha ? recorded : formatRevision(undefined, current.sha);
      this.#path = current.path;
      // Left by a checkout or a switch that was killed halfway.
      await this.#mirror.prune([current.sha]);
    }
    this.#announced = this.#revision;
    // One pass at a time: a fetch is never run twice at once.
    host.register(KIND, this, { workers: 1 });
  }

  /** The GitRepository the source directory declares (the last valid one, while it is invalid). */
  *keys(): Iterable<ResourceKey> {
    if (this.#spec !== undefined) yield resourceKey(KIND, this.#spec.name);
  }

  /** Kills a fetch or checkout in progress; the pass it belonged to records nothing. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled(this.#inFlight);
  }

  async reconcile(name: string, signal?: AbortSignal): Promise<ReconcileResult> {
    const stop = signal !== undefined ? AbortSignal.any([signal, this.#abort.signal]) : this.#abort.signal;
    if (stop.aborted) return {};
    const pass = this.#pass(name, stop);
    this.#inFlight.add(pass);
    try {
      return await pass;
    } finally {
      this.#inFlight.delete(pass);
    }
  }

  async #pass(name: string, signal: AbortSignal): Promise<ReconcileResult> {
    const { errors } = await this.#loadSpec();
    const spec = this.#spec;
    // Not the GitRepository this directory follows (any more): nothing of it to fetch.
    if (spec === undefined || spec.name !== name) return {};
    const request = await this.#pendingRequest(name);
    const specChanged = this.#handledSpecHash !== undefined && this.#specHash !== this.#handledSpecHash;
    const waitMs = this.#nextFetchAt - this.#opts.clock.now();
    if (request === undefined && !specChanged && waitMs > 0) {
      await this.#announce();
      return { requeueAfterMs: waitMs };
    }
    if (specChanged) this.#opts.logger.info('GitRepository changed; fetching now', { source: spec.name });
    if (request !== undefined) this.#opts.logger.info('source reconcile requested', { requestedAt: request });
    const pass: Pass = { name, spec, specErrors: errors, signal, request, events: [], requeueAfterMs: jitter(spec.intervalMs, undefined, this.#opts.random), committed: false };
    try {
      for (const step of this.#steps) if (await step(pass)) break;
    } finally {
      await this.#summarize(pass);
    }
    if (signal.aborted && !pass.committed) return {};
    await this.#announce(pass.keep);
    return { requeueAfterMs: pass.requeueAfterMs };
  }

  /**
   * After the status, as Flux's source-controller publishes an artifact for
   * others to apply: the wiring hears of a revision it has not read (level-
   * triggered: one it failed to read is announced again at the next pass);
   * then revisions older than the one before are removed.
   */
  async #announce(keep?: string[]): Promise<void> {
    const revision = this.#revision;
    if (revision !== undefined && revision !== this.#announced) {
      await this.#opts.applied(revision);
      this.#announced = revision;
    }
    if (keep !== undefined) await this.#mirror.prune(keep).catch((err: unknown) => this.#opts.logger.warn('cannot remove old revisions', { error: messageOf(err) }));
  }

  /** `apiary reconcile source`, read level-triggered: the request on file, unless the status says it was handled. */
  async #pendingRequest(name: string): Promise<string | undefined> {
    const request = await readReconcileRequest(this.#opts.layout);
    if (request === undefined || request.requestedAt === this.#status(name)?.lastHandledReconcileAt) return undefined;
    return request.requestedAt;
  }

  #status(name: string): Partial<GitRepositoryStatus> | undefined {
    return this.#opts.records.get(KIND, name)?.status as Partial<GitRepositoryStatus> | undefined;
  }

  async #loadSpec(): Promise<{ errors: string[] }> {
    const read = await readSourceDirectory(this.#opts.sourceDir).catch((err: unknown) => ({ errors: [`cannot read ${this.#opts.sourceDir}: ${messageOf(err)}`], declared: 0, documents: [] }));
    this.#documents = read.documents;
    if ('resource' in read && read.resource !== undefined) {
      this.#spec = sourceSpec(read.resource);
      this.#specHash = specHash(read.resource.manifest);
      const meta = read.resource.manifest.metadata;
      this.#opts.records.observeSpec(KIND, read.resource.name, this.#specHash, { ...(meta.labels ? { labels: meta.labels } : {}), ...(meta.annotations ? { annotations: meta.annotations } : {}) });
      return { errors: [] };
    }
    const errors = read.declared === 0 ? [`${this.#opts.sourceDir} declares no GitRepository any more`, ...read.errors] : read.errors;
    // A manifest that turns invalid is a change too (acted on at once).
    this.#specHash = `invalid:${errors.join('\n')}`;
    return { errors };
  }

  #keeps(): string {
    return this.#revision !== undefined ? `${this.#revision} keeps running` : 'nothing from this repository runs yet';
  }

  /** Step 1: a GitRepository manifest that went bad, or one suspended, is not fetched; what runs stays. */
  async #checkSpec(pass: Pass): Promise<boolean> {
    if (pass.specErrors.length > 0) {
      pass.outcome = { phase: 'Invalid', ready: ['False', 'InvalidManifest', `${pass.specErrors.join('; ')}; nothing is fetched until it is fixed; ${this.#keeps()}`], stalled: true };
      this.#opts.logger.warn('GitRepository manifest invalid; nothing is fetched until it is fixed', { errors: pass.specErrors });
      return true;
    }
    if (pass.spec.suspend) {
      pass.outcome = { phase: 'Suspended', message: `suspended: not fetched until apiary resume source${this.#revision !== undefined ? `; ${this.#revision} keeps running` : ''}` };
      return true;
    }
    return false;
  }

  /** Step 2: fetch and resolve the ref; a failure backs off. Nothing new (or only the ref's name changed): done. */
  async #fetch(pass: Pass): Promise<boolean> {
    const { spec } = pass;
    try {
      pass.fetched = await this.#mirror.fetch(spec.url, spec.ref, { timeoutMs: spec.timeoutMs, signal: pass.signal });
    } catch (err) {
      // Stopped, not failed: nothing to report or retry.
      if (pass.signal.aborted) return true;
      this.#failures += 1;
      pass.requeueAfterMs = backoff({ baseMs: RETRY_BASE_MS, capMs: spec.intervalMs }, this.#failures);
      const message = redactText(messageOf(err), spec.url);
      if (this.#failures === 1) this.#opts.logger.warn('git fetch failed; retrying with back-off', { source: spec.name, error: message, retryInMs: pass.requeueAfterMs });
      pass.outcome = { phase: 'FetchFailed', ready: ['False', 'GitOperationFailed', `${message}; ${this.#keeps()}`], stalled: false };
      pass.events.push(['Warning', 'GitOperationFailed', message]);
      return true;
    }
    if (this.#failures > 0) this.#opts.logger.info('git fetch works again', { source: spec.name });
    this.#failures = 0;
    const fetchedAt = this.#nowIso();
    const revision = formatRevision(pass.fetched.refName, pass.fetched.sha);
    pass.revision = revision;
    pass.outcome = { phase: 'Ready', ready: ['True', 'Succeeded', `stored artifact for revision '${revision}'`], stalled: false, fetchedAt, artifactRevision: revision, attempted: null };
    if (this.#revision === undefined || revisionSha(this.#revision) !== pass.fetched.sha || this.#path !== spec.path) return false;
    // What runs is what was asked for; a new name for it (a branch that now points here) is announced, for every status to carry.
    this.#revision = revision;
    return true;
  }

  /** Step 3: the revision's files, checked out and validated whole; one that does not validate is refused. */
  async #verify(pass: Pass): Promise<boolean> {
    const { spec } = pass;
    const revision = pass.revision!;
    const problems = await this.#checkout(pass.fetched!.sha, spec, pass.signal);
    // Stopping during the checkout: its problems are the abort's, and nothing new starts now.
    if (pass.signal.aborted) return true;
    if (problems.length === 0) return false;
    const shown = problems.slice(0, ERRORS_SHOWN).join('; ') + (problems.length > ERRORS_SHOWN ? `; and ${problems.length - ERRORS_SHOWN} more` : '');
    this.#opts.logger.warn('revision not applied: its manifests do not validate', { source: spec.name, revision, errors: problems.slice(0, ERRORS_SHOWN) });
    const fetchedAt = pass.outcome?.fetchedAt;
    pass.outcome = { phase: 'Invalid', ready: ['False', 'ValidationFailed', `revision ${revision} is not applied: ${shown}; ${this.#keeps()}`], stalled: true, attempted: revision, ...(fetchedAt !== undefined ? { fetchedAt } : {}) };
    pass.events.push(['Warning', 'ValidationFailed', `revision ${revision} is not applied: ${problems.join('; ')}`]);
    return true;
  }

  async #checkout(sha: string, spec: GitSourceSpec, signal: AbortSignal): Promise<string[]> {
    let folder;
    try {
      folder = await this.#mirror.checkout(sha, { timeoutMs: spec.timeoutMs, signal });
    } catch (err) {
      return [redactText(messageOf(err), spec.url)];
    }
    const dir = spec.path === '' ? folder : join(folder, spec.path);
    return validateRevision(dir, spec.path, this.#parsed);
  }

  /** Step 4: switch `current` to the new revision (announced to the wiring once the status says so). */
  async #switchAndApply(pass: Pass): Promise<boolean> {
    const { spec } = pass;
    const revision = pass.revision!;
    const sha = pass.fetched!.sha;
    const previousSha = this.#revision !== undefined ? revisionSha(this.#revision) : undefined;
    await this.#mirror.switchTo(sha, spec.path);
    pass.committed = true;
    this.#revision = revision;
    this.#path = spec.path;
    this.#opts.logger.info('new revision applied', { source: spec.name, revision });
    pass.outcome = { ...pass.outcome!, artifactUpdated: pass.outcome!.fetchedAt! };
    pass.events.push(['Normal', 'NewArtifact', `stored artifact for revision '${revision}'${previousSha !== undefined ? ` (was ${previousSha.slice(0, 12)})` : ''}`]);
    pass.keep = previousSha !== undefined ? [sha, previousSha] : [sha];
    return true;
  }

  #nowIso(): string {
    return new Date(this.#opts.clock.now()).toISOString();
  }

  /**
   * The summarize step (Flux's SummarizeAndPatch): the pass's outcome and
   * events, written as the status once. A pass a stop cut short writes
   * nothing, unless it had already switched `current`.
   */
  async #summarize(pass: Pass): Promise<void> {
    if (pass.signal.aborted && !pass.committed) return;
    const now = this.#opts.clock.now();
    this.#nextFetchAt = now + pass.requeueAfterMs;
    this.#handledSpecHash = this.#specHash;
    const records = this.#opts.records;
    const record = records.get(KIND, pass.name);
    if (pass.outcome === undefined || record === undefined) return;
    const status = sourceStatus({
      outcome: pass.outcome,
      previous: record.status as Partial<GitRepositoryStatus>,
      generation: record.metadata.generation,
      url: pass.spec.url,
      now,
      nextFetchAt: this.#nextFetchAt,
      running: this.#revision,
      request: pass.request,
    });
    for (const event of pass.events) records.event(KIND, pass.name, ...event);
    await records.setStatus(KIND, pass.name, status);
  }
}

/** A pass's outcome over the status before it: what stays (the artifact, the last fetch, the request handled) and what it changed. */
function sourceStatus(input: {
  outcome: Outcome;
  previous: Partial<GitRepositoryStatus>;
  generation: number;
  url: string;
  now: number;
  nextFetchAt: number;
  /** The revision that runs. */
  running: string | undefined;
  request: string | undefined;
}): GitRepositoryStatus {
  const { outcome, previous, generation } = input;
  const nowIso = new Date(input.now).toISOString();
  const status: GitRepositoryStatus = { observedGeneration: generation, phase: outcome.phase, conditions: sourceConditions(outcome, previous, generation, nowIso), url: redactUrl(input.url) };
  const revision = outcome.artifactRevision ?? previous.artifact?.revision ?? input.running;
  if (revision !== undefined) status.artifact = { revision, lastUpdateTime: outcome.artifactUpdated ?? previous.artifact?.lastUpdateTime ?? nowIso };
  const fetchedAt = outcome.fetchedAt ?? previous.fetchedAt;
  if (fetchedAt !== undefined) status.fetchedAt = fetchedAt;
  const attempted = outcome.attempted === null ? undefined : (outcome.attempted ?? previous.lastAttemptedRevision);
  if (attempted !== undefined) status.lastAttemptedRevision = attempted;
  const handled = input.request ?? previous.lastHandledReconcileAt;
  if (handled !== undefined) status.lastHandledReconcileAt = handled;
  if (outcome.phase !== 'Suspended') status.nextFetchAt = new Date(input.nextFetchAt).toISOString();
  const message = outcome.message ?? (outcome.ready?.[0] === 'False' ? outcome.ready[2] : undefined);
  if (message !== undefined) status.message = message;
  return status;
}

/** Ready as the outcome says; Stalled when only a person can help (a bad commit or a bad GitRepository manifest). */
function sourceConditions(outcome: Outcome, previous: Partial<GitRepositoryStatus>, generation: number, nowIso: string): Condition[] {
  let conditions = previous.conditions ?? [];
  const ready = outcome.ready;
  if (ready !== undefined) {
    const [status, reason, message] = ready;
    conditions = setCondition(conditions, { type: 'Ready', status, reason, message, observedGeneration: generation }, nowIso);
  }
  if (outcome.stalled !== undefined) {
    conditions = setCondition(conditions, outcome.stalled && ready !== undefined
      ? { type: 'Stalled', status: 'True', reason: ready[1], message: ready[1] === 'ValidationFailed' ? 'a new commit that fixes the manifests is needed' : 'the GitRepository manifest needs fixing', observedGeneration: generation }
      : { type: 'Stalled', status: 'False', reason: 'Progressing', message: 'no intervention needed', observedGeneration: generation }, nowIso);
  }
  return conditions;
}
