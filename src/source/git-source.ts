/**
 * Follows a GitRepository, as Flux's source-controller does: fetch on an
 * interval (or now, on `apiary reconcile source`), check each new revision
 * out beside the old, validate all of its manifests, and only then switch
 * `current` to it and tell the controller. A revision that does not validate
 * is never applied: the source says why (file:line:col and the sha) and the
 * last good revision keeps running. A fetch that fails (remote unreachable,
 * authentication refused) is retried with back-off, also without touching
 * what runs.
 */
import { createHash } from 'node:crypto';
import { join, relative } from 'node:path';
import { specHash } from '../api/generation.js';
import type { GitRepositoryStatus } from '../api/status.js';
import { setCondition } from '../api/status.js';
import { backoff } from '../util/backoff.js';
import type { Clock, Timer } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { messageOf } from '../errors.js';
import { formatManifestError } from '../manifests/errors.js';
import { assemble, listManifestFiles, readManifestText, unreadableFile } from '../manifests/loader.js';
import { parseManifestText, type ParsedDocument } from '../manifests/parse.js';
import type { RecordBook } from '../state/record-book.js';
import { readSourceDirectory } from './directory.js';
import { GitMirror } from './git.js';
import { formatRevision, redactText, revisionSha, type GitSourceSpec } from './spec.js';
import { redactUrl } from '../util/redact-url.js';
import { sourceSpec } from './spec.js';

const KIND = 'GitRepository';
/** First retry after a failed fetch; doubles up to the interval. */
const RETRY_BASE_MS = 5_000;
/** Errors shown in the status message of a revision that does not validate (all are in the event). */
const ERRORS_SHOWN = 5;

export interface GitSourceOptions {
  /** `<state>/git`: the mirror, the revisions and the `current` link. */
  root: string;
  /** The directory that declares the GitRepository (the user's, or the one `up --git` writes in the state directory). */
  sourceDir: string;
  records: RecordBook;
  clock: Clock;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  /** A revision is now current: re-read the manifests from `current` and reconcile everything. */
  applied(revision: string, path: string): Promise<void>;
}

export class GitSource {
  readonly #opts: GitSourceOptions;
  readonly #mirror: GitMirror;
  #spec: GitSourceSpec | undefined;
  #revision: string | undefined;
  #path = '';
  #failures = 0;
  #timer: Timer | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  /** Aborted by stop: a fetch or checkout in progress is killed at once rather than waited for (up to spec.timeout). */
  readonly #abort = new AbortController();
  #pendingRequest: string | undefined;
  #documents: readonly ParsedDocument[] = [];
  #specHash: string | undefined;
  readonly #parsed: ParseCache = new Map();

  constructor(options: GitSourceOptions) {
    this.#opts = options;
    this.#mirror = new GitMirror(options.root, options.env);
  }

  /** The folder the controller reads manifests from: always this path; what it points at changes. */
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

  /** Finds what the last run switched to: it runs until a newer good revision is fetched. */
  async init(): Promise<void> {
    await this.#loadSpec();
    const current = await this.#mirror.currentTarget();
    if (current === undefined) return;
    const name = this.#spec?.name;
    const recorded = name !== undefined ? (this.#opts.records.get(KIND, name)?.status as GitRepositoryStatus | undefined)?.artifact?.revision : undefined;
    this.#revision = recorded !== undefined && revisionSha(recorded) === current.sha ? recorded : formatRevision(undefined, current.sha);
    this.#path = current.path;
    // Left by a checkout or a switch that was killed halfway.
    await this.#mirror.prune([current.sha]);
  }

  start(): void {
    this.#schedule(0);
  }

  /** `apiary reconcile source`: fetch now (a fetch in progress is followed by another). */
  requestReconcile(requestedAt: string): void {
    this.#pendingRequest = requestedAt;
    this.#schedule(0);
  }

  /**
   * The periodic resync: an edit of the GitRepository manifest (another ref,
   * path or interval) is acted on now, not at the next interval, as Flux acts
   * on a new generation.
   */
  async resync(): Promise<void> {
    const before = this.#specHash;
    await this.#loadSpec();
    if (this.#specHash !== before) {
      this.#opts.logger.info('GitRepository changed; fetching now', { source: this.#spec?.name });
      this.#schedule(0);
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#abort.abort();
    await this.#running;
  }

  /** The next cycle in `ms`, or at once when a reconcile request waits (a cycle ending never pushes a request back to its interval). */
  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer?.cancel();
    this.#timer = this.#opts.clock.setTimeout(() => this.#kick(), this.#pendingRequest !== undefined ? 0 : ms);
  }

  #kick(): void {
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#running = this.#cycle()
      .catch((err: unknown) => this.#opts.logger.error('git source cycle failed', { error: messageOf(err) }))
      .finally(() => {
        this.#running = undefined;
        if (this.#again && !this.#stopped) {
          this.#again = false;
          this.#kick();
        }
      });
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
    // A manifest that turns invalid is a change too (resync acts on it at once).
    this.#specHash = `invalid:${errors.join('\n')}`;
    return { errors };
  }

  async #cycle(): Promise<void> {
    const request = this.#pendingRequest;
    this.#pendingRequest = undefined;
    const { errors } = await this.#loadSpec();
    const spec = this.#spec;
    if (spec === undefined) return;
    if (errors.length > 0) {
      // The source's own manifest went bad: nothing is fetched until it is fixed; what runs stays.
      const keeps = this.#revision !== undefined ? `${this.#revision} keeps running` : 'nothing from this repository runs yet';
      await this.#status(spec, { ready: ['False', 'InvalidManifest', `${errors.join('; ')}; nothing is fetched until it is fixed; ${keeps}`], stalled: true, phase: 'Invalid', request });
      this.#opts.logger.warn('GitRepository manifest invalid; nothing is fetched until it is fixed', { errors });
      this.#schedule(spec.intervalMs);
      return;
    }
    if (spec.suspend) {
      await this.#status(spec, { phase: 'Suspended', request, message: `suspended: not fetched until apiary resume source${this.#revision !== undefined ? `; ${this.#revision} keeps running` : ''}` });
      this.#schedule(spec.intervalMs);
      return;
    }
    let fetched;
    try {
      fetched = await this.#mirror.fetch(spec.url, spec.ref, { timeoutMs: spec.timeoutMs, signal: this.#abort.signal });
    } catch (err) {
      // Stopped, not failed: nothing to report or retry.
      if (this.#stopped) return;
      this.#failures += 1;
      const delay = backoff({ baseMs: RETRY_BASE_MS, capMs: spec.intervalMs }, this.#failures);
      const message = redactText(messageOf(err), spec.url);
      const keeps = this.#revision !== undefined ? `; ${this.#revision} keeps running` : '; nothing from this repository runs yet';
      if (this.#failures === 1) this.#opts.logger.warn('git fetch failed; retrying with back-off', { source: spec.name, error: message, retryInMs: delay });
      await this.#status(spec, { ready: ['False', 'GitOperationFailed', `${message}${keeps}`], stalled: false, phase: 'FetchFailed', request, retryInMs: delay, event: ['Warning', 'GitOperationFailed', message] });
      this.#schedule(delay);
      return;
    }
    if (this.#failures > 0) this.#opts.logger.info('git fetch works again', { source: spec.name });
    this.#failures = 0;
    const fetchedAt = new Date(this.#opts.clock.now()).toISOString();
    const revision = formatRevision(fetched.refName, fetched.sha);
    const currentSha = this.#revision !== undefined ? revisionSha(this.#revision) : undefined;
    if (currentSha === fetched.sha && this.#path === spec.path) {
      // Nothing new (or only the ref's name changed): what runs is what was asked for.
      this.#revision = revision;
      await this.#status(spec, { ready: ['True', 'Succeeded', `stored artifact for revision '${revision}'`], stalled: false, phase: 'Ready', request, fetchedAt, artifactRevision: revision, attempted: null });
      this.#schedule(spec.intervalMs);
      return;
    }
    const problems = await this.#checkout(fetched.sha, spec);
    // Stopping during the checkout: its problems are the abort's, and nothing new starts now.
    if (this.#stopped) return;
    if (problems.length > 0) {
      const shown = problems.slice(0, ERRORS_SHOWN).join('; ') + (problems.length > ERRORS_SHOWN ? `; and ${problems.length - ERRORS_SHOWN} more` : '');
      const keeps = this.#revision !== undefined ? `${this.#revision} keeps running` : 'nothing from this repository runs yet';
      const message = `revision ${revision} is not applied: ${shown}; ${keeps}`;
      this.#opts.logger.warn('revision not applied: its manifests do not validate', { source: spec.name, revision, errors: problems.slice(0, ERRORS_SHOWN) });
      await this.#status(spec, { ready: ['False', 'ValidationFailed', message], stalled: true, phase: 'Invalid', request, fetchedAt, attempted: revision, event: ['Warning', 'ValidationFailed', `revision ${revision} is not applied: ${problems.join('; ')}`] });
      this.#schedule(spec.intervalMs);
      return;
    }
    const previousSha = currentSha;
    await this.#mirror.switchTo(fetched.sha, spec.path);
    this.#revision = revision;
    this.#path = spec.path;
    this.#opts.logger.info('new revision applied', { source: spec.name, revision });
    await this.#status(spec, { ready: ['True', 'Succeeded', `stored artifact for revision '${revision}'`], stalled: false, phase: 'Ready', request, fetchedAt, artifactRevision: revision, artifactUpdated: fetchedAt, attempted: null, event: ['Normal', 'NewArtifact', `stored artifact for revision '${revision}'${previousSha !== undefined ? ` (was ${previousSha.slice(0, 12)})` : ''}`] });
    await this.#opts.applied(revision, spec.path);
    await this.#mirror.prune(previousSha !== undefined ? [fetched.sha, previousSha] : [fetched.sha]).catch((err: unknown) => this.#opts.logger.warn('cannot remove old revisions', { error: messageOf(err) }));
    this.#schedule(spec.intervalMs);
  }

  /** The revision's files, checked out and validated whole: every problem, or none. */
  async #checkout(sha: string, spec: GitSourceSpec): Promise<string[]> {
    let folder;
    try {
      folder = await this.#mirror.checkout(sha, { timeoutMs: spec.timeoutMs, signal: this.#abort.signal });
    } catch (err) {
      return [redactText(messageOf(err), spec.url)];
    }
    const dir = spec.path === '' ? folder : join(folder, spec.path);
    return validateRevision(dir, spec.path, this.#parsed);
  }

  async #status(
    spec: GitSourceSpec,
    change: {
      ready?: ['True' | 'False', string, string];
      stalled?: boolean;
      phase: GitRepositoryStatus['phase'];
      request: string | undefined;
      fetchedAt?: string;
      artifactRevision?: string;
      artifactUpdated?: string;
      attempted?: string | null;
      retryInMs?: number;
      message?: string;
      event?: ['Normal' | 'Warning', string, string];
    },
  ): Promise<void> {
    const records = this.#opts.records;
    const record = records.get(KIND, spec.name);
    if (record === undefined) return;
    const generation = record.metadata.generation;
    const previous = record.status as Partial<GitRepositoryStatus>;
    const now = new Date(this.#opts.clock.now()).toISOString();
    let conditions = previous.conditions ?? [];
    if (change.ready !== undefined) {
      const [status, reason, message] = change.ready;
      conditions = setCondition(conditions, { type: 'Ready', status, reason, message, observedGeneration: generation }, now);
    }
    if (change.stalled !== undefined) {
      const ready = change.ready;
      conditions = setCondition(conditions, change.stalled && ready !== undefined
        ? { type: 'Stalled', status: 'True', reason: ready[1], message: ready[1] === 'ValidationFailed' ? 'a new commit that fixes the manifests is needed' : 'the GitRepository manifest needs fixing', observedGeneration: generation }
        : { type: 'Stalled', status: 'False', reason: 'Progressing', message: 'no intervention needed', observedGeneration: generation }, now);
    }
    const status: GitRepositoryStatus = {
      observedGeneration: generation,
      phase: change.phase,
      conditions,
      url: redactUrl(spec.url),
    };
    const revision = change.artifactRevision ?? previous.artifact?.revision ?? this.#revision;
    if (revision !== undefined) status.artifact = { revision, lastUpdateTime: change.artifactUpdated ?? previous.artifact?.lastUpdateTime ?? now };
    const fetchedAt = change.fetchedAt ?? previous.fetchedAt;
    if (fetchedAt !== undefined) status.fetchedAt = fetchedAt;
    const attempted = change.attempted === null ? undefined : (change.attempted ?? previous.lastAttemptedRevision);
    if (attempted !== undefined) status.lastAttemptedRevision = attempted;
    const handled = change.request ?? previous.lastHandledReconcileAt;
    if (handled !== undefined) status.lastHandledReconcileAt = handled;
    if (change.phase !== 'Suspended') status.nextFetchAt = new Date(this.#opts.clock.now() + (change.retryInMs ?? spec.intervalMs)).toISOString();
    const message = change.message ?? (change.ready?.[0] === 'False' ? change.ready[2] : undefined);
    if (message !== undefined) status.message = message;
    if (change.event !== undefined) records.event(KIND, spec.name, ...change.event);
    await records.setStatus(KIND, spec.name, status);
  }
}

/**
 * Parsed files of earlier revisions, by path and content: a new revision
 * parses only the files it changed (the rest are read and hashed). Holds the
 * files of the last revision validated, no more.
 */
export type ParseCache = Map<string, ParsedDocument[]>;

/** Every reason a revision's manifests may not run, `file:line:col: message` each, files named as in the repository. */
export async function validateRevision(dir: string, path: string, cache: ParseCache = new Map()): Promise<string[]> {
  const display = path === '' ? '.' : path;
  let files: string[];
  const unreadable: string[] = [];
  try {
    files = await listManifestFiles(dir, (folder, err) => unreadable.push(`${join(display, relative(dir, folder))}/: cannot read: ${messageOf(err)}`));
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR';
    return [missing ? `path "${path}" is not a folder in this revision (spec.path)` : `cannot read the revision: ${messageOf(err)}`];
  }
  const seen = new Map<string, ParsedDocument[]>();
  const parsed: ParsedDocument[] = [];
  for (const file of files) {
    const shown = join(display, relative(dir, file));
    const read = await readManifestText(file, shown);
    const key = 'text' in read ? `${shown}\0${createHash('sha256').update(read.text).digest('hex')}` : undefined;
    const docs = (key !== undefined ? cache.get(key) : undefined) ?? ('text' in read ? parseManifestText(read.text, file, shown) : [unreadableFile(file, read.error)]);
    if (key !== undefined) seen.set(key, docs);
    parsed.push(...docs);
  }
  cache.clear();
  for (const [key, docs] of seen) cache.set(key, docs);
  const loaded = assemble(parsed, files);
  const problems = [...unreadable, ...loaded.errors.map(formatManifestError)];
  for (const doc of loaded.documents) {
    if (doc.kind === 'GitRepository') {
      problems.push(`${doc.source.file}:${doc.source.line}:${doc.source.col}: a GitRepository is declared in the local directory that follows the repository, not inside the repository`);
    }
  }
  return problems;
}
