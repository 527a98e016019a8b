/**
 * The manifest directory as Kubernetes objects: per Secret a `v1/Secret`,
 * per MCPServer an `apps/v1/Deployment` (one replica; the same command, args
 * and secret bindings, now as `secretKeyRef`/`envFrom` the kubelet resolves)
 * and, for an HTTP server, a `v1/Service`. Every object is labelled as
 * managed by apiary with its manifest's name, so the runtime prunes only
 * what it made. Pure: what to apply (or print for Flux or Argo CD), nothing
 * sent anywhere.
 */
import { secretForms } from '../crypto/secret-data.js';
import type { MCPServerResource, Resource, SecretResource } from '../manifests/resource.js';

export const MANAGED_BY = 'app.kubernetes.io/managed-by';
export const NAME_LABEL = 'apiary.dev/name';
export const KIND_LABEL = 'apiary.dev/kind';
export const FIELD_MANAGER = 'apiary';
/** On a Secret the runtime applied: a keyed fingerprint of its values, to apply only what changed (never the values). */
export const VALUES_HASH_ANNOTATION = 'apiary.dev/values-hash';
/** The port an HTTP server listens on in its container ($PORT), behind its Service's port 80. */
export const CONTAINER_PORT = 8080;

export type KubeObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels: Record<string, string>; annotations?: Record<string, string> } } & Record<string, unknown>;

export interface RenderProblem {
  kind: 'MCPServer' | 'Secret';
  name: string;
  message: string;
  /** Not an error: nothing to deploy (a hosted server). */
  skipped?: boolean;
}

export interface Rendered {
  objects: KubeObject[];
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
  const out: Rendered = { objects: [], problems: [], secretReferences: [] };
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
    else out.objects.push(...rendered.objects);
  }
  return out;
}

function secretKeys(secret: SecretResource): string[] {
  return [...secretForms(secret).keys()].sort();
}

/** One MCPServer: its Deployment, and a Service when it speaks HTTP. */
export function renderServer(server: MCPServerResource, options: RenderOptions = {}): { objects: KubeObject[] } | { problem: string } {
  const spec = server.manifest.spec;
  if (spec.remote !== undefined) return { problem: 'a hosted server (spec.remote) runs nowhere to deploy; apiary fronts it from where it runs' };
  if (spec.image === undefined) return { problem: 'spec.image is required to run on Kubernetes (the container image the command runs in)' };
  if ((spec.restartPolicy ?? 'Always') !== 'Always') return { problem: `restartPolicy ${spec.restartPolicy} cannot be kept by a Deployment (its pods always restart); use Always, or run this server locally` };
  const transport = spec.transport ?? 'stdio';
  const http = transport !== 'stdio';
  const env: Record<string, unknown>[] = (spec.env ?? []).map((e) => {
    const ref = e.valueFrom?.secretKeyRef;
    if (ref !== undefined) return { name: e.name, valueFrom: { secretKeyRef: { name: ref.name, key: ref.key, ...(ref.optional === true ? { optional: true } : {}) } } };
    return { name: e.name, value: e.value ?? '' };
  });
  if (http && !env.some((e) => e['name'] === 'PORT')) env.unshift({ name: 'PORT', value: String(CONTAINER_PORT) });
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
          ...(spec.strategy?.rollingUpdate?.drainSeconds !== undefined ? { terminationGracePeriodSeconds: spec.strategy.rollingUpdate.drainSeconds } : {}),
        },
      },
    },
  };
  if (!http) return { objects: [deployment] };
  const service: KubeObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta('MCPServer', server.name, options),
    spec: { selector, ports: [{ name: 'mcp', port: 80, targetPort: 'mcp', protocol: 'TCP' }] },
  };
  return { objects: [deployment, service] };
}
