/**
 * The manifest directory as Kubernetes objects: per Secret a `v1/Secret`,
 * per MCPServer an `apps/v1/Deployment` (one replica; the same command, args
 * and secret bindings, now as `secretKeyRef`/`envFrom` the kubelet resolves)
 * and, for an HTTP server, a `v1/Service`; for a server with spec.sandbox,
 * a `networking.k8s.io/v1/NetworkPolicy` from its network. Every object is labelled as
 * managed by apiary with its manifest's name, so the runtime prunes only
 * what it made. Pure: what to apply (or print for Flux or Argo CD), nothing
 * sent anywhere.
 */
import { secretForms } from '../crypto/secret-data.js';
import type { MCPServerSpec } from '../api/manifests.js';
import { RUNNER_IMAGES } from '../api/runner-images.js';
import type { MCPServerResource, Resource, SecretResource } from '../manifests/resource.js';

export const MANAGED_BY = 'app.kubernetes.io/managed-by';
export const NAME_LABEL = 'apiary.dev/name';
export const KIND_LABEL = 'apiary.dev/kind';
export const FIELD_MANAGER = 'apiary';
/** On a Secret the runtime applied: a keyed fingerprint of its values, to apply only what changed (never the values). */
export const VALUES_HASH_ANNOTATION = 'apiary.dev/values-hash';
/** The port an HTTP server listens on in its container ($PORT), behind its Service's port 80. */
export const CONTAINER_PORT = 8080;
/**
 * The user a restricted pod runs as: a number, so the kubelet can check
 * runAsNonRoot for an image whose USER is a name (or root); 65532 is
 * distroless's "nonroot", an id no base image gives to a real account.
 */
export const RUN_AS_USER = 65532;
/** The writable home of a restricted pod (an emptyDir): npx and uvx keep their caches under $HOME. */
export const POD_HOME = '/home/apiary';
/** On a NetworkPolicy: the allow entries it lets through by port only (NetworkPolicy matches addresses, never names). */
export const UNENFORCED_HOSTS_ANNOTATION = 'apiary.dev/unenforced-hosts';

export type KubeObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels: Record<string, string>; annotations?: Record<string, string> } } & Record<string, unknown>;

export interface RenderProblem {
  kind: 'MCPServer' | 'Secret';
  name: string;
  message: string;
  /** Not an error: nothing to deploy (a hosted server). */
  skipped?: boolean;
}

/** Something a reader of the rendered objects should know about one of them (printed as a comment above it, and on stderr). */
export interface RenderNote {
  kind: string;
  name: string;
  message: string;
}

export interface Rendered {
  objects: KubeObject[];
  notes: RenderNote[];
  /** Resources that cannot run on Kubernetes as written, and why (rendered without them). */
  problems: RenderProblem[];
  /** Secrets printed as references only (their keys), values left out. */
  secretReferences: { name: string; keys: string[] }[];
}

export interface RenderOptions {
  namespace?: string;
  /** The values of each secret (decrypted by the caller, which holds the key): with them, Secrets are rendered whole. */
  secretValues?: (secret: SecretResource) => Promise<Record<string, string>>;
}

/** The labels on everything apiary makes in a cluster: what its informers select and what prune may delete. */
export function managedLabels(kind: 'MCPServer' | 'Secret', name: string): Record<string, string> {
  return { [MANAGED_BY]: FIELD_MANAGER, [NAME_LABEL]: name, [KIND_LABEL]: kind.toLowerCase() };
}

function meta(kind: 'MCPServer' | 'Secret', name: string, options: RenderOptions, extra: { annotations?: Record<string, string> } = {}): KubeObject['metadata'] {
  return { name, ...(options.namespace !== undefined ? { namespace: options.namespace } : {}), labels: managedLabels(kind, name), ...extra };
}

export async function renderKubernetes(resources: readonly Resource[], options: RenderOptions = {}): Promise<Rendered> {
  const out: Rendered = { objects: [], notes: [], problems: [], secretReferences: [] };
  for (const r of [...resources].sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name))) {
    // A source is apiary's own business: nothing of it goes to the cluster.
    // Nor the gateway's access settings: apiary's gateway enforces them, wherever the servers run.
    if (r.kind === 'GitRepository' || r.kind === 'Gateway' || r.kind === 'AccessPolicy') continue;
    if (r.kind === 'Secret') {
      if (options.secretValues === undefined) {
        out.secretReferences.push({ name: r.name, keys: secretKeys(r) });
        continue;
      }
      out.objects.push({ apiVersion: 'v1', kind: 'Secret', metadata: meta('Secret', r.name, options), type: 'Opaque', stringData: await options.secretValues(r) });
      continue;
    }
    const rendered = renderServer(r, options);
    if ('problem' in rendered) out.problems.push({ kind: 'MCPServer', name: r.name, message: rendered.problem, ...(r.manifest.spec.remote !== undefined ? { skipped: true } : {}) });
    else {
      out.objects.push(...rendered.objects);
      out.notes.push(...(rendered.notes ?? []));
    }
  }
  return out;
}

function secretKeys(secret: SecretResource): string[] {
  return [...secretForms(secret).keys()].sort();
}

/** One MCPServer: its Deployment, a Service when it speaks HTTP, a NetworkPolicy when it is sandboxed. */
export function renderServer(server: MCPServerResource, options: RenderOptions = {}): { objects: KubeObject[]; notes?: RenderNote[] } | { problem: string } {
  const spec = server.manifest.spec;
  if (spec.remote !== undefined) return { problem: 'a hosted server (spec.remote) runs nowhere to deploy; apiary fronts it from where it runs' };
  if (spec.image === undefined) return { problem: `spec.image is required to run on Kubernetes (the container image the command runs in)${imageHint(spec.command)}` };
  if ((spec.restartPolicy ?? 'Always') !== 'Always') return { problem: `restartPolicy ${spec.restartPolicy} cannot be kept by a Deployment (its pods always restart); use Always, or run this server locally` };
  const transport = spec.transport ?? 'stdio';
  const http = transport !== 'stdio';
  const env: Record<string, unknown>[] = (spec.env ?? []).map((e) => {
    const ref = e.valueFrom?.secretKeyRef;
    if (ref !== undefined) return { name: e.name, valueFrom: { secretKeyRef: { name: ref.name, key: ref.key, ...(ref.optional === true ? { optional: true } : {}) } } };
    return { name: e.name, value: e.value ?? '' };
  });
  if (http && !env.some((e) => e['name'] === 'PORT')) env.unshift({ name: 'PORT', value: String(CONTAINER_PORT) });
  const restricted = (spec.podSecurity ?? 'restricted') === 'restricted';
  // First, so a variable below may say $(HOME); the image's own HOME is read-only (or /, for a uid it does not know).
  if (restricted && !env.some((e) => e['name'] === 'HOME')) env.unshift({ name: 'HOME', value: POD_HOME });
  const envFrom = (spec.envFrom ?? []).map((f) => ({ ...(f.prefix !== undefined ? { prefix: f.prefix } : {}), secretRef: { name: f.secretRef.name, ...(f.secretRef.optional === true ? { optional: true } : {}) } }));
  const selector = { [NAME_LABEL]: server.name };
  const container = {
    name: 'server',
    image: spec.image,
    command: [spec.command],
    ...(spec.args !== undefined && spec.args.length > 0 ? { args: spec.args } : {}),
    ...(env.length > 0 ? { env } : {}),
    ...(envFrom.length > 0 ? { envFrom } : {}),
    // A stdio server's stdin and stdout are the MCP session: kept open for apiary to attach.
    ...(http ? { ports: [{ name: 'mcp', containerPort: CONTAINER_PORT }] } : { stdin: true, stdinOnce: false, tty: false }),
    ...(spec.resources !== undefined ? { resources: spec.resources } : {}),
    ...(restricted ? RESTRICTED_CONTAINER : {}),
  };
  const rolling = (spec.strategy?.type ?? (http ? 'Recreate' : 'RollingUpdate')) === 'RollingUpdate';
  const deployment: KubeObject = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta('MCPServer', server.name, options),
    spec: {
      replicas: spec.suspend === true ? 0 : 1,
      selector: { matchLabels: selector },
      strategy: rolling ? { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } : { type: 'Recreate' },
      ...(spec.strategy?.rollingUpdate?.progressDeadlineSeconds !== undefined ? { progressDeadlineSeconds: spec.strategy.rollingUpdate.progressDeadlineSeconds } : {}),
      template: {
        metadata: { labels: { ...managedLabels('MCPServer', server.name) } },
        spec: {
          containers: [container],
          restartPolicy: 'Always',
          ...(restricted ? RESTRICTED_POD : {}),
          ...(spec.strategy?.rollingUpdate?.drainSeconds !== undefined ? { terminationGracePeriodSeconds: spec.strategy.rollingUpdate.drainSeconds } : {}),
        },
      },
    },
  };
  const objects = [deployment];
  if (http) {
    objects.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta('MCPServer', server.name, options),
      spec: { selector, ports: [{ name: 'mcp', port: 80, targetPort: 'mcp', protocol: 'TCP' }] },
    });
  }
  if (spec.sandbox === undefined) return { objects };
  const policy = networkPolicy(server.name, spec.sandbox, options);
  // The policy first: applied in this order (by apiary, or kubectl apply -f), no pod of a sandboxed server runs without it,
  // and one refused (a Role without networkpolicies) leaves the server not deployed rather than unsandboxed.
  return { objects: [policy.object, ...objects], ...(policy.note !== undefined ? { notes: [{ kind: 'NetworkPolicy', name: server.name, message: policy.note }] } : {}) };
}

/**
 * Pod Security Standards' restricted level, and a read-only root: the
 * container writes only to its emptyDirs, /tmp and its home.
 */
const RESTRICTED_CONTAINER = {
  securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
  volumeMounts: [
    { name: 'tmp', mountPath: '/tmp' },
    { name: 'home', mountPath: POD_HOME },
  ],
};

const RESTRICTED_POD = {
  securityContext: { runAsNonRoot: true, runAsUser: RUN_AS_USER, runAsGroup: RUN_AS_USER, fsGroup: RUN_AS_USER, seccompProfile: { type: 'RuntimeDefault' } },
  volumes: [
    { name: 'tmp', emptyDir: {} },
    { name: 'home', emptyDir: {} },
  ],
};

/** What to set spec.image to, for the runners apiary knows (the images `apiary install` writes). */
function imageHint(command: string | undefined): string {
  const image = command === undefined ? undefined : RUNNER_IMAGES.get(command);
  if (image !== undefined) return `; for ${command}, e.g. spec.image: ${image} (what apiary install writes)`;
  return '; apiary install fills it in only for npm (npx) and PyPI (uvx) packages';
}

const IPV4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/**
 * spec.sandbox.network as a NetworkPolicy over the server's pod. `none`:
 * no egress rule at all, not even DNS. `allow`: a literal address becomes an
 * ipBlock with its port; a host name cannot (NetworkPolicy matches
 * addresses, and a name's addresses change), so its port is opened to any
 * address, with DNS to resolve it, and the note says so. No ingress: apiary
 * reaches a server by attach (stdio) or port-forward (HTTP) through the API
 * server and the kubelet, not the pod network, so a sandboxed HTTP server's
 * Service is closed to other pods.
 */
function networkPolicy(name: string, sandbox: NonNullable<MCPServerSpec['sandbox']>, options: RenderOptions): { object: KubeObject; note?: string } {
  const egress: Record<string, unknown>[] = [];
  const byName: string[] = [];
  const namePorts = new Set<number>();
  for (const entry of sandbox.network === 'allow' ? (sandbox.allow ?? []) : []) {
    const split = entry.lastIndexOf(':');
    const host = entry.slice(0, split).toLowerCase();
    const port = Number(entry.slice(split + 1));
    if (IPV4.test(host)) egress.push({ to: [{ ipBlock: { cidr: `${host}/32` } }], ports: [{ protocol: 'TCP', port }] });
    else if (host.startsWith('[')) egress.push({ to: [{ ipBlock: { cidr: `${host.slice(1, -1)}/128` } }], ports: [{ protocol: 'TCP', port }] });
    else {
      byName.push(`${host}:${port}`);
      namePorts.add(port);
    }
  }
  if (byName.length > 0) {
    egress.push({ ports: [...namePorts].sort((a, b) => a - b).map((port) => ({ protocol: 'TCP', port })) });
    egress.push({ ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] });
  }
  const note = byName.length === 0 ? undefined : `NetworkPolicy cannot match host names: ${byName.join(', ')} ${byName.length === 1 ? 'is' : 'are'} allowed by port only, to any address (and DNS, port 53, to resolve ${byName.length === 1 ? 'it' : 'them'})`;
  const metadata = meta('MCPServer', name, options, note !== undefined ? { annotations: { [UNENFORCED_HOSTS_ANNOTATION]: byName.join(',') } } : {});
  const object: KubeObject = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata,
    spec: { podSelector: { matchLabels: { [NAME_LABEL]: name } }, policyTypes: ['Ingress', 'Egress'], ...(egress.length > 0 ? { egress } : {}) },
  };
  return { object, ...(note !== undefined ? { note } : {}) };
}
