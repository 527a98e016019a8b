/**
 * Watches the manifest directory with chokidar and turns file events into
 * affected resource keys. A read that looks torn (a half-written file) is
 * read again after a short pause before it counts, and every file that
 * changed (tools.lock.yaml too) is read once more a little later, so an edit
 * whose last write raced a read, or whose event chokidar's throttle dropped,
 * is never lost.
 */
import { basename, relative, sep } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { ResourceKey } from '../api/names.js';
import { isManifestFileName } from '../manifests/loader.js';
import type { Clock } from '../util/clock.js';
import type { DesiredState } from '../manifests/desired-state.js';
import type { Logger } from '../util/logger.js';

export interface SourceOptions {
  desired: DesiredState;
  clock: Clock;
  logger: Logger;
  onAffected(keys: Set<ResourceKey>): void;
  /** Pauses before re-reading a torn-looking file. */
  settleDelaysMs?: readonly number[];
  /** When a changed file is read again to catch a write that raced the first read. */
  verifyAfterMs?: number;
}

export class ManifestSource {
  readonly #opts: SourceOptions;
  readonly #settle: readonly number[];
  readonly #verifyAfterMs: number;
  #watcher: FSWatcher | undefined;
  readonly #busy = new Map<string, Promise<void>>();
  readonly #again = new Set<string>();
  #closed = false;

  constructor(options: SourceOptions) {
    this.#opts = options;
    this.#settle = options.settleDelaysMs ?? [15, 30, 60, 120, 240];
    this.#verifyAfterMs = options.verifyAfterMs ?? 150;
  }

  async start(): Promise<void> {
    const dir = this.#opts.desired.dir;
    const watcher = watch(dir, {
      ignoreInitial: true,
      atomic: true,
      ignored: (path, stats) => {
        const rel = relative(dir, path);
        if (rel === '') return false;
        if (rel.split(sep).some((part) => part.startsWith('.') || part === 'node_modules')) return true;
        return stats?.isFile() === true && !isManifestFileName(basename(path));
      },
    });
    watcher.on('all', (event, path) => {
      if (event === 'addDir' || event === 'unlinkDir') {
        this.rescan();
        return;
      }
      if (isManifestFileName(basename(path))) this.touch(path);
    });
    watcher.on('error', (err) => this.#opts.logger.warn('watch error', { error: err instanceof Error ? err.message : String(err) }));
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    this.#watcher = watcher;
  }

  /** Watches afresh: after the directory was deleted and made again, the old watch is dead. */
  async restart(): Promise<void> {
    await this.#watcher?.close();
    this.#watcher = undefined;
    await this.start();
  }

  /** A file may have changed: read it (serialized per file). */
  touch(path: string): void {
    if (this.#closed) return;
    if (this.#busy.has(path)) {
      this.#again.add(path);
      return;
    }
    const run = this.#process(path).finally(() => {
      this.#busy.delete(path);
      if (this.#again.delete(path)) this.touch(path);
    });
    this.#busy.set(path, run);
  }

  /** Scans the whole directory (a folder appeared or vanished, or a periodic resync). */
  rescan(): void {
    void this.#opts.desired.scan().then(({ affected, unsettled }) => {
      if (affected.size > 0) this.#opts.onAffected(affected);
      for (const path of unsettled) this.touch(path);
    });
  }

  async #process(path: string): Promise<void> {
    const { desired } = this.#opts;
    if (!(await desired.present())) {
      this.#opts.logger.warn('manifest directory is gone; keeping every server as it is until it is back', { dir: desired.dir });
      return;
    }
    if (desired.isToolsLock(path)) {
      const { affected, error } = await desired.reloadToolsLock();
      if (error !== undefined) this.#opts.logger.warn('tools.lock.yaml cannot be read; the pins stay as they were', { error });
      if (affected.size > 0) this.#opts.onAffected(affected);
    } else {
      await this.#readManifest(path);
    }
    // Read once more shortly after: a write that landed during our read is caught here, and so is one whose event
    // chokidar dropped (it passes one change per file per 50 ms and drops the rest, e.g. a second approval of the lock).
    this.#opts.clock.setTimeout(() => {
      void desired.isStale(path).then((stale) => {
        if (stale) this.touch(path);
      });
    }, this.#verifyAfterMs);
  }

  async #readManifest(path: string): Promise<void> {
    const { desired } = this.#opts;
    let read = await desired.read(path);
    for (const delay of this.#settle) {
      if (read.settled || this.#closed) break;
      await this.#sleep(delay);
      read = await desired.read(path);
    }
    if (!(await desired.present())) return;
    const affected = desired.commit(read);
    if (affected.size > 0) this.#opts.onAffected(affected);
    if (!read.settled) {
      // It was taken as it is (any errors it has logged as such); this says it was no write in progress.
      this.#opts.logger.warn('manifest file still looks half-written after retries; taken as it is', { file: path });
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.#opts.clock.setTimeout(resolve, ms));
  }

  async stop(): Promise<void> {
    this.#closed = true;
    await this.#watcher?.close();
    await Promise.allSettled([...this.#busy.values()]);
  }
}
