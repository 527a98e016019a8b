/**
 * An MCPServer's status when it runs on Kubernetes, with the same phases and
 * conditions as a local server so `get`, `describe`, `wait` and the console
 * read it unchanged. The phase is the kubelet's word on the pod
 * (`podVerdict`); SecretsResolved still comes from the manifest directory,
 * so a secret deleted under a running pod reads as it does locally: the pod
 * keeps running, and cannot restart until the secret is back. Pure.
 */
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import { serverAppliedRevision } from '../api/applied-revision.js';
import { setCondition, type Condition, type MCPServerStatus } from '../api/status.js';
import type { McpView } from '../mcp/gateway.js';
import type { SecretProblem } from '../reconcilers/resolve-env.js';
import type { Reachability } from './cluster.js';
import { podVerdict } from './pod-status.js';
import { handshakeName } from '../mcp/era.js';

export type ClusterDesired =
  | { state: 'invalid'; message: string }
  | { state: 'unrunnable'; generation: number; message: string }
  | { state: 'valid'; generation: number; problems: SecretProblem[] };

export interface ClusterStatusInput {
  now: number;
  desired: ClusterDesired;
  /** The generation status refers to when the manifest is invalid (the last valid one). */
  lastGeneration: number;
  deployment?: V1Deployment;
  /** The server's pods, the one that counts first. */
  pods: V1Pod[];
  /** The manifest generation last applied to the Deployment. */
  appliedGeneration?: number;
  /** Why the last apply failed, if it did. */
  applyError?: string;
  reachable: Reachability;
  previous?: MCPServerStatus;
  /** apiary's endpoint for the server (through attach or port-forward), once its pod runs. */
  mcp?: McpView;
  /** Why the endpoint cannot reach the pod (attach or port-forward refused). */
  linkError?: string;
  /** Following git: the revision the manifest was read from (status names it once the pod runs it). */
  revision?: string | undefined;
}

/** A running pod is Ready once the MCP handshake through apiary's link to it has succeeded, as a local process is. */
function mcpReadiness(pod: string, mcp: McpView | undefined, linkError: string | undefined): [boolean, string, string] | undefined {
  if (linkError !== undefined) return [false, 'AttachFailed', linkError];
  if (mcp === undefined) return undefined;
  if (mcp.endpointError !== undefined) return [false, 'EndpointUnavailable', mcp.endpointError];
  if (mcp.state === 'ready') {
    const info = mcp.serverInfo ? `${mcp.serverInfo.name} ${mcp.serverInfo.version}` : 'the server';
    const filtered = mcp.filteredTools?.length ?? 0;
    return [true, 'Initialized', `${info} in pod ${pod} answered ${handshakeName(mcp.protocolVersion)} and listed ${(mcp.toolCount ?? 0) + filtered} tool(s)${filtered > 0 ? `, ${filtered} filtered out by spec.tools` : ''}`];
  }
  if (mcp.state === 'failed') return [false, 'HandshakeFailed', mcp.message ?? 'the MCP handshake failed'];
  return [false, 'Initializing', mcp.message ?? `waiting for the MCP initialize handshake with pod ${pod}`];
}

/** The Deployment has caught up with its spec: every replica runs the current template. */
export function rolledOut(d: V1Deployment | undefined): boolean {
  if (d === undefined) return false;
  const want = d.spec?.replicas ?? 1;
  const s = d.status ?? {};
  return (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) && (s.updatedReplicas ?? 0) >= want && (s.replicas ?? 0) <= want;
}

export function clusterServerStatus(input: ClusterStatusInput): MCPServerStatus {
  const { desired, deployment, previous } = input;
  const nowIso = new Date(input.now).toISOString();
  const generation = desired.state === 'invalid' ? input.lastGeneration : desired.generation;
  let conditions: Condition[] = previous?.conditions ?? [];
  const set = (type: string, status: boolean | 'Unknown', reason: string, message: string, observedGeneration = generation): void => {
    conditions = setCondition(conditions, { type, status: status === 'Unknown' ? 'Unknown' : status ? 'True' : 'False', reason, message, observedGeneration }, nowIso);
  };
  const replicas = deployment?.spec?.replicas ?? 1;
  const pod = input.pods[0];
  const v = deployment === undefined && pod === undefined && desired.state !== 'valid'
    ? { phase: 'Stuck' as const, ready: false, reason: desired.state === 'invalid' ? 'InvalidManifest' : 'Unrunnable', message: desired.message, restartCount: 0 }
    : podVerdict(pod, replicas);
  const problems = desired.state === 'valid' ? desired.problems : [];
  const first = problems[0];
  const running = v.phase === 'Running';
  const caughtUp = rolledOut(deployment) && input.appliedGeneration === generation;
  const blocked = first !== undefined && deployment !== undefined && input.appliedGeneration !== undefined && input.appliedGeneration !== generation;
  const lost = !input.reachable.ok;

  // Ready: the kubelet's readiness; its generation the one serving while a rollout runs.
  const previousReady = previous?.conditions.find((c) => c.type === 'Ready');
  const readyGeneration = caughtUp || previousReady === undefined ? generation : previousReady.observedGeneration;
  const handshake = v.ready && pod?.metadata?.name !== undefined ? mcpReadiness(pod.metadata.name, input.mcp, input.linkError) : undefined;
  if (lost) set('Ready', 'Unknown', 'ClusterUnreachable', `${input.reachable.error ?? 'the API server is unreachable'}; last known: ${previous?.phase ?? 'nothing yet'}`, previousReady?.observedGeneration ?? generation);
  else if (handshake !== undefined) set('Ready', handshake[0], handshake[1], handshake[2], readyGeneration);
  else set('Ready', v.ready, v.reason, v.message, readyGeneration);

  if (desired.state === 'invalid') set('SecretsResolved', 'Unknown', 'InvalidManifest', 'the manifest is invalid');
  else if (first !== undefined) {
    const all = problems.map((p) => p.message).join('; ');
    set('SecretsResolved', false, first.reason, running ? `${all}; the running pod keeps running but cannot restart until it is back` : all);
  } else set('SecretsResolved', true, 'SecretsResolved', 'every referenced secret resolved');

  if (desired.state === 'invalid') set('Stalled', true, 'InvalidManifest', deployment !== undefined ? `${desired.message}; the cluster keeps running what was applied last` : desired.message);
  else if (desired.state === 'unrunnable') set('Stalled', true, 'Unrunnable', desired.message);
  else if (input.applyError !== undefined && !lost) set('Stalled', true, 'ApplyFailed', input.applyError);
  else if (v.phase === 'Stuck') set('Stalled', true, v.reason, v.message);
  else if (blocked) set('Stalled', true, first.reason, `update to generation ${generation} blocked: ${first.message}; the cluster keeps running generation ${input.appliedGeneration}`);
  else set('Stalled', false, 'Progressing', 'no intervention needed');

  const rolling = deployment !== undefined && !rolledOut(deployment) && running;
  const reconciling = v.phase === 'Pending' || v.phase === 'Terminating';
  if (lost) set('Reconciling', 'Unknown', 'ClusterUnreachable', input.reachable.error ?? 'the API server is unreachable');
  else if (rolling) set('Reconciling', true, 'RollingUpdate', `Deployment ${deployment.metadata?.name} is rolling out; pod ${pod?.metadata?.name ?? '?'} serves until the new one is ready`);
  else set('Reconciling', reconciling, reconciling ? (v.phase === 'Pending' ? 'Starting' : 'Stopping') : 'Reconciled', reconciling ? v.message : 'the cluster matches the manifest');

  const order = ['Ready', 'SecretsResolved', 'Reconciling', 'Stalled'];
  conditions.sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type));
  const status: MCPServerStatus = {
    observedGeneration: generation,
    // Without the API server, the last phase seen is still the best guess (the conditions say it is a guess).
    phase: lost && previous !== undefined ? previous.phase : v.phase,
    conditions,
    restartCount: v.restartCount,
  };
  if (pod?.metadata?.name !== undefined) status.pod = `${pod.metadata.namespace ?? ''}/${pod.metadata.name}`;
  const started = pod?.status?.containerStatuses?.[0]?.state?.running?.startedAt;
  if (running && started !== undefined) status.startedAt = new Date(started).toISOString();
  if (v.lastTermination !== undefined) status.lastTermination = v.lastTermination;
  const mcp = input.mcp;
  if (mcp?.url !== undefined) status.url = mcp.url;
  if (running && mcp?.state === 'ready') {
    if (mcp.serverInfo) status.serverInfo = mcp.serverInfo;
    if (mcp.protocolVersion) status.protocolVersion = mcp.protocolVersion;
    status.tools = mcp.toolCount ?? 0;
    if (mcp.filteredTools !== undefined && mcp.filteredTools.length > 0) status.toolsFiltered = mcp.filteredTools;
  }
  const message = lost
    ? `the API server is unreachable: ${input.reachable.error ?? ''}`.trim()
    : desired.state === 'invalid'
      ? `manifest invalid${deployment !== undefined ? ', the cluster keeps what was applied last' : ''}: ${desired.message}`
      : blocked
        ? `update blocked: ${first.message}`
        : first !== undefined && running
          ? `${first.message}; keeps running, cannot restart until it is back`
          : v.phase !== 'Running' ? v.message : undefined;
  if (message !== undefined) status.message = message;
  const applied = serverAppliedRevision(status, input.revision, previous?.lastAppliedRevision);
  if (applied !== undefined) status.lastAppliedRevision = applied;
  return status;
}
