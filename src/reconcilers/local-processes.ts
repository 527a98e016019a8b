/**
 * The backend that runs servers as local processes. It owns the process
 * runtime and the gateway in front of it: it adopts what an earlier
 * controller left running, hears every exit of the processes it started and
 * detaches their bridges itself, keeps the liveness failures the gateway
 * reports (observed state, like the runtime's run history), and registers
 * the MCPServer and Secret reconcilers, which read all of that afresh.
 */
import { resourceKey, type ResourceKey } from '../api/names.js';
import type { Host, Reconciler } from '../api/runnable.js';
import type { Gateway } from '../mcp/gateway.js';
import type { Runtime } from '../runtime/runtime.js';
import { ProcessRuntime } from '../runtime/process-runtime.js';
import type { StateLayout } from '../state/layout.js';
import type { Timer } from '../util/clock.js';
import { LivenessBook, openGateway, serverKeys, type Backend, type LivenessFailure, type SharedContext } from './backend.js';
import type { ReconcileContext } from './context.js';
import { MCPServerReconciler } from './mcpserver.js';
import { SecretReconciler } from './secret.js';

/** However long the first pass takes, servers started in it run after this. */
const FIRST_PASS_HOLD_MAX_MS = 2_000;

export interface LocalProcessesOptions {
  layout: StateLayout;
  shared: SharedContext;
  /** The bearer token every endpoint requires; absent: none (up --no-auth). */
  token?: string;
  /** The process runtime (tests hand in a fake); a ProcessRuntime in the state directory by default. */
  runtime?: Runtime;
}

export class LocalProcesses implements Backend {
  readonly name = 'the local servers';
  readonly #opts: LocalProcessesOptions;
  readonly #runtime: Runtime;
  readonly #liveness = new LivenessBook();
  #gateway: Gateway | undefined;
  #servers: MCPServerReconciler | undefined;
  #host: Host | undefined;
  #holdCap: Timer | undefined;

  constructor(options: LocalProcessesOptions) {
    this.#opts = options;
    this.#runtime = options.runtime ?? new ProcessRuntime({ layout: options.layout, clock: options.shared.clock });
  }

  get gateway(): Gateway {
    if (this.#gateway === undefined) throw new Error('the local backend has not started');
    return this.#gateway;
  }

  async start(host: Host): Promise<void> {
    const { shared, layout } = this.#opts;
    this.#host = host;
    const gateway = openGateway({
      layout,
      shared,
      host,
      ...(this.#opts.token !== undefined ? { token: this.#opts.token } : {}),
      liveness: this.#liveness,
    });
    this.#gateway = gateway;
    // A stdio server's stderr reaches its log redacted like its stdout's stray lines (the same redactor, the same events).
    this.#runtime.setOutputFilter?.((name, line) => gateway.redactLine(name, line));
    this.#runtime.onEgressDenied?.((name, target) => {
      shared.records.event('MCPServer', name, 'Warning', 'EgressDenied', `the sandbox's egress proxy refused ${printableTarget(target)}: it is not in spec.sandbox.allow (each refusal is in the server's log)`);
      // The event is written with the server's next status.
      host.enqueue([resourceKey('MCPServer', name)]);
    });
    const ctx: ReconcileContext = { ...shared, runtime: this.#runtime, gateway, memory: new Map(), liveness: (name) => this.#liveness.get(name) };
    const servers = new MCPServerReconciler(ctx);
    this.#servers = servers;
    host.register('MCPServer', servers);
    host.register('Secret', new SecretReconciler(ctx));

    await this.#adopt();
    this.#runtime.onExit((name, termination) => {
      if (termination.pid !== undefined) gateway.detach(name, termination.pid, `the server process exited (${termination.reason})`);
      this.#liveness.forget(name, termination.pid);
      servers.onExit(name, termination);
      host.enqueue([resourceKey('MCPServer', name)]);
    });
    // The first pass starts everything at once: its new processes are held until it is recorded (or stopping begins).
    this.#runtime.holdStarts?.();
    host.signal.addEventListener('abort', () => this.#release(), { once: true });
  }

  /** What an earlier controller left running is adopted; its restart count carries over from status. */
  async #adopt(): Promise<void> {
    const { records, logger } = this.#opts.shared;
    const adoption = await this.#runtime.adopt();
    for (const p of adoption.adopted) {
      const restarts = (records.get('MCPServer', p.name)?.status as { restartCount?: number } | undefined)?.restartCount;
      if (restarts !== undefined) this.#runtime.amendHistory(p.name, { restartCount: restarts });
      logger.info('adopted running server', { server: p.name, pid: p.pid });
    }
    for (const g of adoption.gone) logger.info('server from an earlier run is gone', { server: g.name, pid: g.pid });
    for (const u of adoption.unreadable) logger.warn('process record unreadable; its process is looked for by its log file', { file: u.file, error: u.error });
    for (const e of adoption.ended ?? []) logger.info('a sandboxed server from an earlier run was still running; ended it (it is reached only through the controller that started it), it starts again', { server: e.name, pid: e.pid });
    for (const s of adoption.strays) logger.warn(s.action === 'adopted' ? 'found a server without its record; adopted it' : 'found a second copy of a server; killed it', { server: s.name, pid: s.pid });
  }

  started(): void {
    this.#holdCap = this.#opts.shared.clock.setTimeout(() => this.#release(), FIRST_PASS_HOLD_MAX_MS);
    void this.#host?.idle().then(() => this.#release());
  }

  #release(): void {
    this.#holdCap?.cancel();
    this.#runtime.releaseHeld?.();
  }

  keys(): ResourceKey[] {
    return serverKeys(this.#runtime.list().map((p) => p.name));
  }

  async resync(): Promise<void> {
    const { logger } = this.#opts.shared;
    await this.#runtime.maintain().catch((err: unknown) => logger.warn('runtime upkeep failed', { error: String(err) }));
    await this.#gateway?.ports.repair().catch((err: unknown) => logger.warn('cannot rewrite the ports file', { error: String(err) }));
  }

  requestRestart(name: string, requestedAt: string): boolean {
    return this.#servers?.requestRestart(name, requestedAt) ?? false;
  }

  killAll(): number {
    return this.#runtime.killAll?.() ?? 0;
  }

  processes(): string[] {
    return this.#runtime.list().map((p) => `${p.name}/${p.slot} pid ${p.pid}${p.stopping ? ' (stopping)' : ''}`);
  }

  /** Stops every server gracefully, closes their endpoints, and records that they stopped with the controller. */
  async stop(): Promise<void> {
    const { logger } = this.#opts.shared;
    this.#release();
    const running = this.#runtime.list();
    logger.info('stopping servers', { count: running.length });
    await Promise.allSettled(running.map((p) => this.#runtime.stop(p.name, p.slot)));
    await this.#gateway?.closeAll();
    await this.#gateway?.ports.flush();
    for (const name of new Set(running.map((p) => p.name))) await this.#servers?.markControllerStopped(name).catch(() => undefined);
  }
}

/**
 * Hosted servers (spec.remote) run no process anywhere: on a cluster they
 * are fronted by the same reconciler as here, over a runtime that never
 * starts one. The Cluster backend is handed this, as it may not import the
 * process runtime.
 */
export function hostedServers(layout: StateLayout, shared: SharedContext): (gateway: Gateway, liveness: (name: string) => LivenessFailure | undefined) => Reconciler {
  return (gateway, liveness) => new MCPServerReconciler({ ...shared, runtime: new ProcessRuntime({ layout, clock: shared.clock }), gateway, memory: new Map(), liveness });
}

/** What the server asked for is its own text: cut, and anything but a host:port's characters shown as `?`, before an event quotes it. */
function printableTarget(target: string): string {
  const shown = target.replace(/[^A-Za-z0-9.:[\]_-]/g, '?');
  return shown.length > 260 ? `${shown.slice(0, 259)}…` : shown;
}
