/**
 * The reconcilers of the Kubernetes runtime: the same desired state, status
 * records and events as the process runtime, but the world is a cluster.
 * Each MCPServer becomes its Deployment (and Service, and NetworkPolicy) by server-side apply,
 * each Secret a Kubernetes Secret whose values the controller decrypts
 * (they go to the API server and nowhere else), and status is read from the
 * informers' caches. Deleting a manifest prunes what apiary made for it.
 */
import { specHash } from '../api/generation.js';
import { resourceKey } from '../api/names.js';
import type { MCPServerStatus } from '../api/status.js';
import type { Clock } from '../util/clock.js';
import type { DesiredState } from '../manifests/desired-state.js';
import type { Logger } from '../util/logger.js';
import { isApiaryError, messageOf } from '../errors.js';
import { formatManifestError } from '../manifests/errors.js';
import type { MCPServerResource } from '../manifests/resource.js';
import type { ReconcileResult, Reconciler } from '../reconcilers/context.js';
import { resolveEnv } from '../reconcilers/resolve-env.js';
import { SecretReconciler } from '../reconcilers/secret.js';
import type { SecretResolver } from '../reconcilers/secret-resolver.js';
import type { SecretEntry } from '../crypto/secret-data.js';
import type { RecordBook } from '../state/record-book.js';
import type { Gateway } from '../mcp/gateway.js';
import { healthOf } from '../reconcilers/mcpserver.js';
import type { KubeCluster } from './cluster.js';
import type { ClusterLinks } from './links.js';
import { podVerdict } from './pod-status.js';
import { managedLabels, renderServer, type KubeObject, VALUES_HASH_ANNOTATION } from './render.js';
import { clusterServerStatus, type ClusterDesired } from './server-status.js';

/** On the Deployment: the manifest generation it was applied from. */
export const GENERATION_ANNOTATION = 'apiary.dev/generation';
/** On the pod template: a keyed fingerprint of the secret values the server uses, so a new value rolls the pods (never the values). */
export const SECRETS_HASH_ANNOTATION = 'apiary.dev/secrets-hash';
/** On the pod template: the last `apiary restart`, as kubectl rollout restart's restartedAt. */
export const RESTARTED_AT_ANNOTATION = 'apiary.dev/restartedAt';
/** What apiary makes for one MCPServer, pruned with it. */
const SERVER_KINDS = ['Deployment', 'Service', 'NetworkPolicy'] as const;
/** Objects are applied again after this even when nothing changed here, undoing edits made in the cluster. */
const REAPPLY_MS = 5 * 60_000;
/** While the API server is unreachable, a server is looked at again this often. */
const UNREACHABLE_RETRY_MS = 5_000;

export interface ClusterContext {
  desired: DesiredState;
  records: RecordBook;
  secrets: SecretResolver;
  clock: Clock;
  logger: Logger;
  cluster: KubeCluster;
  /** The local MCP endpoints, as for local servers. */
  gateway: Gateway;
  /** Attach and port-forward from those endpoints to the servers' pods. */
  links: ClusterLinks;
  fingerprint(value: string): string;
  restartHandled(name: string, requestedAt: string): Promise<void>;
  /** The liveness failure the backend observed through the server's link (the gateway's pings), if any. */
  liveness(name: string): { pid: number; message: string } | undefined;
}

export class ClusterServerReconciler {
  readonly #ctx: ClusterContext;
  /** Hosted servers (spec.remote) run nowhere to deploy: the local reconciler fronts them, as without a cluster. */
  readonly #hosted: Reconciler;
  /** When each server's objects were last applied (re-applied after REAPPLY_MS even when unchanged). */
  readonly #appliedAt = new Map<string, number>();
  readonly #applyErrors = new Map<string, string>();
  readonly #restarts = new Map<string, string>();
  /** The liveness failure each server's pod was last replaced for: each failure is acted on once. */
  readonly #replacedFor = new Map<string, object>();

  constructor(ctx: ClusterContext, hosted: Reconciler) {
    this.#ctx = ctx;
    this.#hosted = hosted;
  }

  /** `apiary restart`: the pods are replaced by a rollout (the template's restartedAt changes). */
  requestRestart(name: string, requestedAt: string): boolean {
    if (this.#restarts.get(name) === requestedAt) return false;
    this.#restarts.set(name, requestedAt);
    this.#ctx.records.event('MCPServer', name, 'Normal', 'RestartRequested', `rollout restart requested at ${requestedAt}`);
    return true;
  }

  async reconcile(name: string): Promise<ReconcileResult> {
    const ctx = this.#ctx;
    const { cluster } = ctx;
    // 1. Desired state.
    const entry = ctx.desired.get(resourceKey('MCPServer', name));
    if (entry === undefined) {
      // 2a. Deleted: prune what apiary made for it, then forget it.
      const removed: string[] = [];
      for (const kind of SERVER_KINDS) if (await cluster.remove(kind, name)) removed.push(kind);
      if (removed.length > 0) ctx.logger.info('server removed from the cluster', { server: name, deleted: removed.join(', '), namespace: cluster.namespace });
      this.#appliedAt.delete(name);
      this.#applyErrors.delete(name);
      this.#replacedFor.delete(name);
      await ctx.links.remove(name);
      await ctx.gateway.release(name);
      if (ctx.records.get('MCPServer', name) !== undefined) ctx.logger.info('server removed', { server: name });
      await ctx.records.remove('MCPServer', name);
      return {};
    }
    if (entry.resource?.kind === 'MCPServer' && entry.resource.manifest.spec.remote !== undefined) {
      // Hosted: what apiary deployed for it before (it ran in a pod) goes; the endpoint is fronted from here.
      for (const kind of SERVER_KINDS) if (await cluster.remove(kind, name)) ctx.logger.info('hosted server: its pod\'s objects removed from the cluster', { server: name, kind });
      if (ctx.links.has(name)) await ctx.links.remove(name);
      return this.#hosted.reconcile(name);
    }
    const failure = ctx.liveness(name);
    if (failure !== undefined && this.#replacedFor.get(name) !== failure) {
      this.#replacedFor.set(name, failure);
      await this.#replaceUnhealthyPod(name, failure.message);
    }
    let desired: ClusterDesired;
    let objects: KubeObject[] = [];
    let secretsHash = '';
    if (entry.resource === undefined || entry.resource.kind !== 'MCPServer') {
      ctx.records.ensure('MCPServer', name);
      desired = { state: 'invalid', message: entry.errors.map(formatManifestError).join('; ') };
    } else {
      const resource = entry.resource;
      const { labels, annotations } = resource.manifest.metadata;
      const generation = ctx.records.observeSpec('MCPServer', name, specHash(resource.manifest), { ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) });
      const rendered = renderServer(resource, { namespace: cluster.namespace });
      if ('problem' in rendered) {
        desired = { state: 'unrunnable', generation, message: rendered.problem };
      } else {
        const resolved = await resolveEnv(resource.manifest.spec, (secret) => ctx.secrets.lookup(ctx.desired, secret));
        desired = { state: 'valid', generation, problems: resolved.problems };
        // What the pod is given is kept out of what it answers through the link (a missing secret leaves the values it has).
        if (resolved.problems.length === 0) ctx.gateway.setSecrets(name, resolved.secrets);
        secretsHash = ctx.fingerprint(JSON.stringify(resolved.vars.filter(([, v]) => typeof v !== 'string').map(([k, v]) => [k, (v as { reveal(): string }).reveal()])));
        objects = rendered.objects;
        // 2b. A secret the server uses whose values apiary has not applied yet: wait for them (the
        // Secret informer wakes this server), or a new pod could start with the old values, or none.
        const pending: string[] = [];
        // (A secret here lacking a key the server needs is waited for too: applied, it makes the kubelet say
        // which key is missing, rather than, for a moment, that the whole secret is.)
        for (const secret of resolved.referenced) {
          const lookup = await ctx.secrets.lookup(ctx.desired, secret);
          const values = lookup.state === 'ok' ? clusterSecretData(ctx, [...lookup.entries.values()]) : undefined;
          if (values !== undefined && cluster.secretValuesHash(secret) !== values.hash) pending.push(secret);
        }
        if (pending.length > 0 && cluster.reachable.ok) {
          await this.#writeStatus(name, desired);
          return { requeueAfterMs: 1000 };
        }
      }
    }

    // 3. Apply, when what the cluster has is not this generation (or not lately).
    let requeueAfterMs: number | undefined;
    if (desired.state === 'valid') {
      const { generation } = desired;
      const deployment = cluster.deployment(name);
      const template = deployment?.spec?.template.metadata?.annotations;
      const restartAt = this.#restarts.get(name) ?? template?.[RESTARTED_AT_ANNOTATION];
      const restartPending = restartAt !== undefined && restartAt !== template?.[RESTARTED_AT_ANNOTATION];
      // What the cluster runs, read from the Deployment itself: a controller that starts again applies only what changed.
      const changed = deployment === undefined || Number(deployment.metadata?.annotations?.[GENERATION_ANNOTATION] ?? 0) !== desired.generation || (template?.[SECRETS_HASH_ANNOTATION] ?? '') !== secretsHash || restartPending;
      const stale = changed || ctx.clock.now() - (this.#appliedAt.get(name) ?? 0) > REAPPLY_MS;
      // A server with a secret missing here keeps what the cluster runs (its pods hold the values
      // they started with); only a server the cluster has never seen is applied, for the kubelet to report.
      const blocked = desired.problems.length > 0 && deployment !== undefined;
      if (stale && !blocked) {
        const annotated = objects.map((o) => annotate(o, generation, secretsHash, restartAt));
        try {
          for (const object of annotated) await cluster.apply(object);
          // What this generation no longer has goes: the Service of a server now stdio, the NetworkPolicy of one no longer sandboxed.
          for (const kind of ['Service', 'NetworkPolicy'] as const) if (objects.every((o) => o.kind !== kind)) await cluster.remove(kind, name);
          this.#appliedAt.set(name, ctx.clock.now());
          this.#applyErrors.delete(name);
          // A new template over a running Deployment: its pods are replaced, a rollout as telemetry counts them.
          if (changed && deployment !== undefined) ctx.gateway.gate.config.telemetry.lifecycle(name, 'rollout');
          if (changed) {
            ctx.records.event('MCPServer', name, 'Normal', 'Applied', `${annotated.map((o) => `${o.kind} ${cluster.namespace}/${o.metadata.name}`).join(' and ')} applied (generation ${generation})${restartPending ? ', restarting its pods' : ''}`);
            ctx.logger.info('server applied to the cluster', { server: name, generation, namespace: cluster.namespace });
          }
          if (restartPending && restartAt !== undefined) await ctx.restartHandled(name, restartAt);
        } catch (err) {
          const message = messageOf(err);
          if (isApiaryError(err) && err.code === 'ClusterRefused') {
            if (this.#applyErrors.get(name) !== message) ctx.records.event('MCPServer', name, 'Warning', 'ApplyFailed', message);
            this.#applyErrors.set(name, message);
            ctx.logger.warn('apply refused by the API server', { server: name, error: message });
          }
          requeueAfterMs = UNREACHABLE_RETRY_MS;
        }
      }
    }
    // 4. apiary's endpoint for it, linked to the pod that runs it.
    if (entry.resource?.kind === 'MCPServer' && desired.state === 'valid') await this.#link(name, entry.resource);
    else await ctx.links.remove(name);
    // 5. Status, from the informers' caches.
    await this.#writeStatus(name, desired);
    if (!cluster.reachable.ok) requeueAfterMs = UNREACHABLE_RETRY_MS;
    return requeueAfterMs !== undefined ? { requeueAfterMs } : {};
  }

  /** A running container is reached through attach (stdio) or a port-forward (HTTP); otherwise clients are told why not. */
  async #link(name: string, resource: MCPServerResource): Promise<void> {
    const ctx = this.#ctx;
    const spec = resource.manifest.spec;
    const deployment = ctx.cluster.deployment(name);
    const pod = ctx.cluster.pods(name)[0];
    const verdict = podVerdict(pod, deployment?.spec?.replicas ?? 1);
    if (verdict.phase !== 'Running' || pod?.metadata?.name === undefined) {
      ctx.links.down(name, `${verdict.phase}: ${verdict.message}`);
      return;
    }
    const port = spec.port ?? (await ctx.gateway.ports.portFor(name));
    await ctx.links.ensure(name, pod.metadata.name, spec.transport ?? 'stdio', port, healthOf(spec.healthCheck), spec.tools);
  }

  /** Liveness failed through the link (the gateway's pings): the pod is deleted, for its Deployment to replace it, as a failed liveness probe restarts a container. */
  async #replaceUnhealthyPod(name: string, message: string): Promise<void> {
    const ctx = this.#ctx;
    const pod = ctx.cluster.pods(name)[0]?.metadata?.name;
    ctx.records.event('MCPServer', name, 'Warning', 'Unhealthy', `${message}; deleting pod ${pod ?? '?'} for its Deployment to replace it`);
    ctx.logger.warn('server unhealthy', { server: name, pod, reason: message });
    ctx.gateway.gate.config.telemetry.lifecycle(name, 'restart');
    if (pod !== undefined) await ctx.cluster.remove('Pod', pod).catch((err: unknown) => ctx.logger.warn('cannot delete the unhealthy pod', { server: name, pod, error: messageOf(err) }));
  }

  async #writeStatus(name: string, desired: ClusterDesired): Promise<void> {
    const ctx = this.#ctx;
    const record = ctx.records.get('MCPServer', name);
    if (record === undefined) return;
    const previous = record.status as MCPServerStatus;
    const deployment = ctx.cluster.deployment(name);
    const applied = deployment?.metadata?.annotations?.[GENERATION_ANNOTATION];
    const applyError = this.#applyErrors.get(name);
    const mcp = ctx.gateway.view(name);
    const linkError = ctx.links.error(name);
    const status = clusterServerStatus({
      ...(mcp !== undefined ? { mcp } : {}),
      ...(linkError !== undefined ? { linkError } : {}),
      now: ctx.clock.now(),
      desired,
      lastGeneration: previous.observedGeneration,
      ...(deployment !== undefined ? { deployment } : {}),
      pods: ctx.cluster.pods(name),
      ...(applied !== undefined ? { appliedGeneration: Number(applied) } : {}),
      ...(applyError !== undefined ? { applyError } : {}),
      reachable: ctx.cluster.reachable,
      previous,
      revision: ctx.desired.revisionOf(resourceKey('MCPServer', name)),
    });
    // The kubelet restarted the container in the same pod: a restart, as telemetry counts them (a new pod starts at 0).
    if (status.pod !== undefined && status.pod === previous.pod) {
      for (let n = previous.restartCount; n < status.restartCount; n++) ctx.gateway.gate.config.telemetry.lifecycle(name, 'restart');
    }
    if (previous.phase !== status.phase) {
      if (['Stuck', 'CrashLoopBackOff', 'Failed'].includes(status.phase)) ctx.records.event('MCPServer', name, 'Warning', status.conditions.find((c) => c.type === 'Ready')?.reason ?? status.phase, status.message ?? status.phase);
      else if (status.phase === 'Running') ctx.records.event('MCPServer', name, 'Normal', 'Started', status.conditions.find((c) => c.type === 'Ready')?.message ?? 'running');
    }
    await ctx.records.setStatus('MCPServer', name, status);
  }
}

/** The object with apiary's bookkeeping annotations (generation on the Deployment; secrets and restart on its pod template). */
function annotate(object: KubeObject, generation: number, secretsHash: string, restartedAt: string | undefined): KubeObject {
  if (object.kind !== 'Deployment') return object;
  const spec = object['spec'] as { template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> } } };
  return {
    ...object,
    metadata: { ...object.metadata, annotations: { ...object.metadata.annotations, [GENERATION_ANNOTATION]: String(generation) } },
    spec: {
      ...spec,
      template: {
        ...spec.template,
        metadata: {
          ...spec.template.metadata,
          annotations: { ...spec.template.metadata.annotations, ...(secretsHash !== '' ? { [SECRETS_HASH_ANNOTATION]: secretsHash } : {}), ...(restartedAt !== undefined ? { [RESTARTED_AT_ANNOTATION]: restartedAt } : {}) },
        },
      },
    },
  };
}

/** A Secret's data as apiary applies it, and its keyed fingerprint (undefined while a value cannot be decrypted here). */
function clusterSecretData(ctx: Pick<ClusterContext, 'fingerprint'>, entries: SecretEntry[]): { data: Record<string, string>; hash: string } | undefined {
  if (entries.some((e) => e.value === undefined)) return undefined;
  const data = Object.fromEntries([...entries].sort((a, b) => a.key.localeCompare(b.key)).map((e) => [e.key, Buffer.from(e.value!.reveal(), 'utf8').toString('base64')]));
  return { data, hash: ctx.fingerprint(JSON.stringify(data)) };
}

/**
 * Secrets: status exactly as locally (the SecretReconciler), then the
 * cluster's copy: applied with the decrypted values when they change, left
 * as it is while a value cannot be decrypted here, deleted with the manifest.
 */
export class ClusterSecretReconciler {
  readonly #ctx: ClusterContext;
  readonly #status: SecretReconciler;
  readonly #warned = new Map<string, string>();

  constructor(ctx: ClusterContext) {
    this.#ctx = ctx;
    this.#status = new SecretReconciler(ctx);
  }

  async reconcile(name: string): Promise<ReconcileResult> {
    const ctx = this.#ctx;
    const { cluster } = ctx;
    await this.#status.reconcile(name);
    const lookup = await ctx.secrets.lookup(ctx.desired, name);
    try {
      if (lookup.state === 'missing') {
        if (await cluster.remove('Secret', name)) {
          ctx.logger.info('secret deleted from the cluster; pods that use it keep their values until they restart', { secret: name, namespace: cluster.namespace });
        }
        return {};
      }
      if (lookup.state === 'invalid') return {};
      const entries = [...lookup.entries.values()];
      const failed = entries.find((e) => e.value === undefined);
      if (failed !== undefined) {
        const message = `not applied to the cluster: key "${failed.key}" cannot be decrypted here (${failed.error?.message ?? 'no value'}); the cluster keeps what it has`;
        if (this.#warned.get(name) !== message) {
          ctx.records.event('Secret', name, 'Warning', 'ApplyFailed', message);
          ctx.logger.warn('secret not applied to the cluster', { secret: name, reason: message });
        }
        this.#warned.set(name, message);
        return {};
      }
      this.#warned.delete(name);
      const { data, hash } = clusterSecretData(ctx, entries)!;
      if (cluster.has('Secret', name) && cluster.secretValuesHash(name) === hash) return {};
      await cluster.apply({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, labels: managedLabels('Secret', name), annotations: { [VALUES_HASH_ANNOTATION]: hash } },
        type: 'Opaque',
        data,
      });
      ctx.records.event('Secret', name, 'Normal', 'Applied', `Secret ${cluster.namespace}/${name} applied (${entries.length} key(s))`);
      ctx.logger.info('secret applied to the cluster', { secret: name, namespace: cluster.namespace, keys: entries.length });
      return {};
    } catch (err) {
      // Said once per cause: a lost API server fails every retry the same way.
      const message = messageOf(err);
      if (this.#warned.get(name) !== message) ctx.logger.warn('secret not applied to the cluster; retrying', { secret: name, error: message });
      this.#warned.set(name, message);
      return { requeueAfterMs: UNREACHABLE_RETRY_MS };
    }
  }
}
