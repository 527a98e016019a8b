/**
 * apiary's one connection to a Kubernetes cluster, through
 * `@kubernetes/client-node`: server-side apply as field manager `apiary`,
 * deletes limited to what apiary labelled as its own, and informers (list,
 * then watch from the list's resourceVersion; a watch that ends is resumed
 * from the last version seen, a 410 Gone leads to a fresh list) over the
 * Deployments, pods, Services, Secrets and NetworkPolicies apiary manages. Reconcilers read
 * the informers' caches, never the API server, and hear of changes by name.
 * A lost API server is a state the reconcilers report, not a crash: failed
 * informers are restarted with back-off, and `reachable` says what failed.
 */
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  NetworkingV1Api,
  PatchStrategy,
  makeInformer,
  type Informer,
  type KubernetesObject,
  type ObjectCache,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ApiaryError, messageOf } from '../errors.js';
import { backoff } from '../util/backoff.js';
import type { Clock } from '../util/clock.js';
import { FIELD_MANAGER, KIND_LABEL, MANAGED_BY, NAME_LABEL, VALUES_HASH_ANNOTATION, type KubeObject } from './render.js';

export interface ClusterOptions {
  /** A kubeconfig context other than the current one. */
  context?: string;
  /** Where apiary's objects go (default: the context's namespace, else "default"). */
  namespace?: string;
  /** A kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster). */
  kubeconfig?: string;
  /** Where $KUBECONFIG and $HOME are read from (default: this process's environment). */
  env?: NodeJS.ProcessEnv;
}

export type ManagedKind = 'Deployment' | 'Pod' | 'Service' | 'Secret' | 'NetworkPolicy';
const KINDS: readonly ManagedKind[] = ['Deployment', 'Pod', 'Service', 'Secret', 'NetworkPolicy'];
const API_VERSION: Record<ManagedKind, string> = { Deployment: 'apps/v1', Pod: 'v1', Service: 'v1', Secret: 'v1', NetworkPolicy: 'networking.k8s.io/v1' };
const SELECTOR = `${MANAGED_BY}=${FIELD_MANAGER}`;
/**
 * Kinds apiary can run without watching: a Role written before apiary made
 * NetworkPolicies may not allow them. A 403 on their list is then no lost
 * cluster (every server would read ClusterUnreachable); it is retried like
 * any failure, and applying one is refused by the API server, by name, for
 * the sandboxed server that needs it.
 */
const OPTIONAL: ReadonlySet<ManagedKind> = new Set(['NetworkPolicy']);
/** An informer that failed is started again after 1 s, doubling to this. */
const RESTART_MAX_MS = 30_000;

export interface Reachability {
  ok: boolean;
  /** What the last failed request or watch said, when not ok. */
  error?: string;
  since: number;
}

type Watched = Informer<KubernetesObject> & ObjectCache<KubernetesObject>;

export class KubeCluster {
  readonly namespace: string;
  readonly context: string;
  readonly server: string;
  readonly #config: KubeConfig;
  readonly #objects: KubernetesObjectApi;
  readonly #clock: Clock;
  readonly #informers = new Map<ManagedKind, Watched>();
  readonly #synced = new Set<ManagedKind>();
  readonly #failures = new Map<ManagedKind, number>();
  readonly #timers = new Set<{ cancel(): void }>();
  #reachable: Reachability;
  #stopped = false;
  #onChange: (kind: ManagedKind, name: string) => void = () => undefined;
  #onReachability: (r: Reachability) => void = () => undefined;

  /** Reads the kubeconfig as kubectl does; a missing one or an unknown context is a clear error. */
  static load(options: ClusterOptions, clock: Clock): KubeCluster {
    const config = new KubeConfig();
    const env = options.env ?? process.env;
    const home = env['HOME'] ?? env['USERPROFILE'];
    const defaultFile = home !== undefined ? join(home, '.kube', 'config') : undefined;
    // client-node falls back to http://localhost:8080 when it finds nothing; kubectl says there is no configuration, and so does apiary.
    if (options.kubeconfig === undefined && !env['KUBECONFIG'] && !(defaultFile !== undefined && existsSync(defaultFile)) && env['KUBERNETES_SERVICE_HOST'] === undefined) {
      throw new ApiaryError('Usage', 'no Kubernetes cluster configured: no kubeconfig found ($KUBECONFIG is not set and ~/.kube/config does not exist)', {
        hints: ['point KUBECONFIG at a kubeconfig file, or pass --kubeconfig FILE (and --context NAME)'],
      });
    }
    try {
      if (options.kubeconfig !== undefined) config.loadFromFile(options.kubeconfig);
      else config.loadFromDefault();
    } catch (err) {
      throw new ApiaryError('Usage', `cannot read the kubeconfig${options.kubeconfig !== undefined ? ` ${options.kubeconfig}` : ''}: ${messageOf(err)}`);
    }
    if (options.context !== undefined) {
      if (config.getContextObject(options.context) === null) {
        throw new ApiaryError('Usage', `kubeconfig has no context "${options.context}"`, { hints: [`contexts: ${config.getContexts().map((c) => c.name).join(', ') || 'none'}`] });
      }
      config.setCurrentContext(options.context);
    }
    const cluster = config.getCurrentCluster();
    if (cluster === null) {
      throw new ApiaryError('Usage', 'no Kubernetes cluster configured: no kubeconfig context is current', {
        hints: ['point KUBECONFIG at a kubeconfig file, or pass --kubeconfig FILE and --context NAME'],
      });
    }
    const namespace = options.namespace ?? config.getContextObject(config.getCurrentContext())?.namespace ?? 'default';
    return new KubeCluster(config, namespace, clock);
  }

  constructor(config: KubeConfig, namespace: string, clock: Clock) {
    this.#config = config;
    this.namespace = namespace;
    this.context = config.getCurrentContext();
    this.server = config.getCurrentCluster()?.server ?? '';
    this.#objects = KubernetesObjectApi.makeApiClient(config);
    this.#clock = clock;
    this.#reachable = { ok: true, since: clock.now() };
  }

  /** The kubeconfig in use, for attach and port-forward. */
  get config(): KubeConfig {
    return this.#config;
  }

  get reachable(): Reachability {
    return this.#reachable;
  }

  /** Every informer has listed once: what the caches say is the cluster, not an empty start. */
  get synced(): boolean {
    return this.#synced.size === KINDS.length;
  }

  /**
   * Starts the informers. `onChange` hears the apiary name (label
   * apiary.dev/name) of every object that is added, changed or deleted;
   * `onReachability` hears the API server lost and found again. Resolves
   * once each informer has listed or failed its first try.
   */
  async start(onChange: (kind: ManagedKind, name: string) => void, onReachability: (r: Reachability) => void = () => undefined): Promise<void> {
    this.#onChange = onChange;
    this.#onReachability = onReachability;
    const core = this.#config.makeApiClient(CoreV1Api);
    const apps = this.#config.makeApiClient(AppsV1Api);
    const networking = this.#config.makeApiClient(NetworkingV1Api);
    const ns = this.namespace;
    const lists: Record<ManagedKind, [string, () => Promise<{ items: KubernetesObject[]; metadata?: { resourceVersion?: string } }>]> = {
      Deployment: [`/apis/apps/v1/namespaces/${ns}/deployments`, () => apps.listNamespacedDeployment({ namespace: ns, labelSelector: SELECTOR })],
      Pod: [`/api/v1/namespaces/${ns}/pods`, () => core.listNamespacedPod({ namespace: ns, labelSelector: SELECTOR })],
      Service: [`/api/v1/namespaces/${ns}/services`, () => core.listNamespacedService({ namespace: ns, labelSelector: SELECTOR })],
      Secret: [`/api/v1/namespaces/${ns}/secrets`, () => core.listNamespacedSecret({ namespace: ns, labelSelector: SELECTOR })],
      NetworkPolicy: [`/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`, () => networking.listNamespacedNetworkPolicy({ namespace: ns, labelSelector: SELECTOR })],
    };
    await Promise.all(
      KINDS.map((kind) => {
        const [path, list] = lists[kind];
        const informer = makeInformer(this.#config, path, async () => {
          const result = await list();
          // A list (the first, or after a 410) is the cluster's state: the informer's cache is now whole.
          this.#synced.add(kind);
          this.#failures.delete(kind);
          this.#found();
          return result;
        }, SELECTOR) as Watched;
        const changed = (obj: KubernetesObject): void => {
          const name = obj.metadata?.labels?.[NAME_LABEL];
          if (name !== undefined) this.#onChange(kind, name);
        };
        informer.on('add', changed);
        informer.on('update', changed);
        informer.on('delete', changed);
        informer.on('connect', () => {
          if (this.#synced.has(kind)) this.#found();
        });
        informer.on('error', (err: unknown) => this.#failed(kind, err));
        this.#informers.set(kind, informer);
        return informer.start().catch((err: unknown) => this.#failed(kind, err));
      }),
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) t.cancel();
    this.#timers.clear();
    await Promise.allSettled([...this.#informers.values()].map((i) => i.stop()));
  }

  #found(): void {
    if (this.#reachable.ok) return;
    this.#reachable = { ok: true, since: this.#clock.now() };
    this.#onReachability(this.#reachable);
  }

  /** Heard once per loss (the message of the latest failure is kept, not announced: it varies by request). */
  #lost(error: string): void {
    const was = this.#reachable;
    this.#reachable = { ok: false, error, since: was.ok ? this.#clock.now() : was.since };
    if (was.ok) this.#onReachability(this.#reachable);
  }

  /** An informer stopped on an error (client-node does not retry those): start it again, backing off. */
  #failed(kind: ManagedKind, err: unknown): void {
    if (this.#stopped) return;
    // Forbidden to list an optional kind: the cluster answered, and what apiary made of it is taken as nothing.
    if (OPTIONAL.has(kind) && (err as { code?: unknown }).code === 403) this.#synced.add(kind);
    else this.#lost(clusterErrorMessage(err, this.server));
    const failures = (this.#failures.get(kind) ?? 0) + 1;
    this.#failures.set(kind, failures);
    const delay = backoff({ baseMs: 1_000, capMs: RESTART_MAX_MS }, failures);
    const timer = this.#clock.setTimeout(() => {
      this.#timers.delete(timer);
      if (this.#stopped) return;
      this.#informers.get(kind)?.start().catch((e: unknown) => this.#failed(kind, e));
    }, delay);
    this.#timers.add(timer);
  }

  // ---- reads, from the informers' caches ----

  deployment(name: string): V1Deployment | undefined {
    return this.#informers.get('Deployment')?.get(name, this.namespace) as V1Deployment | undefined;
  }

  /** The server's pods: the one that is not going away, newest first. */
  pods(name: string): V1Pod[] {
    const pods = (this.#informers.get('Pod')?.list(this.namespace) ?? []) as V1Pod[];
    return pods
      .filter((p) => p.metadata?.labels?.[NAME_LABEL] === name)
      .sort((a, b) => Number(a.metadata?.deletionTimestamp !== undefined) - Number(b.metadata?.deletionTimestamp !== undefined) || time(b.metadata?.creationTimestamp) - time(a.metadata?.creationTimestamp));
  }

  /** The fingerprint apiary wrote on its Secret of this name when it applied its values. */
  secretValuesHash(name: string): string | undefined {
    return this.#informers.get('Secret')?.get(name, this.namespace)?.metadata?.annotations?.[VALUES_HASH_ANNOTATION];
  }

  has(kind: ManagedKind, name: string): boolean {
    return this.#informers.get(kind)?.get(name, this.namespace) !== undefined;
  }

  /** The apiary names of what apiary manages in the namespace, by the kind of manifest they came from. */
  managedNames(): { MCPServer: string[]; Secret: string[] } {
    const of = (kind: ManagedKind, from: string): string[] =>
      ((this.#informers.get(kind)?.list(this.namespace) ?? []) as KubernetesObject[]).filter((o) => o.metadata?.labels?.[KIND_LABEL] === from).map((o) => o.metadata!.labels![NAME_LABEL]!).filter((n) => n !== undefined);
    return { MCPServer: [...new Set([...of('Deployment', 'mcpserver'), ...of('Service', 'mcpserver'), ...of('NetworkPolicy', 'mcpserver')])], Secret: of('Secret', 'secret') };
  }

  // ---- writes ----

  /** Server-side apply as field manager "apiary", taking over fields others changed (apiary owns these objects, as Flux does). */
  async apply(object: KubeObject): Promise<void> {
    await this.#call(() => this.#objects.patch({ ...object, metadata: { ...object.metadata, namespace: this.namespace } }, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply));
  }

  /** Deletes an object apiary made (never one without its label); false when there was none. */
  async remove(kind: ManagedKind, name: string): Promise<boolean> {
    const object = this.#informers.get(kind)?.get(name, this.namespace);
    if (object === undefined || object.metadata?.labels?.[MANAGED_BY] !== FIELD_MANAGER) return false;
    try {
      await this.#call(() => this.#objects.delete({ apiVersion: API_VERSION[kind], kind, metadata: { name, namespace: this.namespace } }, undefined, undefined, undefined, undefined, 'Background'));
    } catch (err) {
      if (err instanceof ClusterRefused && err.httpStatus === 404) return false;
      throw err;
    }
    return true;
  }

  async #call<T>(request: () => Promise<T>): Promise<T> {
    try {
      const result = await request();
      this.#found();
      return result;
    } catch (err) {
      const status = (err as { code?: unknown }).code;
      if (typeof status === 'number' && status < 500) {
        // The API server answered: it is there; the request was refused.
        this.#found();
        throw new ClusterRefused(status, clusterErrorMessage(err, this.server));
      }
      const message = clusterErrorMessage(err, this.server);
      this.#lost(message);
      throw new ApiaryError('ClusterUnreachable', message);
    }
  }
}

/** The API server answered, and said no (its HTTP status kept, for the caller to tell 404 from 409). */
export class ClusterRefused extends ApiaryError {
  readonly httpStatus: number;

  constructor(httpStatus: number, message: string) {
    super('ClusterRefused', message);
    this.httpStatus = httpStatus;
  }
}

function time(t: Date | string | undefined): number {
  return t === undefined ? 0 : new Date(t).getTime();
}

/** What the API server said (its Status message), or why it could not be reached; never client-node's dump of headers. */
export function clusterErrorMessage(err: unknown, server: string): string {
  const e = err as { code?: unknown; body?: unknown; cause?: { code?: string }; errno?: string; message?: string; statusCode?: number };
  if (typeof e.code === 'number') {
    let body: { message?: string; reason?: string } | undefined;
    try {
      body = typeof e.body === 'string' ? (JSON.parse(e.body) as typeof body) : (e.body as typeof body);
    } catch {
      body = undefined;
    }
    return `the API server answered ${e.code}${body?.reason ? ` ${body.reason}` : ''}: ${body?.message ?? 'no message'}`;
  }
  if (typeof e.statusCode === 'number') return `the API server answered ${e.statusCode} to a watch: ${e.message ?? ''}`.trim();
  const code = typeof e.code === 'string' ? e.code : (e.cause?.code ?? e.errno);
  return `cannot reach the API server at ${server}${code ? ` (${code})` : ''}: ${messageOf(err).split('\n')[0]}`;
}
