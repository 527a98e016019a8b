/**
 * The composition root: it opens the state directory (the lock, the status
 * records), builds the manager and hands it what it runs — the audit log
 * and telemetry, a backend (local processes, or a Kubernetes cluster), the
 * desired state's source (the manifest watcher, or the git source), the
 * access settings (Gateway and AccessPolicies), the aggregate MCP endpoint,
 * and the request watcher. The manager starts them in that order and knows
 * nothing of what each is; the mode is chosen here, once.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { toolsApprovalRecord } from '../api/audit.js';
import type { AccessConfig } from '../api/gate.js';
import { GATEWAY_NAME } from '../api/manifests.js';
import { parseResourceKey, resourceKey, type ResourceKey } from '../api/names.js';
import type { Runnable } from '../api/runnable.js';
import type { KeyStore } from '../crypto/keys.js';
import { Cluster } from '../kubernetes/backend.js';
import type { KubeCluster } from '../kubernetes/cluster.js';
import { DesiredState } from '../manifests/desired-state.js';
import { formatManifestError } from '../manifests/errors.js';
import { AggregateEndpoint } from '../mcp/aggregate-endpoint.js';
import { loadEndpointToken } from '../mcp/endpoint-token.js';
import { createTokenVerifier } from '../mcp/oidc-verifier.js';
import { createRateLimiter } from '../api/rate-limit.js';
import type { McpView } from '../mcp/gateway.js';
import type { Backend, SharedContext } from '../reconcilers/backend.js';
import { GitRepositoryReconciler } from '../reconcilers/gitrepository.js';
import { hostedServers, LocalProcesses } from '../reconcilers/local-processes.js';
import { AccessControl, isAccessKey, type AccessParts } from '../reconcilers/access.js';
import { SecretResolver } from '../reconcilers/secret-resolver.js';
import { inheritedEnvironment } from '../runtime/env.js';
import type { Runtime } from '../runtime/runtime.js';
import { acquireControllerLock, type ControllerInfo, type ControllerLock } from '../state/controller-lock.js';
import { StateLayout } from '../state/layout.js';
import { RecordBook } from '../state/record-book.js';
import { clearRestartRequest } from '../state/requests.js';
import { StatusStore } from '../state/status-store.js';
import type { StateViewInput } from '../state/view.js';
import { ensurePrivateDir, sweepTempFiles, writeFileAtomic } from '../util/atomic.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { APIARY_VERSION } from '../util/version.js';
import { messageOf } from '../errors.js';
import { AuditLogRunnable, TelemetryRunnable } from './access-runnables.js';
import { Manager } from './manager.js';
import { LockRecord, ManifestWatcher, RequestWatcher } from './runnables.js';

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
  /** The token verifier, rate limiter and telemetry the Gateway's settings are built with (tests hand in their own). */
  access?: AccessParts;
}

/**
 * The parts step 17's access settings are built from (the verifier, the
 * limiter, telemetry), connected here and nowhere else; tests replace them
 * through ControllerOptions.access. OpenTelemetry is imported only when a
 * Gateway has spec.telemetry: the SDK costs ~140 ms of CPU to load.
 */
function accessParts(logger: Logger, clock: Clock): AccessParts {
  return {
    verifier: (oidc, onUnavailable) => createTokenVerifier({ ...oidc, onUnavailable }),
    limiter: (gateway, perServer) => createRateLimiter(gateway, perServer, () => clock.now()),
    telemetry: async (spec) => (await import('../mcp/otel.js')).openTelemetry(spec, { logger }),
  };
}

export class Controller {
  readonly #opts: ControllerOptions;
  readonly #clock: Clock;
  readonly #layout: StateLayout;
  readonly #desired: DesiredState;
  readonly #manager: Manager;
  readonly #extra: Runnable[] = [];
  #records: RecordBook | undefined;
  #backend: Backend | undefined;
  #aggregate: AggregateEndpoint | undefined;
  #git: GitRepositoryReconciler | undefined;
  #access: AccessControl | undefined;
  #lock: ControllerLock | undefined;
  #stopping = false;
  info: ControllerInfo | undefined;

  constructor(options: ControllerOptions) {
    this.#opts = options;
    this.#clock = options.clock ?? systemClock;
    this.#layout = new StateLayout(options.stateDir);
    this.#desired = new DesiredState(
      options.git === true ? this.#layout.gitCurrent : options.dir,
      (w) => options.logger.warn('manifest warning', { warning: formatManifestError(w) }),
      (e) => options.logger.warn(e.code === 'Unreadable' ? 'manifest file unreadable' : 'invalid manifest', { error: formatManifestError(e) }),
    );
    const desired = this.#desired;
    this.#manager = new Manager({
      clock: this.#clock,
      logger: options.logger,
      ...(options.resyncMs !== undefined ? { resyncMs: options.resyncMs } : {}),
      ...(options.workers !== undefined ? { workers: options.workers } : {}),
      // The manifests' keys come from the manifest watcher (a runnable's keys()); these are what status remembers.
      keys: () => this.#records?.keys() ?? [],
      // The cross-kind mappings: a Secret wakes every MCPServer that references it; an MCPServer, the Gateway.
      wakes: (key) => {
        const { kind, name } = parseResourceKey(key);
        if (kind === 'Secret') return desired.serversUsingSecret(name).map((server) => resourceKey('MCPServer', server));
        // A server's spec.rateLimits is part of the Gateway's limiter: its changes reach the access reconciler.
        return kind === 'MCPServer' ? [resourceKey('Gateway', GATEWAY_NAME)] : [];
      },
      // Following git with no revision yet (the first fetch has not succeeded), only the source is reconciled:
      // what an earlier run left running is neither pruned nor restarted until there is a revision to compare it with.
      admit: (key) => this.#git === undefined || this.#git.revision !== undefined || parseResourceKey(key).kind === 'GitRepository',
    });
  }

  get desired(): DesiredState {
    return this.#desired;
  }

  /** The aggregate MCP endpoint (every Ready server's tools at one URL), once it listens. */
  get aggregateUrl(): string | undefined {
    return this.#aggregate?.url;
  }

  /** Runs `runnable` with the rest (the console): started last, stopped first. Before start() only. */
  add(runnable: Runnable): void {
    this.#extra.push(runnable);
  }

  /** Hears that what readers see may have changed. Level, not edge: the listener reads a fresh snapshot. */
  observe(listener: () => void): () => void {
    return this.#manager.observe(listener);
  }

  /** What a live reader composes its view from: the manifests as last read, and every status record as last written. */
  snapshot(): StateViewInput {
    const documents = this.#git !== undefined ? [...this.#git.documents, ...this.#desired.documents()] : this.#desired.documents();
    return { documents, records: this.#records?.all() ?? [], ...(this.info ? { controller: this.info } : {}) };
  }

  /** What every endpoint applies now (the Gateway's and the policies' settings), once the backend has started. */
  accessConfig(): AccessConfig | undefined {
    return this.#backend?.gateway.gate.config;
  }

  /** What the MCP side knows of a server now (its handshake, the tools it listed). */
  mcpView(name: string): McpView | undefined {
    return this.#backend?.gateway.view(name);
  }

  async start(): Promise<void> {
    // One controller per state directory, which only its owner may enter.
    await ensurePrivateDir(this.#layout.root);
    const lock = await acquireControllerLock(this.#layout, this.#opts.dir, APIARY_VERSION);
    this.#lock = lock;
    this.info = lock.info;
    try {
      await this.#open(lock);
      await this.#manager.start();
    } catch (err) {
      await lock.release();
      throw err;
    }
    this.#opts.logger.info('controller started', { dir: this.#opts.dir, stateDir: this.#opts.stateDir, pid: process.pid });
  }

  /** Opens the state directory and hands the manager everything it runs, in the order it starts them. */
  async #open(lock: ControllerLock): Promise<void> {
    const { logger } = this.#opts;
    const info = lock.info;
    const layout = this.#layout;
    // Writers killed mid-write (a controller, a CLI verb) leave hidden temp files; under the lock none is live.
    for (const folder of layout.writtenFolders()) await sweepTempFiles(folder);
    const stateKey = await loadStateKey(layout);
    const records = new RecordBook(new StatusStore(layout), this.#clock, { pid: info.pid, runId: info.runId });
    this.#records = records;
    records.onWrite(() => this.#manager.changed());
    for (const problem of await records.load()) {
      logger.warn('status file unreadable; rebuilding it from the world', { file: problem.file, error: problem.error });
    }
    const token = this.#opts.auth === false ? undefined : await loadEndpointToken(layout);
    const git = this.#opts.git === true ? this.#gitSource(records) : undefined;
    const shared: SharedContext = {
      desired: this.#desired,
      secrets: new SecretResolver(this.#opts.keys),
      records,
      clock: this.#clock,
      logger,
      inheritedEnv: inheritedEnvironment(this.#opts.env ?? process.env),
      restartHandled: (name, requestedAt) => clearRestartRequest(layout, { name, requestedAt }),
      fingerprint: (value) => createHmac('sha256', stateKey).update(value).digest('hex').slice(0, 16),
    };
    const cluster = this.#opts.cluster;
    const backend: Backend =
      cluster !== undefined
        ? new Cluster({ cluster, layout, shared, hosted: hostedServers(layout, shared), ...(token !== undefined ? { token } : {}) })
        : new LocalProcesses({ layout, shared, ...(token !== undefined ? { token } : {}), ...(this.#opts.runtime !== undefined ? { runtime: this.#opts.runtime } : {}) });
    this.#backend = backend;
    this.#aggregate = new AggregateEndpoint(() => backend.gateway, APIARY_VERSION, logger);
    const parts = this.#opts.access ?? accessParts(logger, this.#clock);
    const audit = new AuditLogRunnable(layout, logger);
    const telemetry = new TelemetryRunnable(parts.telemetry, this.#clock, logger);
    this.#access = new AccessControl({ desired: this.#desired, records, clock: this.#clock, logger, gateway: () => backend.gateway, auth: this.#opts.auth !== false, parts, audit, telemetry });

    const manager = this.#manager;
    manager.add(new LockRecord(lock, logger));
    // Before the endpoints, so stopped after them: the last records flushed, the last spans exported.
    manager.add(audit);
    manager.add(telemetry);
    manager.add(backend);
    if (git !== undefined) manager.add(git);
    const access = this.#access;
    const applyFirst = { covers: (key: ResourceKey) => isAccessKey(key), apply: () => access.sync() };
    manager.add(new ManifestWatcher({ desired: this.#desired, clock: this.#clock, logger, watch: git === undefined, applyFirst, ...(git !== undefined ? { revision: () => git.revision } : {}) }));
    // Once the manifests are read and before any endpoint listens (the aggregate's, then each server's in its first
    // reconcile): the Gateway's settings applied, so no request is ever served under the settings of before.
    manager.add(this.#access);
    manager.add(this.#aggregate);
    manager.add(
      new RequestWatcher({
        layout,
        logger,
        restart: (name, requestedAt) => backend.requestRestart(name, requestedAt),
        // Recorded only while the Gateway keeps an audit log; a note left with the log off is dropped, as a call would be.
        approved: (note) => backend.gateway.gate.config.audit?.append(toolsApprovalRecord({ time: note.approvedAt, server: note.server, tools: note.tools, subject: note.subject })),
        ...(git !== undefined ? { sourceRequested: () => manager.enqueue(git.keys()) } : {}),
      }),
    );
    for (const runnable of this.#extra) manager.add(runnable);
  }

  /**
   * Following a git repository: what the last run switched to runs until a
   * newer good revision is fetched; each one applied re-reads every file
   * (each entry then knows its revision) and reconciles everything.
   */
  #gitSource(records: RecordBook): GitRepositoryReconciler {
    const { logger } = this.#opts;
    const git = new GitRepositoryReconciler({
      layout: this.#layout,
      sourceDir: this.#opts.dir,
      records,
      clock: this.#clock,
      logger,
      ...(this.#opts.env !== undefined ? { env: this.#opts.env } : {}),
      applied: async (revision) => {
        const { affected, unsettled } = await this.#desired.scan({ reread: true, revision });
        if (unsettled.length > 0) logger.warn('files of the revision could not be read whole', { files: unsettled });
        // The revision's Gateway and policies first: its servers' endpoints never serve under the settings of before.
        await this.#access?.sync().catch((err: unknown) => logger.warn('access settings not applied yet; the Gateway is reconciled again', { error: messageOf(err) }));
        this.#manager.enqueue(affected);
        this.#manager.enqueueAll();
        this.#manager.changed();
      },
    });
    this.#desired.setDisplay((path) => join(git.path, relative(this.#layout.gitCurrent, path)));
    this.#git = git;
    return git;
  }

  /** Resolves when every queued key has been reconciled. */
  idle(): Promise<void> {
    return this.#manager.idle();
  }

  /** Re-reads what an event may have missed and reconciles everything. */
  async resync(): Promise<void> {
    await this.#manager.resync();
  }

  /**
   * A second Ctrl-C: no more grace. Every server's process group gets SIGKILL
   * now, synchronously, so none that ignores SIGTERM outlives the controller
   * with its secrets in its environment (docker compose does the same).
   */
  killServersNow(): number {
    return this.#backend?.killAll() ?? 0;
  }

  /** Where a stop in progress is, and what it waits for: for a log line when it takes long. */
  stopProgress(): { step: string; busy: string[]; processes: string[] } {
    return { step: this.#manager.step, busy: this.#manager.busy(), processes: this.#backend?.processes() ?? [] };
  }

  /** Stops everything the manager runs (servers gracefully), then releases the lock. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    await this.#manager.stop();
    this.#access?.close();
    await this.#lock?.release();
    this.#opts.logger.info('controller stopped');
  }
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
