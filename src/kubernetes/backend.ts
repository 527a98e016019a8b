/**
 * The backend that runs servers on a Kubernetes cluster. It owns the cluster
 * client and its informers, the attach and port-forward links, and the
 * gateway in front of them: pod changes queue the manifest they came from,
 * liveness failures seen through a link are kept here as observed state, and
 * the cluster reconcilers it registers act on both. Nothing is adopted: the
 * cluster is the record of what runs, and it keeps running when apiary stops
 * (as under Flux).
 */
import { resourceKey, type ResourceKey } from '../api/names.js';
import type { Host, Reconciler } from '../api/runnable.js';
import type { Gateway } from '../mcp/gateway.js';
import { LivenessBook, openGateway, type Backend, type LivenessFailure, type SharedContext } from '../reconcilers/backend.js';
import type { StateLayout } from '../state/layout.js';
import type { KubeCluster } from './cluster.js';
import { ClusterLinks } from './links.js';
import { ClusterSecretReconciler, ClusterServerReconciler } from './reconcilers.js';

export interface ClusterOptions {
  cluster: KubeCluster;
  layout: StateLayout;
  shared: SharedContext;
  token?: string;
  /** The reconciler of hosted servers (spec.remote), which run in no pod: fronted from here as without a cluster. */
  hosted(gateway: Gateway, liveness: (name: string) => LivenessFailure | undefined): Reconciler;
}

export class Cluster implements Backend {
  readonly name = 'the Kubernetes informers and links';
  readonly #opts: ClusterOptions;
  readonly #liveness = new LivenessBook();
  #gateway: Gateway | undefined;
  #links: ClusterLinks | undefined;
  #servers: ClusterServerReconciler | undefined;

  constructor(options: ClusterOptions) {
    this.#opts = options;
  }

  get gateway(): Gateway {
    if (this.#gateway === undefined) throw new Error('the cluster backend has not started');
    return this.#gateway;
  }

  async start(host: Host): Promise<void> {
    const { cluster, shared, layout } = this.#opts;
    const { logger } = shared;
    const serverKey = (name: string): ResourceKey => resourceKey('MCPServer', name);
    const gateway = openGateway({
      layout,
      shared,
      host,
      ...(this.#opts.token !== undefined ? { token: this.#opts.token } : {}),
      liveness: this.#liveness,
    });
    this.#gateway = gateway;
    const links = new ClusterLinks({ config: cluster.config, namespace: cluster.namespace, gateway, logger, onChange: (name) => host.enqueue([serverKey(name)]) });
    this.#links = links;
    const liveness = (name: string): LivenessFailure | undefined => this.#liveness.get(name);
    const ctx = { ...shared, cluster, gateway, links, liveness };
    this.#servers = new ClusterServerReconciler(ctx, this.#opts.hosted(gateway, liveness));
    host.register('MCPServer', this.#servers);
    host.register('Secret', new ClusterSecretReconciler(ctx));
    await cluster.start(
      // A Secret that appears in the cluster also wakes the servers that wait for it.
      (kind, name) => {
        host.enqueue([resourceKey(kind === 'Secret' ? 'Secret' : 'MCPServer', name)]);
        host.changed();
      },
      (reachable) => {
        if (reachable.ok) logger.info('Kubernetes API server reachable again', { server: cluster.server });
        else logger.warn('Kubernetes API server unreachable; servers keep running there, status says so', { server: cluster.server, error: reachable.error });
        host.enqueueAll();
      },
    );
    logger.info('running servers on Kubernetes', { context: cluster.context, namespace: cluster.namespace, server: cluster.server, synced: cluster.synced });
  }

  /** What apiary made on the cluster and has no manifest any more is pruned by its reconciler. */
  keys(): ResourceKey[] {
    const managed = this.#opts.cluster.managedNames();
    return [...managed.MCPServer.map((name) => resourceKey('MCPServer', name)), ...managed.Secret.map((name) => resourceKey('Secret', name))];
  }

  async resync(): Promise<void> {
    await this.#gateway?.ports.repair().catch((err: unknown) => this.#opts.shared.logger.warn('cannot rewrite the ports file', { error: String(err) }));
  }

  requestRestart(name: string, requestedAt: string): boolean {
    return this.#servers?.requestRestart(name, requestedAt) ?? false;
  }

  /** Servers on a cluster outlive apiary: nothing here to kill. */
  killAll(): number {
    return 0;
  }

  processes(): string[] {
    return [];
  }

  /** Only the informers and the links stop; the servers keep running on the cluster. */
  async stop(): Promise<void> {
    await this.#opts.cluster.stop();
    await this.#links?.closeAll();
    await this.#gateway?.closeAll();
    await this.#gateway?.ports.flush();
  }
}
