/**
 * A small, stateful Kubernetes API server on 127.0.0.1, for the Kubernetes
 * runtime's contract tests and bench (no real API server runs on these
 * machines). It speaks the real wire protocol for what apiary uses:
 * discovery, server-side apply (application/apply-patch+yaml, fieldManager,
 * managedFields per manager, conflicts and force), GET and LIST (label
 * selectors, resourceVersion), WATCH from a resourceVersion (410 Gone once
 * that version is compacted away), DELETE; and a tiny deployment controller
 * and kubelet that give each Deployment a pod whose container waits with
 * CreateContainerConfigError, in the kubelet's own words, when a secret or
 * key it needs is missing. Real `kubectl` drives it too (see the tests), so
 * it is not shaped only around apiary's client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { freePort } from './ports.js';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { parse as parseYaml } from 'yaml';

type Obj = { apiVersion: string; kind: string; metadata: Record<string, unknown> & { name: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string; uid?: string; managedFields?: ManagedField[] } } & Record<string, unknown>;

interface ManagedField {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: Record<string, unknown>;
}

interface ResourceType {
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: true;
  shortNames?: string[];
}

const TYPES: ResourceType[] = [
  { group: '', version: 'v1', kind: 'Secret', plural: 'secrets', namespaced: true },
  { group: '', version: 'v1', kind: 'Service', plural: 'services', namespaced: true, shortNames: ['svc'] },
  { group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true, shortNames: ['po'] },
  { group: 'apps', version: 'v1', kind: 'Deployment', plural: 'deployments', namespaced: true, shortNames: ['deploy'] },
  // Stored and served only: no network plugin enforces it here (as on a cluster whose CNI has no policy support).
  { group: 'networking.k8s.io', version: 'v1', kind: 'NetworkPolicy', plural: 'networkpolicies', namespaced: true, shortNames: ['netpol'] },
];
const GROUPS = [...new Set(TYPES.map((t) => t.group).filter((g) => g !== ''))];

interface WatchEvent {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  plural: string;
  object: Obj;
}

export interface FakeApiServerOptions {
  /** Watch events kept for resuming; older resourceVersions get 410 Gone. */
  retainEvents?: number;
  /** Hears each request as it arrives (for the bench: when a PATCH reached the API server). */
  onRequest?: (method: string, path: string) => void;
  /**
   * The kubelet runs each container's command as a local process (the image
   * is ignored; relative paths resolve from `cwd`), so attach and
   * port-forward reach a real server. Each container gets a network of its
   * own in miniature: its declared port is a free local port, passed as $PORT.
   */
  runContainers?: { cwd: string };
  /** Resources (plurals) the caller may not touch, answered 403 Forbidden as RBAC words it: a Role from before apiary used them. */
  forbidden?: string[];
}

/** A container the kubelet runs as a local process. */
interface LocalContainer {
  child: ChildProcess;
  /** containerPort -> the local port it really listens on. */
  ports: Map<number, number>;
  exited: boolean;
}

export class FakeApiServer {
  readonly #objects = new Map<string, Obj>();
  readonly #events: WatchEvent[] = [];
  readonly #watchers = new Set<{ plural: string; namespace: string | undefined; selector: Map<string, string>; send: (e: WatchEvent) => void; end: () => void }>();
  readonly #retain: number;
  readonly #onRequest: FakeApiServerOptions['onRequest'];
  readonly #run: FakeApiServerOptions['runContainers'];
  readonly #forbidden: ReadonlySet<string>;
  /** Pod key -> its container's local process (runContainers). */
  readonly #containers = new Map<string, LocalContainer>();
  /** Pod key -> container restarts so far, and when the next one is due. */
  readonly #restarts = new Map<string, { count: number; timer?: NodeJS.Timeout }>();
  readonly #sockets = new WebSocketServer({ noServer: true, handleProtocols: (offered) => (offered.has('v4.channel.k8s.io') ? 'v4.channel.k8s.io' : false) });
  #rv = 1;
  #server: Server | undefined;
  /** Every request, as "METHOD path": what a test can read back. */
  readonly requests: string[] = [];

  constructor(options: FakeApiServerOptions = {}) {
    this.#retain = options.retainEvents ?? 1000;
    this.#onRequest = options.onRequest;
    this.#run = options.runContainers;
    this.#forbidden = new Set(options.forbidden ?? []);
  }

  /** Listens on 127.0.0.1 (port 0: any free one; pass the old port to come back where a client expects it). */
  async listen(port = 0): Promise<string> {
    const server = createServer((req, res) => void this.#handle(req, res).catch((err: unknown) => this.#status(res, 500, 'InternalError', String(err))));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.#server = server;
    return this.url;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server?.address() as AddressInfo).port}`;
  }

  /** Stops serving (the objects stay, for a listen() on the same port to serve again). */
  async close(): Promise<void> {
    for (const client of this.#sockets.clients) client.terminate();
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }

  /** A kubeconfig for kubectl and client-node (plain HTTP, no auth: a fake on 127.0.0.1; client-node takes http:// only with insecure-skip-tls-verify). */
  kubeconfig(namespace = 'default'): string {
    return `apiVersion: v1
kind: Config
clusters: [{ name: fake, cluster: { server: "${this.url}", insecure-skip-tls-verify: true } }]
users: [{ name: fake, user: {} }]
contexts: [{ name: fake, context: { cluster: fake, user: fake, namespace: ${namespace} } }]
current-context: fake
`;
  }

  /** Stops every container's local process (the end of a test). */
  async shutdown(): Promise<void> {
    for (const r of this.#restarts.values()) clearTimeout(r.timer);
    const exits = [...this.#containers.values()].filter((c) => !c.exited).map((c) => new Promise<void>((resolve) => {
      c.child.once('exit', () => resolve());
      c.child.kill('SIGKILL');
    }));
    this.#containers.clear();
    await Promise.all(exits);
    await this.close();
  }

  /** Ends every open watch cleanly, as an API server does when a watch times out: clients resume from their resourceVersion. */
  endWatches(): void {
    for (const w of this.#watchers) w.end();
    this.#watchers.clear();
  }

  /** Drops watch events up to now: a watch from an older resourceVersion then gets 410 Gone. */
  compact(): void {
    this.#events.length = 0;
  }

  get(plural: string, namespace: string, name: string): Obj | undefined {
    return this.#objects.get(key(plural, namespace, name));
  }

  // ---- HTTP ----

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    this.#onRequest?.(req.method ?? 'GET', url.pathname);
    const path = url.pathname.replace(/\/$/, '');
    if (path === '/version') return this.#json(res, 200, { major: '1', minor: '32', gitVersion: 'v1.32.0-apiary-fake', platform: 'linux/amd64' });
    if (path === '/api') return this.#json(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
    if (path === '/apis') return this.#json(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: GROUPS.map((name) => ({ name, versions: [{ groupVersion: `${name}/v1`, version: 'v1' }], preferredVersion: { groupVersion: `${name}/v1`, version: 'v1' } })) });
    const groupPath = /^\/apis\/([^/]+)\/v1$/.exec(path);
    if (path === '/api/v1' || (groupPath !== null && GROUPS.includes(groupPath[1]!))) return this.#json(res, 200, this.#resourceList(groupPath?.[1] ?? ''));
    // Every namespace exists in the fake (kubectl asks, to word a NotFound).
    const namespaceOnly = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(path);
    if (namespaceOnly !== null) return this.#json(res, 200, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespaceOnly[1] }, status: { phase: 'Active' } });
    const match = /^\/(?:api\/v1|apis\/[^/]+\/v1)\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?(?:\/(status))?$/.exec(path) ?? /^\/(?:api\/v1|apis\/[^/]+\/v1)\/()([^/]+)$/.exec(path);
    if (match === null) return this.#status(res, 404, 'NotFound', `the server could not find the requested resource (${path})`);
    const namespace = match[1] === '' ? undefined : match[1];
    const plural = match[2]!;
    const name = match[3];
    const type = TYPES.find((t) => t.plural === plural && (t.group === '' ? path.startsWith('/api/v1') : path.startsWith(`/apis/${t.group}/`)));
    if (type === undefined) return this.#status(res, 404, 'NotFound', `the server could not find the requested resource (${plural})`);
    const method = req.method ?? 'GET';
    if (this.#forbidden.has(type.plural)) {
      const verb = method === 'PATCH' ? 'patch' : method === 'DELETE' ? 'delete' : name !== undefined ? 'get' : url.searchParams.get('watch') === 'true' ? 'watch' : 'list';
      const resource = `${type.plural}${type.group ? `.${type.group}` : ''}`;
      return this.#status(res, 403, 'Forbidden', `${resource}${name !== undefined ? ` "${name}"` : ''} is forbidden: User "system:serviceaccount:apiary:apiary" cannot ${verb} resource "${type.plural}" in API group "${type.group}"${namespace !== undefined ? ` in the namespace "${namespace}"` : ''}`, { ...(name !== undefined ? { name } : {}), group: type.group, kind: type.plural });
    }
    if (method === 'GET' && name === undefined && url.searchParams.get('watch') === 'true') return this.#watch(req, res, type, namespace, url);
    if (method === 'GET' && name === undefined) return this.#list(res, type, namespace, url);
    if (method === 'GET') return this.#getOne(res, type, namespace!, name!);
    if (method === 'PATCH' && name !== undefined) return this.#apply(req, res, type, namespace!, name, url);
    if (method === 'DELETE' && name !== undefined) return this.#delete(res, type, namespace!, name);
    return this.#status(res, 405, 'MethodNotAllowed', `${method} is not supported by the fake on ${path}`);
  }

  #resourceList(group: string): Record<string, unknown> {
    return {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: group === '' ? 'v1' : `${group}/v1`,
      resources: TYPES.filter((t) => t.group === group).map((t) => ({
        name: t.plural,
        singularName: t.kind.toLowerCase(),
        namespaced: true,
        kind: t.kind,
        ...(t.shortNames ? { shortNames: t.shortNames } : {}),
        verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
      })),
    };
  }

  #json(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  }

  #status(res: ServerResponse, code: number, reason: string, message: string, details?: Record<string, unknown>): void {
    this.#json(res, code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code, ...(details ? { details } : {}) });
  }

  #getOne(res: ServerResponse, type: ResourceType, namespace: string, name: string): void {
    const object = this.#objects.get(key(type.plural, namespace, name));
    if (object === undefined) return this.#status(res, 404, 'NotFound', `${type.plural}${type.group ? `.${type.group}` : ''} "${name}" not found`, { name, kind: type.plural });
    this.#json(res, 200, object);
  }

  #list(res: ServerResponse, type: ResourceType, namespace: string | undefined, url: URL): void {
    const selector = parseSelector(url.searchParams.get('labelSelector'));
    const items = [...this.#objects.values()].filter((o) => kindPlural(o) === type.plural && (namespace === undefined || o.metadata.namespace === namespace) && matchesSelector(o, selector));
    this.#json(res, 200, { kind: `${type.kind}List`, apiVersion: type.group === '' ? 'v1' : `${type.group}/v1`, metadata: { resourceVersion: String(this.#rv) }, items });
  }

  #watch(req: IncomingMessage, res: ServerResponse, type: ResourceType, namespace: string | undefined, url: URL): void {
    const from = Number(url.searchParams.get('resourceVersion') ?? this.#rv);
    const selector = parseSelector(url.searchParams.get('labelSelector'));
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    // As the API server does: the headers go at once, before any event (a client waits for them).
    res.flushHeaders();
    const oldest = this.#events[0]?.rv ?? this.#rv + 1;
    if (from < oldest - 1 && from < this.#rv) {
      // As the API server does: the version asked for is compacted away; the client must list again.
      res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: `too old resource version: ${from} (${oldest - 1})`, reason: 'Expired', code: 410 } })}\n`);
      return;
    }
    const wanted = (e: WatchEvent): boolean => e.plural === type.plural && (namespace === undefined || e.object.metadata.namespace === namespace) && matchesSelector(e.object, selector);
    for (const e of this.#events) if (e.rv > from && wanted(e)) res.write(`${JSON.stringify({ type: e.type, object: e.object })}\n`);
    const watcher = { plural: type.plural, namespace, selector, send: (e: WatchEvent) => void (wanted(e) && res.write(`${JSON.stringify({ type: e.type, object: e.object })}\n`)), end: () => res.end() };
    this.#watchers.add(watcher);
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? 0);
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    req.on('close', () => {
      clearTimeout(timer);
      this.#watchers.delete(watcher);
    });
  }

  async #apply(req: IncomingMessage, res: ServerResponse, type: ResourceType, namespace: string, name: string, url: URL): Promise<void> {
    const contentType = String(req.headers['content-type'] ?? '');
    if (!contentType.startsWith('application/apply-patch')) return this.#status(res, 415, 'UnsupportedMediaType', `the fake supports server-side apply only (Content-Type application/apply-patch+yaml), not ${contentType}`);
    const manager = url.searchParams.get('fieldManager');
    if (manager === null || manager === '') return this.#status(res, 422, 'Invalid', 'fieldManager is required for apply patch');
    const force = url.searchParams.get('force') === 'true';
    const text = await body(req);
    const patch = parseYaml(text) as Obj;
    if (patch?.metadata?.name !== name) return this.#status(res, 400, 'BadRequest', `the name of the object (${String(patch?.metadata?.name)}) does not match the name on the URL (${name})`);
    const k = key(type.plural, namespace, name);
    const existing = this.#objects.get(k);
    const applied = leafPaths(strip(patch));
    // Conflicts: a field another manager applied, with another value, unless forced (then it changes hands).
    const conflicts: string[] = [];
    const conflicting = new Set<string>();
    const current = existing === undefined ? new Map<string, string>() : leafPaths(strip(existing));
    for (const field of existing?.metadata.managedFields ?? []) {
      if (field.manager === manager) continue;
      for (const path of Object.keys(field.fieldsV1)) {
        if (!applied.has(path) || current.get(path) === applied.get(path)) continue;
        conflicts.push(`.${path} (owned by "${field.manager}")`);
        conflicting.add(path);
      }
    }
    if (conflicts.length > 0 && !force) {
      return this.#status(res, 409, 'Conflict', `Apply failed with ${conflicts.length} conflict${conflicts.length === 1 ? '' : 's'}: conflict with ${conflicts.join(', ')}`, { causes: conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: `conflict with ${c}` })) });
    }
    const object = merge(existing === undefined ? {} : strip(existing), strip(patch)) as Obj;
    // Status is the controllers' (and the kubelet's), not the applier's: an apply keeps it.
    if (existing?.['status'] !== undefined) object['status'] = existing['status'];
    // What this manager owns now is exactly what it applied; a field applied with the same value is
    // owned by both, one taken by force from another manager is that manager's no more.
    const others = (existing?.metadata.managedFields ?? []).filter((f) => f.manager !== manager).map((f) => ({ ...f, fieldsV1: Object.fromEntries(Object.entries(f.fieldsV1).filter(([p]) => !conflicting.has(p))) }));
    const owned: ManagedField = { manager, operation: 'Apply', apiVersion: patch.apiVersion, time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), fieldsType: 'FieldsV1', fieldsV1: Object.fromEntries([...applied.keys()].map((p) => [p, {}])) };
    object.metadata = {
      ...object.metadata,
      name,
      namespace,
      uid: existing?.metadata.uid ?? uid(),
      creationTimestamp: (existing?.metadata['creationTimestamp'] as string | undefined) ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      generation: existing === undefined ? 1 : JSON.stringify(existing['spec']) === JSON.stringify(object['spec']) ? (existing.metadata['generation'] as number) : (existing.metadata['generation'] as number) + 1,
      managedFields: [...others.filter((f) => Object.keys(f.fieldsV1).length > 0), owned],
    };
    if (existing !== undefined && JSON.stringify(strip(existing)) === JSON.stringify(strip(object)) && JSON.stringify(existing.metadata.managedFields?.map((f) => [f.manager, f.fieldsV1])) === JSON.stringify(object.metadata.managedFields?.map((f) => [f.manager, f.fieldsV1]))) {
      return this.#json(res, 200, existing);
    }
    const stored = this.#store(type.plural, object, existing === undefined ? 'ADDED' : 'MODIFIED');
    this.#json(res, existing === undefined ? 201 : 200, stored);
    this.#simulate();
  }

  #delete(res: ServerResponse, type: ResourceType, namespace: string, name: string): void {
    const k = key(type.plural, namespace, name);
    const existing = this.#objects.get(k);
    if (existing === undefined) return this.#status(res, 404, 'NotFound', `${type.plural}${type.group ? `.${type.group}` : ''} "${name}" not found`, { name, kind: type.plural });
    this.#objects.delete(k);
    this.#record('DELETED', type.plural, { ...existing, metadata: { ...existing.metadata, resourceVersion: String(++this.#rv) } });
    this.#json(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, kind: type.plural, uid: existing.metadata.uid } });
    this.#simulate();
  }

  #store(plural: string, object: Obj, type: 'ADDED' | 'MODIFIED'): Obj {
    const stored = { ...object, metadata: { ...object.metadata, resourceVersion: String(++this.#rv) } } as Obj;
    this.#objects.set(key(plural, stored.metadata.namespace!, stored.metadata.name), stored);
    this.#record(type, plural, stored);
    return stored;
  }

  #record(type: WatchEvent['type'], plural: string, object: Obj): void {
    const event: WatchEvent = { rv: this.#rv, type, plural, object };
    this.#events.push(event);
    while (this.#events.length > this.#retain) this.#events.shift();
    for (const w of this.#watchers) w.send(event);
  }

  // ---- the deployment controller and the kubelet, in miniature ----

  /**
   * Each Deployment with replicas > 0 has one pod per template (a new
   * template replaces it, as a rollout does). The kubelet starts a new pod's
   * container once every secret and key it references exists, and until then
   * it waits with CreateContainerConfigError in the kubelet's words; a
   * container that runs keeps running when a secret is deleted (its
   * environment was set when it started). The Deployment's status follows.
   */
  #simulate(): void {
    const keep = new Set<string>();
    for (const d of [...this.#objects.values()].filter((o) => o.kind === 'Deployment')) {
      const namespace = d.metadata.namespace!;
      const spec = d['spec'] as { replicas?: number; template?: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: { containers?: Container[] } } };
      const replicas = spec.replicas ?? 1;
      const template = spec.template ?? {};
      const hash = shortHash(JSON.stringify(template));
      let ready = 0;
      if (replicas > 0) {
        const k = [...this.#objects.entries()].find(([, p]) => p.kind === 'Pod' && p.metadata.namespace === namespace && p.metadata.labels?.['pod-template-hash'] === hash && (p.metadata['ownerReferences'] as { name: string }[] | undefined)?.[0]?.name === d.metadata.name)?.[0];
        const existing = k === undefined ? undefined : this.#objects.get(k);
        const previous = (existing?.['status'] as { containerStatuses?: (Record<string, unknown> & { ready: boolean })[] } | undefined)?.containerStatuses;
        // The kubelet looks at the secrets only for a container it has not started yet (and one in back-off waits for its restart).
        const statuses = (template.spec?.containers ?? []).map((c, i) => (previous?.[i]?.ready === true || isBackingOff(previous?.[i]) ? previous![i]! : this.#containerStatus(c, namespace)));
        const status = { phase: statuses.every((c) => c.ready) ? 'Running' : 'Pending', containerStatuses: statuses };
        ready = statuses.every((c) => c.ready) ? 1 : 0;
        if (existing === undefined) {
          const pod = {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name: `${d.metadata.name}-${hash}-${randomBytes(3).toString('hex').slice(0, 5)}`, namespace, uid: uid(), creationTimestamp: now(), labels: { ...(template.metadata?.labels ?? {}), 'pod-template-hash': hash }, ...(template.metadata?.annotations ? { annotations: template.metadata.annotations } : {}), ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: d.metadata.name, uid: d.metadata.uid }] },
            spec: template.spec ?? {},
            status,
          } as Obj;
          keep.add(key('pods', namespace, pod.metadata.name));
          this.#store('pods', pod, 'ADDED');
        } else {
          keep.add(k!);
          if (JSON.stringify(existing['status']) !== JSON.stringify(status)) this.#store('pods', { ...existing, status } as Obj, 'MODIFIED');
        }
      }
      const deploymentStatus = { observedGeneration: d.metadata['generation'], replicas, updatedReplicas: replicas, readyReplicas: ready, availableReplicas: ready, ...(replicas > ready ? { unavailableReplicas: replicas - ready } : {}) };
      if (JSON.stringify(d['status']) !== JSON.stringify(deploymentStatus)) this.#store('deployments', { ...d, status: deploymentStatus } as Obj, 'MODIFIED');
    }
    for (const [k, pod] of [...this.#objects.entries()]) {
      if (pod.kind !== 'Pod' || keep.has(k)) continue;
      this.#objects.delete(k);
      this.#record('DELETED', 'pods', { ...pod, metadata: { ...pod.metadata, resourceVersion: String(++this.#rv) } });
    }
    if (this.#run === undefined) return;
    for (const k of keep) {
      const running = (this.#objects.get(k)?.['status'] as { containerStatuses?: { state?: { running?: unknown } }[] } | undefined)?.containerStatuses?.[0]?.state?.running;
      if (running !== undefined && !this.#containers.has(k) && !this.#launching.has(k)) void this.#launch(k);
    }
    for (const k of [...this.#containers.keys(), ...this.#restarts.keys()]) if (!keep.has(k)) this.#stopContainer(k);
  }

  // ---- containers as local processes (runContainers) ----

  readonly #launching = new Set<string>();

  async #launch(k: string): Promise<void> {
    const run = this.#run!;
    this.#launching.add(k);
    try {
      const pod = this.#objects.get(k);
      const container = (pod?.['spec'] as { containers?: Container[] } | undefined)?.containers?.[0];
      if (pod === undefined || container === undefined) return;
      const namespace = pod.metadata.namespace!;
      const ports = new Map<number, number>();
      for (const p of container.ports ?? []) ports.set(p.containerPort, await freePort());
      const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/' };
      for (const f of container.envFrom ?? []) {
        const secret = f.secretRef === undefined ? undefined : this.#objects.get(key('secrets', namespace, f.secretRef.name));
        for (const [name, value] of Object.entries(secretValues(secret))) env[`${f.prefix ?? ''}${name}`] = value;
      }
      for (const e of container.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (ref === undefined) env[e.name] = e.value ?? '';
        else {
          const value = secretValues(this.#objects.get(key('secrets', namespace, ref.name)))[ref.key];
          if (value !== undefined) env[e.name] = value;
        }
      }
      // The container's own network, in miniature: its port is a free local one.
      for (const [containerPort, local] of ports) if (env['PORT'] === String(containerPort)) env['PORT'] = String(local);
      if (!this.#objects.has(k)) return;
      const [command, ...rest] = container.command ?? [];
      const child = spawn(command ?? 'false', [...rest, ...(container.args ?? [])], { cwd: run.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
      const entry: LocalContainer = { child, ports, exited: false };
      this.#containers.set(k, entry);
      // Output nobody is attached to goes nowhere (the container's log, in a real kubelet).
      child.stdout!.on('data', () => undefined);
      child.stderr!.on('data', () => undefined);
      child.stdin!.on('error', () => undefined);
      child.on('error', () => undefined);
      child.once('exit', (code, signal) => {
        entry.exited = true;
        if (this.#containers.get(k) === entry) this.#crashed(k, code, signal);
      });
    } finally {
      this.#launching.delete(k);
    }
  }

  /** The container exited on its own: CrashLoopBackOff, restarted after 1 s doubling to 10 s, as the kubelet does (its cap is 5 min). */
  #crashed(k: string, code: number | null, signal: NodeJS.Signals | null): void {
    this.#containers.delete(k);
    const pod = this.#objects.get(k);
    if (pod === undefined) return;
    const restart = this.#restarts.get(k) ?? { count: 0 };
    restart.count += 1;
    this.#restarts.set(k, restart);
    const delay = Math.min(10_000, 1000 * 2 ** (restart.count - 1));
    const previous = (pod['status'] as { containerStatuses: Record<string, unknown>[] }).containerStatuses[0]!;
    const terminated = { exitCode: code ?? 128 + 9, ...(signal !== null ? { signal: 9 } : {}), reason: code === 0 ? 'Completed' : 'Error', startedAt: now(), finishedAt: now() };
    const waiting = { ...previous, ready: false, started: false, restartCount: restart.count, state: { waiting: { reason: 'CrashLoopBackOff', message: `back-off ${delay / 1000}s restarting failed container=${String(previous['name'])} pod=${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})` } }, lastState: { terminated } };
    this.#store('pods', { ...pod, status: { phase: 'Running', containerStatuses: [waiting] } } as Obj, 'MODIFIED');
    restart.timer = setTimeout(() => {
      const current = this.#objects.get(k);
      if (current === undefined) return;
      const running = { ...waiting, ready: true, started: true, state: { running: { startedAt: now() } } };
      this.#store('pods', { ...current, status: { phase: 'Running', containerStatuses: [running] } } as Obj, 'MODIFIED');
      this.#simulate();
    }, delay);
    restart.timer.unref();
    this.#simulate();
  }

  #stopContainer(k: string): void {
    clearTimeout(this.#restarts.get(k)?.timer);
    this.#restarts.delete(k);
    const entry = this.#containers.get(k);
    this.#containers.delete(k);
    if (entry !== undefined && !entry.exited) entry.child.kill('SIGTERM');
  }

  // ---- attach and port-forward (WebSocket, v4.channel.k8s.io) ----

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    this.requests.push(`UPGRADE ${url.pathname}${url.search}`);
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(attach|portforward)$/.exec(url.pathname);
    const k = m === null ? undefined : key('pods', m[1]!, m[2]!);
    if (m === null || k === undefined || !this.#objects.has(k)) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    this.#sockets.handleUpgrade(req, socket, head, (ws) => (m[3] === 'attach' ? this.#attach(ws, k, url) : this.#portForward(ws, k, url)));
  }

  /** kubectl attach: stdin from channel 0 to the container, its stdout (and stderr) back on channels 1 (and 2). */
  #attach(ws: WebSocket, k: string, url: URL): void {
    // The pod says running from the moment the kubelet starts the container: wait for its process.
    if (!this.#containers.has(k) && this.#launching.has(k)) {
      setTimeout(() => this.#attach(ws, k, url), 10);
      return;
    }
    const c = this.#containers.get(k);
    if (c === undefined || c.exited) {
      ws.send(channel(3, JSON.stringify({ metadata: {}, status: 'Failure', message: 'container server is not running', reason: 'BadRequest', code: 400 })));
      ws.close();
      return;
    }
    const out = (chunk: Buffer): void => ws.send(channel(1, chunk));
    const err = (chunk: Buffer): void => ws.send(channel(2, chunk));
    const exit = (): void => {
      ws.send(channel(3, JSON.stringify({ metadata: {}, status: 'Success' })));
      ws.close();
    };
    c.child.stdout!.on('data', out);
    if (url.searchParams.get('stderr') === 'true') c.child.stderr!.on('data', err);
    c.child.once('exit', exit);
    ws.on('message', (data: Buffer) => {
      if (data[0] === 0 && url.searchParams.get('stdin') === 'true') c.child.stdin!.write(data.subarray(1));
    });
    ws.on('close', () => {
      c.child.stdout!.off('data', out);
      c.child.stderr!.off('data', err);
      c.child.off('exit', exit);
    });
  }

  /** kubectl port-forward: one connection per WebSocket; data on channel 0, errors on 1, each opened with the port (uint16, little-endian). */
  #portForward(ws: WebSocket, k: string, url: URL): void {
    const port = Number(url.searchParams.get('ports'));
    const local = this.#containers.get(k)?.ports.get(port);
    const prefix = Buffer.from([port & 0xff, (port >> 8) & 0xff]);
    ws.send(channel(0, prefix));
    ws.send(channel(1, prefix));
    if (local === undefined) {
      ws.send(channel(1, `error forwarding port ${port}: the container is not running, or does not declare that port`));
      ws.close();
      return;
    }
    const socket: Socket = connect(local, '127.0.0.1');
    socket.on('data', (d: Buffer) => ws.send(channel(0, d)));
    socket.on('error', (e) => {
      ws.send(channel(1, `an error occurred forwarding ${port} -> ${port}: ${e.message}`));
      ws.close();
    });
    socket.on('close', () => ws.close());
    ws.on('message', (data: Buffer) => {
      if (data[0] === 0) socket.write(data.subarray(1));
    });
    ws.on('close', () => socket.destroy());
  }

  #containerStatus(container: Container, namespace: string): Record<string, unknown> & { ready: boolean } {
    const base = { name: container.name, image: container.image, imageID: '', restartCount: 0 };
    for (const e of container.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef;
      if (ref === undefined || ref.optional === true) continue;
      const secret = this.#objects.get(key('secrets', namespace, ref.name));
      if (secret === undefined) return { ...base, ready: false, state: { waiting: { reason: 'CreateContainerConfigError', message: `secret "${ref.name}" not found` } } };
      const keys = new Set([...Object.keys((secret['data'] as Record<string, string> | undefined) ?? {}), ...Object.keys((secret['stringData'] as Record<string, string> | undefined) ?? {})]);
      if (!keys.has(ref.key)) return { ...base, ready: false, state: { waiting: { reason: 'CreateContainerConfigError', message: `couldn't find key ${ref.key} in Secret ${namespace}/${ref.name}` } } };
    }
    for (const f of container.envFrom ?? []) {
      if (f.secretRef === undefined || f.secretRef.optional === true) continue;
      if (this.#objects.get(key('secrets', namespace, f.secretRef.name)) === undefined) return { ...base, ready: false, state: { waiting: { reason: 'CreateContainerConfigError', message: `secret "${f.secretRef.name}" not found` } } };
    }
    return { ...base, ready: true, started: true, state: { running: { startedAt: now() } } };
  }
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  ports?: { containerPort: number }[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } } }[];
  envFrom?: { prefix?: string; secretRef?: { name: string; optional?: boolean } }[];
}

function isBackingOff(status: Record<string, unknown> | undefined): boolean {
  return (status?.['state'] as { waiting?: { reason?: string } } | undefined)?.waiting?.reason === 'CrashLoopBackOff';
}

function secretValues(secret: Obj | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((secret?.['data'] as Record<string, string> | undefined) ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  for (const [k, v] of Object.entries((secret?.['stringData'] as Record<string, string> | undefined) ?? {})) out[k] = v;
  return out;
}

function channel(n: number, data: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from([n]), typeof data === 'string' ? Buffer.from(data) : data]);
}

function key(plural: string, namespace: string, name: string): string {
  return `${plural}/${namespace}/${name}`;
}

function kindPlural(o: Obj): string | undefined {
  return TYPES.find((t) => t.kind === o.kind)?.plural;
}

function uid(): string {
  const h = randomBytes(16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function shortHash(text: string): string {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h.toString(36).padStart(7, '0').slice(0, 10);
}

/** The object without what the server owns (resourceVersion, uid, managedFields, status...). */
function strip(o: Obj): Record<string, unknown> {
  const { metadata, status: _status, ...rest } = o as Obj & { status?: unknown };
  const { resourceVersion: _rv, uid: _uid, managedFields: _mf, creationTimestamp: _ct, generation: _g, ...meta } = metadata;
  return { ...rest, metadata: meta };
}

/** Leaf fields as dotted paths (arrays of named items by name, others by index), with their values. */
function leafPaths(value: unknown, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (v: unknown, path: string): void => {
    if (Array.isArray(v)) {
      v.forEach((item, i) => walk(item, `${path}[${typeof (item as { name?: unknown })?.name === 'string' ? `name=${(item as { name: string }).name}` : i}]`));
      return;
    }
    if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) walk(child, path === '' ? k : `${path}.${k}`);
      return;
    }
    out.set(path, JSON.stringify(v));
  };
  walk(value, prefix);
  return out;
}

/** Server-side apply's result, simplified: maps merge key by key, lists are replaced whole. */
function merge(base: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch) || base === null || typeof base !== 'object' || Array.isArray(base)) return patch;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(patch)) out[k] = merge(out[k], v);
  return out;
}

function parseSelector(text: string | null): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (text ?? '').split(',').filter(Boolean)) {
    const [k, v] = part.split('=');
    if (k) out.set(k, v ?? '');
  }
  return out;
}

function matchesSelector(o: Obj, selector: Map<string, string>): boolean {
  for (const [k, v] of selector) if (o.metadata.labels?.[k] !== v) return false;
  return true;
}

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}
