// TEMPORARY adapter (replaced by the queued GitRepository reconciler being written in parallel).
import { resourceKey, type ResourceKey } from '../api/names.js';
import type { Host, ReconcileResult } from '../api/runnable.js';
import { GitSource, type GitSourceOptions } from '../source/git-source.js';
import { readReconcileRequest } from '../state/requests.js';
import { join } from 'node:path';
import { StateLayout } from '../state/layout.js';

export class GitRepositoryReconciler {
  readonly name = 'the git source';
  readonly #source: GitSource;
  readonly #root: string;
  #last: string | undefined;
  constructor(options: Omit<GitSourceOptions, 'applied'> & { applied(revision: string): Promise<void> }) {
    this.#root = options.root;
    this.#source = new GitSource({ ...options, applied: (revision) => options.applied(revision) });
  }
  get revision(): string | undefined { return this.#source.revision; }
  get path(): string { return this.#source.path; }
  get documents() { return this.#source.documents; }
  async start(host: Host): Promise<void> { await this.#source.init(); host.register('GitRepository', this); }
  started(): void { this.#source.start(); }
  keys(): ResourceKey[] { return [resourceKey('GitRepository', 'x')]; }
  async reconcile(): Promise<ReconcileResult> {
    const request = await readReconcileRequest(new StateLayout(join(this.#root, '..'))).catch(() => undefined);
    if (request !== undefined && request.requestedAt !== this.#last) { this.#last = request.requestedAt; this.#source.requestReconcile(request.requestedAt); }
    return {};
  }
  resync(): Promise<void> { return this.#source.resync(); }
  stop(): Promise<void> { return this.#source.stop(); }
}
