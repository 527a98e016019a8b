/**
 * The controller: source -> queue -> one reconciler per kind -> runtime ->
 * status. File events and process exits only enqueue keys; reconcilers read
 * the world afresh each time (level-triggered). A periodic resync catches
 * anything an event missed.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseResourceKey, resourceKey, type Kind, type ResourceKey } from '../api/names.js';
import type { MCPServerStatus } from '../api/status.js';
import type { KeyStore } from '../crypto/keys.js';
import { messageOf } from '../errors.js';
import { formatManifestError } from '../manifests/errors.js';
import type { ReconcileContext, ReconcileResult, Reconciler } from '../reconcilers/context.js';
import { MCPServerReconciler } from '../reconcilers/mcpserver.js';
import type { ServerMemory } from '../reconcilers/mcpserver-plan.js';
import { SecretReconciler } from '../reconcilers/secret.js';
import type { KubeCluster } from '../kubernetes/cluster.js';
import { ClusterSecretReconciler, ClusterServerReconciler } from '../kubernetes/reconcilers.js';
import { ClusterLinks } from '../kubernetes/links.js';
import { loadEndpointToken } from '../mcp/endpoint-token.js';
import { Gateway, type McpView } from '../mcp/gateway.js';
import { AGGREGATE_PORT_KEY } from '../mcp/ports.js';
import { SecretResolver } from '../reconcilers/secret-resolver.js';
import { inheritedEnvironment } from '../runtime/env.js';
import { ProcessRuntime } from '../runtime/process-runtime.js';
import type { Runtime } from '../runtime/runtime.js';
import { acquireControllerLock, type ControllerInfo, type ControllerLock } from '../state/controller-lock.js';
import { StateLayout } from '../state/layout.js';
import { RecordBook } from '../state/record-book.js';
import { clearRestartRequest, readReconcileRequest, readRestartRequests } from '../state/requests.js';
import { StatusStore } from '../state/status-store.js';
import type { StateViewInput } from '../state/view.js';
import { ensureDir, ensurePrivateDir, sweepTempFiles, writeFileAtomic } from '../util/atomic.js';
import { systemClock, type Clock } from '../util/clock.js';
import { DesiredState } from '../manifests/desired-state.js';
import type { Logger } from '../util/logger.js';
import { WorkQueue } from './queue.js';
import { ManifestSource } from './source.js';
import { GitSource } from '../source/git-source.js';
import { revisionStamp } from '../source/revision-stamp.js';
import { APIARY_VERSION } from '../util/version.js';

/** However long the first pass takes, servers started in it run after this. */
const FIRST_PASS_HOLD_MAX_MS = 2_000;

export interface ControllerOptions {
  dir: string;
  stateDir: string;
  keys: KeyStore;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  runtime?: Runtime;
  resyncMs?: number;
  workers?: number;
  /** Require the state directory's bearer token on every MCP endpoint (default true; up --no-auth). */
  auth?: boolean;
  /** Run the servers on this Kubernetes cluster instead of as local processes (up --runtime kubernetes). */
  cluster?: KubeCluster;
  /**
   * `dir` declares a GitRepository: the manifests that run are the
   * repository's, fetched into the state directory (up --git, or a
   * GitRepository manifest in --dir).
   */
  git?: boolean;
}

export class Controller {
  readonly #opts: ControllerOptions;
  readonly #clock: Clock;
  readonly #layout: StateLayout;
  readonly #desired: DesiredState;
  readonly #queue: WorkQueue<ResourceKey>;
  readonly #memory = new Map<string, ServerMemory>();
  #runtime!: Runtime;
  #gateway!: Gateway;
  #records!: RecordBook;
  #servers!: MCPServerReconciler;
  /** The Kubernetes runtime's server reconciler, when servers run on a cluster. */
  #clusterServers: ClusterServerReconciler | undefined;
  #links: ClusterLinks | undefined;
  /** One reconciler per kind, picked by the key's kind. */
  #reconcilers = new Map<Kind, Reconciler>();
  #source: ManifestSource | undefined;
  /** The git repository the manifests come from, when following one. */
  #git: GitSource | undefined;
  #lock: ControllerLock | undefined;
  #workers: Promise<void>[] = [];
  #resyncTimer: { cancel(): void } | undefined;
  #stopping = false;
  #dirMissing = false;
  #lastReconcileRequest: string | undefined;
  #reconcilePoll: { cancel(): void } | undefined;
  #requestWatcher: FSWatcher | undefined;
  readonly #observers = new Set<() => void>();
  info: ControllerInfo | undefined;
  /** The aggregate MCP endpoint (every Ready server's tools at one URL), once it listens. */
  aggregateUrl: string | undefined;

  constructor(options: ControllerOptions) {
    this.#opts = options;
    this.#clock = options.clock ?? systemClock;
    this.#layout = new StateLayout(options.stateDir);
    this.#desired = new DesiredState(
      options.git === true ? this.#layout.gitCurrent : options.dir,
      (w) => options.logger.warn('manifest warning', { warning: formatManifestError(w) }),
      (e) => options.logger.warn(e.code === 'Unreadable' ? 'manifest file unreadable' : 'invalid manifest', { error: formatManifestError(e) }),
    );
    this.#queue = new WorkQueue<ResourceKey>({ clock: this.#clock });
  }

  get desired(): DesiredState {
    return this.#desired;
  }

  /**
   * Hears that what readers see may have changed: a manifest was re-read or a
   * status record was written. Level, not edge: the listener reads a fresh
   * snapshot; it is not told what changed.
   */
  observe(listener: () => void): () => void {
    this.#observers.add(listener);
    return () => this.#observers.delete(listener);
  }

  #changed(): void {
    for (const listener of this.#observers) listener();
  }

  /** What a live reader composes its view from: the manifests as last read, and every status record as last written. */
  snapshot(): StateViewInput {
    const documents = this.#git !== undefined ? [...this.#git.documents, ...this.#desired.documents()] : this.#desired.documents();
    return { documents, records: this.#records?.all() ?? [], ...(this.info ? { controller: this.info } : {}) };
  }

  /** What the MCP side knows of a server now (its handshake, the tools it listed). */
  mcpView(name: string): McpView | undefined {
    return this.#gateway?.view(name);
  }

  async start(): Promise<void> {
    const { logger } = this.#opts;
    // 1. One controller per state directory, which only its owner may enter.
    await ensurePrivateDir(this.#layout.root);
    const lock = await acquireControllerLock(this.#layout, this.#opts.dir, APIARY_VERSION);
    this.#lock = lock;
    this.info = lock.info;
    try {
      await this.#startInner(lock.info);
    } catch (err) {
      await lock.release();
      throw err;
    }
    logger.info('controller started', { dir: this.#opts.dir, stateDir: this.#opts.stateDir, pid: process.pid });
  }

  async #startInner(info: ControllerInfo): Promise<void> {
    const { logger } = this.#opts;
    // Writers killed mid-write (a controller, a CLI verb) leave hidden temp files; under the lock none is live.
    for (const folder of this.#layout.writtenFolders()) await sweepTempFiles(folder);
    const stateKey = await loadStateKey(this.#layout);
    const store = new StatusStore(this.#layout);
    this.#records = new RecordBook(store, this.#clock, { pid: info.pid, runId: info.runId }, this.#opts.git === true ? revisionStamp(() => this.#git?.revision) : undefined);
    this.#records.onWrite(() => this.#changed());
    for (const problem of await this.#records.load()) {
      logger.warn('status file unreadable; rebuilding it from the world', { file: problem.file, error: problem.error });
    }
    this.#runtime = this.#opts.runtime ?? new ProcessRuntime({ layout: this.#layout, clock: this.#clock });

    const token = this.#opts.auth === false ? undefined : await loadEndpointToken(this.#layout);
    this.#gateway = new Gateway({
      ...(token !== undefined ? { token } : {}),
      clock: this.#clock,
      logger,
      layout: this.#layout,
      onChange: (name) => this.#queue.add(resourceKey('MCPServer', name)),
      recoverPorts: () => ({ ...portsFromStatus(this.#records), ...(this.aggregateUrl !== undefined ? { [AGGREGATE_PORT_KEY]: Number(new URL(this.aggregateUrl).port) } : {}) }),
      onUnhealthy: (name, pid, message, reason) => {
        if (this.#clusterServers !== undefined) void this.#clusterServers.markUnhealthy(name, message);
        else this.#servers.markUnhealthy(name, pid, message, reason);
        this.#queue.add(resourceKey('MCPServer', name));
      },
    });
    const ctx: ReconcileContext = {
      desired: this.#desired,
      runtime: this.#runtime,
      gateway: this.#gateway,
      secrets: new SecretResolver(this.#opts.keys),
      records: this.#records,
      memory: this.#memory,
      clock: this.#clock,
      logger,
      inheritedEnv: inheritedEnvironment(this.#opts.env ?? process.env),
      restartHandled: (name, requestedAt) => clearRestartRequest(this.#layout, { name, requestedAt }),
      fingerprint: (value) => createHmac('sha256', stateKey).update(value).digest('hex').slice(0, 16),
    };
    this.#servers = new MCPServerReconciler(ctx);
    const cluster = this.#opts.cluster;
    if (cluster !== undefined) await this.#startCluster(ctx, cluster);
    else await this.#startProcesses(ctx);

    const aggregate = await this.#gateway.startAggregate(APIARY_VERSION);
    if ('url' in aggregate) {
      this.aggregateUrl = aggregate.url;
      logger.info('aggregate MCP endpoint listening', { url: aggregate.url });
    } else {
      logger.warn('aggregate MCP endpoint unavailable', { error: aggregate.error });
    }

    // 3. Desired state, then the watcher (or the git source), then workers.
    if (this.#opts.git === true) await this.#startGit();
    const { unsettled } = await this.#desired.scan();
    if (this.#git === undefined) {
      this.#source = new ManifestSource({ desired: this.#desired, clock: this.#clock, logger, onAffected: (keys) => this.#enqueue(keys) });
      await this.#source.start();
      // A file that looked half-written is read again now, as after a resync, not left unread (and unreported) until one.
      for (const path of unsettled) this.#source.touch(path);
    }
    await this.#watchRequests();
    const workers = this.#opts.workers ?? 16;
    for (let i = 0; i < workers; i++) this.#workers.push(this.#work());
    // The first pass starts everything at once: hold the new processes until it is recorded.
    this.#runtime.holdStarts?.();
    const release = (): void => this.#runtime.releaseHeld?.();
    const cap = this.#clock.setTimeout(release, FIRST_PASS_HOLD_MAX_MS);
    this.#enqueueAll();
    void this.#queue.idle().then(() => {
      cap.cancel();
      release();
    });
    this.#scheduleResync();
    if (this.#git !== undefined) {
      this.#git.start();
      this.#pollReconcileRequests();
    }
  }

  /**
   * Following a git repository: what the last run switched to runs until a
   * newer good revision is fetched; each one applied re-reads every file and
   * reconciles everything (each status then names the revision).
   */
  async #startGit(): Promise<void> {
    const { logger } = this.#opts;
    const git = new GitSource({
      root: this.#layout.gitDir,
      sourceDir: this.#opts.dir,
      records: this.#records,
      clock: this.#clock,
      logger,
      ...(this.#opts.env !== undefined ? { env: this.#opts.env } : {}),
      applied: async () => {
        const { affected, unsettled } = await this.#desired.scan({ reread: true });
        if (unsettled.length > 0) logger.warn('files of the revision could not be read whole', { files: unsettled });
        this.#enqueue(affected);
        this.#enqueueAll();
      },
    });
    await git.init();
    const current = git.manifestDir;
    this.#desired.setDisplay((path) => join(git.path, relative(current, path)));
    this.#git = git;
    logger.info('following a git repository', { revision: git.revision ?? 'none yet' });
  }

  /** Servers as local processes: adopt what an earlier controller left running, hear exits. */
  async #startProcesses(ctx: ReconcileContext): Promise<void> {
    const { logger } = this.#opts;
    this.#reconcilers = new Map<Kind, Reconciler>([
      ['MCPServer', this.#servers],
      ['Secret', new SecretReconciler(ctx)],
    ]);

    // 2. What an earlier controller left running.
    const adoption = await this.#runtime.adopt();
    for (const p of adoption.adopted) {
      // The runtime's history starts anew with this controller: carry the restart count over from status.
      const restarts = (this.#records.get('MCPServer', p.name)?.status as { restartCount?: number } | undefined)?.restartCount;
      if (restarts !== undefined) this.#runtime.amendHistory(p.name, { restartCount: restarts });
      logger.info('adopted running server', { server: p.name, pid: p.pid });
    }
    for (const g of adoption.gone) logger.info('server from an earlier run is gone', { server: g.name, pid: g.pid });
    for (const u of adoption.unreadable) logger.warn('process record unreadable; its process is looked for by its log file', { file: u.file, error: u.error });
    for (const s of adoption.strays) logger.warn(s.action === 'adopted' ? 'found a server without its record; adopted it' : 'found a second copy of a server; killed it', { server: s.name, pid: s.pid });
    this.#runtime.onExit((name, termination) => {
      if (termination.pid !== undefined) this.#gateway.detach(name, termination.pid, `the server process exited (${termination.reason})`);
      this.#servers.onExit(name, termination);
      this.#queue.add(resourceKey('MCPServer', name));
    });
  }

  /**
   * Servers on a Kubernetes cluster: the cluster reconcilers, and the
   * informers, whose changes enqueue the manifest they came from. Nothing is
   * adopted: the cluster is the record of what runs.
   */
  async #startCluster(ctx: ReconcileContext, cluster: KubeCluster): Promise<void> {
    const { logger } = this.#opts;
    const links = new ClusterLinks({ config: cluster.config, namespace: cluster.namespace, gateway: this.#gateway, logger, onChange: (name) => this.#queue.add(resourceKey('MCPServer', name)) });
    this.#links = links;
    const clusterCtx = { ...ctx, cluster, links };
    this.#clusterServers = new ClusterServerReconciler(clusterCtx, this.#servers);
    this.#reconcilers = new Map<Kind, Reconciler>([
      ['MCPServer', this.#clusterServers],
      ['Secret', new ClusterSecretReconciler(clusterCtx)],
    ]);
    await cluster.start(
      // A Secret that appears in the cluster also wakes the servers that wait for it.
      (kind, name) => this.#enqueue([resourceKey(kind === 'Secret' ? 'Secret' : 'MCPServer', name)]),
      (reachable) => {
        if (reachable.ok) logger.info('Kubernetes API server reachable again', { server: cluster.server });
        else logger.warn('Kubernetes API server unreachable; servers keep running there, status says so', { server: cluster.server, error: reachable.error });
        this.#enqueueAll();
      },
    );
    logger.info('running servers on Kubernetes', { context: cluster.context, namespace: cluster.namespace, server: cluster.server, synced: cluster.synced });
  }

  /** Rollout restarts asked for through the CLI (files in the state directory). */
  async #watchRequests(): Promise<void> {
    await ensureDir(this.#layout.requestsDir);
    this.#requestWatcher = watch(this.#layout.requestsDir, () => void this.#readRequests());
    this.#requestWatcher.on('error', (err) => this.#opts.logger.warn('request watch error', { error: messageOf(err) }));
    await this.#readRequests();
  }

  async #readRequests(): Promise<void> {
    await this.#readReconcileRequest();
    for (const request of await readRestartRequests(this.#layout)) {
      if ((this.#clusterServers ?? this.#servers).requestRestart(request.name, request.requestedAt)) {
        this.#opts.logger.info('rollout restart requested', { server: request.name });
        this.#queue.add(resourceKey('MCPServer', request.name));
      }
    }
  }

  /** `apiary reconcile source`: a request not seen before is handed to the git source. */
  async #readReconcileRequest(): Promise<void> {
    if (this.#git === undefined) return;
    const request = await readReconcileRequest(this.#layout);
    if (request === undefined || request.requestedAt === this.#lastReconcileRequest) return;
    this.#lastReconcileRequest = request.requestedAt;
    this.#opts.logger.info('source reconcile requested', { requestedAt: request.requestedAt });
    this.#git.requestReconcile(request.requestedAt);
  }

  /**
   * The request file is also read every second while following git: a watch
   * event can be missed (one CI run waited past 20 s for a request), and a
   * person waiting on `reconcile source` should not wait for the resync.
   */
  #pollReconcileRequests(): void {
    this.#reconcilePoll = this.#clock.setTimeout(() => {
      void this.#readReconcileRequest().finally(() => {
        if (!this.#stopping) this.#pollReconcileRequests();
      });
    }, 1_000);
  }

  /** Enqueues keys, and for each Secret every MCPServer that references it (the one cross-kind mapping). */
  #enqueue(keys: Iterable<ResourceKey>): void {
    this.#changed();
    if (this.#awaitingRevision()) return;
    const secrets = new Set<string>();
    for (const key of keys) {
      this.#queue.add(key);
      const { kind, name } = parseResourceKey(key);
      if (kind === 'Secret') secrets.add(name);
    }
    for (const secret of secrets) {
      for (const server of this.#desired.serversUsingSecret(secret)) this.#queue.add(resourceKey('MCPServer', server));
    }
  }

  /**
   * Following git with no revision yet (the first fetch has not succeeded):
   * nothing is reconciled, so what an earlier run left running is neither
   * pruned nor restarted until there is a revision to compare it with.
   */
  #awaitingRevision(): boolean {
    return this.#git !== undefined && this.#git.revision === undefined;
  }

  #enqueueAll(): void {
    if (this.#awaitingRevision()) return;
    const keys = new Set<ResourceKey>([...this.#desired.keys(), ...this.#records.keys()]);
    for (const p of this.#runtime.list()) keys.add(resourceKey('MCPServer', p.name));
    // On a cluster, what apiary made there and has no manifest any more is pruned by its reconciler.
    const managed = this.#opts.cluster?.managedNames();
    for (const name of managed?.MCPServer ?? []) keys.add(resourceKey('MCPServer', name));
    for (const name of managed?.Secret ?? []) keys.add(resourceKey('Secret', name));
    for (const key of keys) this.#queue.add(key);
  }

  #scheduleResync(): void {
    const resyncMs = this.#opts.resyncMs ?? 30_000;
    this.#resyncTimer = this.#clock.setTimeout(() => {
      void this.resync().finally(() => {
        if (!this.#stopping) this.#scheduleResync();
      });
    }, resyncMs);
  }

  /** Resolves when every queued key has been reconciled. */
  idle(): Promise<void> {
    return this.#queue.idle();
  }

  /** Re-reads changed files and reconciles everything. */
  async resync(): Promise<void> {
    await this.#lock?.repairInfo().catch((err: unknown) => this.#opts.logger.warn('cannot rewrite controller.json', { error: messageOf(err) }));
    const { affected, unsettled, missing } = await this.#desired.scan();
    if (missing && this.#git !== undefined) {
      // No revision fetched yet: the source's status says why.
    } else if (missing) {
      if (!this.#dirMissing) this.#opts.logger.warn('manifest directory is gone; keeping every server as it is until it is back', { dir: this.#opts.dir });
      this.#dirMissing = true;
    } else if (this.#dirMissing) {
      this.#dirMissing = false;
      this.#opts.logger.info('manifest directory is back; watching it again', { dir: this.#opts.dir });
      await this.#source?.restart();
    }
    this.#enqueue(affected);
    for (const path of unsettled) this.#source?.touch(path);
    this.#enqueueAll();
    await this.#readRequests();
    await this.#git?.resync().catch((err: unknown) => this.#opts.logger.warn('cannot read the GitRepository', { error: messageOf(err) }));
    await this.#runtime.maintain().catch((err: unknown) => this.#opts.logger.warn('runtime upkeep failed', { error: messageOf(err) }));
    await this.#gateway.ports.repair().catch((err: unknown) => this.#opts.logger.warn('cannot rewrite the ports file', { error: messageOf(err) }));
  }

  async #work(): Promise<void> {
    for (;;) {
      const key = await this.#queue.get();
      if (key === undefined) return;
      try {
        const result = await this.#reconcile(key);
        this.#queue.forget(key);
        if (result.requeueAfterMs !== undefined) this.#queue.addAfter(key, result.requeueAfterMs);
      } catch (err) {
        const delay = this.#queue.addRateLimited(key);
        this.#opts.logger.error('reconcile failed', { key, error: messageOf(err), retryInMs: delay });
      } finally {
        this.#queue.done(key);
      }
    }
  }

  #reconcile(key: ResourceKey): Promise<ReconcileResult> {
    const { kind, name } = parseResourceKey(key);
    // A GitRepository is reconciled by its source's own loop (fetch interval, reconcile requests), not by the queue.
    return this.#reconcilers.get(kind)?.reconcile(name) ?? Promise.resolve({});
  }

  /**
   * A second Ctrl-C: no more grace. Every server's process group gets SIGKILL
   * now, synchronously, so none that ignores SIGTERM outlives the controller
   * with its secrets in its environment (docker compose does the same).
   */
  killServersNow(): number {
    return this.#runtime?.killAll?.() ?? 0;
  }

  /** Where a stop in progress is, and what it waits for: for a log line when it takes long. */
  stopProgress(): { step: string; busy: string[]; processes: string[] } {
    return { step: this.#stopStep, busy: this.#queue.busy(), processes: (this.#runtime?.list() ?? []).map((p) => `${p.name}/${p.slot} pid ${p.pid}${p.stopping ? ' (stopping)' : ''}`) };
  }

  #stopStep = 'not stopping';

  /** Stops watching, stops every server gracefully, records that, and releases the lock. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#resyncTimer?.cancel();
    this.#reconcilePoll?.cancel();
    this.#requestWatcher?.close();
    this.#runtime?.releaseHeld?.();
    this.#stopStep = 'stopping the manifest watcher';
    await this.#git?.stop();
    await this.#source?.stop();
    this.#queue.shutDown();
    this.#stopStep = 'waiting for reconciles in progress to finish';
    await Promise.allSettled(this.#workers);
    // Servers on a cluster keep running there without apiary (as under Flux): only the informers stop.
    this.#stopStep = 'stopping the Kubernetes informers';
    await this.#opts.cluster?.stop();
    const running = this.#runtime?.list() ?? [];
    this.#opts.logger.info('stopping servers', { count: running.length });
    this.#stopStep = 'stopping servers';
    await Promise.allSettled(running.map((p) => this.#runtime.stop(p.name, p.slot)));
    this.#stopStep = 'closing the MCP endpoints';
    await this.#links?.closeAll();
    await this.#gateway?.closeAll();
    await this.#gateway?.ports.flush();
    this.#stopStep = 'recording that the servers stopped';
    for (const name of new Set(running.map((p) => p.name))) await this.#servers.markControllerStopped(name).catch(() => undefined);
    this.#stopStep = 'releasing the controller lock';
    await this.#lock?.release();
    this.#stopStep = 'stopped';
    this.#opts.logger.info('controller stopped');
  }
}

/** The port in each server's status URL: what a lost ports file is rebuilt from. */
function portsFromStatus(records: RecordBook): Record<string, number> {
  const ports: Record<string, number> = {};
  for (const key of records.keys()) {
    const { kind, name } = parseResourceKey(key);
    const url = kind === 'MCPServer' ? (records.get(kind, name)?.status as MCPServerStatus | undefined)?.url : undefined;
    const port = url !== undefined && URL.canParse(url) ? Number(new URL(url).port) : NaN;
    if (Number.isInteger(port) && port > 0) ports[name] = port;
  }
  return ports;
}

/** A random per-state-directory key for fingerprints of secret values (never the values themselves). */
async function loadStateKey(layout: StateLayout): Promise<Buffer> {
  try {
    const key = Buffer.from((await readFile(layout.stateKeyFile, 'utf8')).trim(), 'base64');
    if (key.length === 32) return key;
  } catch {
    // Created below.
  }
  const key = randomBytes(32);
  await writeFileAtomic(layout.stateKeyFile, key.toString('base64'));
  return key;
}
