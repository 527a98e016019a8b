/**
 * The manager's own runnables: the manifest watcher (the desired state, kept
 * current from the directory), the request watcher (what CLI verbs ask of a
 * running controller through files in the state directory) and the lock's
 * record (controller.json, repaired on each resync).
 */
import { watch, type FSWatcher } from 'node:fs';
import { rm } from 'node:fs/promises';
import { resourceKey, type ResourceKey } from '../api/names.js';
import type { Host, Runnable } from '../api/runnable.js';
import { messageOf } from '../errors.js';
import type { ControllerLock } from '../state/controller-lock.js';
import type { DesiredState } from '../manifests/desired-state.js';
import type { StateLayout } from '../state/layout.js';
import { readApprovalNotes, readRestartRequests, type ApprovalNote } from '../state/requests.js';
import { ensureDir } from '../util/atomic.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { ManifestSource } from './source.js';

export interface ManifestWatcherOptions {
  desired: DesiredState;
  clock: Clock;
  logger: Logger;
  /**
   * Watch the directory for edits (a manifest directory). Off when the
   * directory is a git revision's checkout: its files change only when the
   * git source switches to another revision, and it is absent until the
   * first one (the source's status says why).
   */
  watch: boolean;
  /** The git revision the directory holds (following git): the first read gives it to every entry. */
  revision?: () => string | undefined;
  /**
   * Keys that change what every endpoint enforces (a Gateway, an AccessPolicy):
   * applied before the rest of the same read is queued, so a server declared
   * beside them never serves under the settings of before.
   */
  applyFirst?: { covers(key: ResourceKey): boolean; apply(): Promise<unknown> };
}

/** Reads the desired state before any reconcile, then keeps it current: file events, and a full scan on each resync. */
export class ManifestWatcher implements Runnable {
  readonly name = 'the manifest watcher';
  readonly #opts: ManifestWatcherOptions;
  #source: ManifestSource | undefined;
  #host: Host | undefined;
  #dirMissing = false;

  constructor(options: ManifestWatcherOptions) {
    this.#opts = options;
  }

  async start(host: Host): Promise<void> {
    const { desired, clock, logger } = this.#opts;
    this.#host = host;
    const { unsettled } = await desired.scan({ revision: this.#opts.revision?.() });
    if (!this.#opts.watch) return;
    this.#source = new ManifestSource({ desired, clock, logger, onAffected: (keys) => void this.#queue(host, keys) });
    await this.#source.start();
    // A file that looked half-written is read again now, as after a resync, not left unread (and unreported) until one.
    for (const path of unsettled) this.#source.touch(path);
  }

  keys(): ResourceKey[] {
    return this.#opts.desired.keys();
  }

  async resync(): Promise<void> {
    const { desired, logger } = this.#opts;
    const { affected, unsettled, missing } = await desired.scan();
    if (missing && this.#opts.watch) {
      if (!this.#dirMissing) logger.warn('manifest directory is gone; keeping every server as it is until it is back', { dir: desired.dir });
      this.#dirMissing = true;
    } else if (!missing && this.#dirMissing) {
      this.#dirMissing = false;
      logger.info('manifest directory is back; watching it again', { dir: desired.dir });
      await this.#source?.restart();
    }
    if (this.#host !== undefined) await this.#queue(this.#host, affected);
    for (const path of unsettled) this.#source?.touch(path);
  }

  async #queue(host: Host, keys: Iterable<ResourceKey>): Promise<void> {
    const first = this.#opts.applyFirst;
    const list = [...keys];
    if (first !== undefined && list.some((key) => first.covers(key))) {
      await first.apply().catch((err: unknown) => this.#opts.logger.warn('access settings not applied yet; the Gateway is reconciled again', { error: messageOf(err) }));
    }
    host.enqueue(list);
    host.changed();
  }

  async stop(): Promise<void> {
    await this.#source?.stop();
  }
}

export interface RequestWatcherOptions {
  layout: StateLayout;
  logger: Logger;
  /** `apiary restart NAME`: true when the backend takes it as a new request. */
  restart(name: string, requestedAt: string): boolean;
  /** `apiary reconcile source` may have written a request: the source reads it when reconciled. */
  sourceRequested?(): void;
  /** An approval of a server's tools (`tools approve`, the console's Approve): its audit record, if the log is on. */
  approved?(note: ApprovalNote): void;
}

/** Requests the CLI leaves in the state directory, heard by a watch and read again on each resync. */
export class RequestWatcher implements Runnable {
  readonly name = 'the request watcher';
  readonly #opts: RequestWatcherOptions;
  #watcher: FSWatcher | undefined;
  #host: Host | undefined;

  constructor(options: RequestWatcherOptions) {
    this.#opts = options;
  }

  async start(host: Host): Promise<void> {
    this.#host = host;
    await ensureDir(this.#opts.layout.requestsDir);
    this.#watcher = watch(this.#opts.layout.requestsDir, () => void this.#read());
    this.#watcher.on('error', (err) => this.#opts.logger.warn('request watch error', { error: messageOf(err) }));
    await this.#read();
  }

  resync(): Promise<void> {
    return this.#read();
  }

  /** Approval notes are handled one read at a time: two watch events in a row must not record one twice. */
  #notes: Promise<void> = Promise.resolve();

  async #read(): Promise<void> {
    this.#opts.sourceRequested?.();
    const approved = this.#opts.approved;
    if (approved !== undefined) {
      this.#notes = this.#notes.then(() => this.#recordApprovals(approved)).catch((err: unknown) => this.#opts.logger.warn('approval notes not read', { error: messageOf(err) }));
      await this.#notes;
    }
    for (const request of await readRestartRequests(this.#opts.layout)) {
      if (this.#opts.restart(request.name, request.requestedAt)) {
        this.#opts.logger.info('rollout restart requested', { server: request.name });
        this.#host?.enqueue([resourceKey('MCPServer', request.name)]);
      }
    }
  }

  /** Each note recorded once, then removed (removed first: a note recorded twice would be a false record). */
  async #recordApprovals(approved: (note: ApprovalNote) => void): Promise<void> {
    for (const { file, note } of await readApprovalNotes(this.#opts.layout)) {
      const removed = await rm(file).then(
        () => true,
        () => false,
      );
      if (removed) approved(note);
    }
  }

  async stop(): Promise<void> {
    this.#watcher?.close();
  }
}

/**
 * controller.json, the record of who holds the lock: information only (the
 * kernel lock decides), but `get`, `down` and the console read it, so a
 * record someone removed or damaged is written again on each resync.
 */
export class LockRecord implements Runnable {
  readonly name = 'the controller record';
  readonly #lock: ControllerLock;
  readonly #logger: Logger;

  constructor(lock: ControllerLock, logger: Logger) {
    this.#lock = lock;
    this.#logger = logger;
  }

  async start(): Promise<void> {}

  async resync(): Promise<void> {
    await this.#lock.repairInfo().catch((err: unknown) => this.#logger.warn('cannot rewrite controller.json', { error: messageOf(err) }));
  }

  async stop(): Promise<void> {}
}
