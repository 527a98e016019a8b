/**
 * What the kubelet says about a server's pod, in apiary's words: a container
 * waiting with CreateContainerConfigError on a missing secret or key is
 * Stuck, naming it (the kubelet's own messages are parsed, not guessed at);
 * CrashLoopBackOff, image pull errors, readiness and exits map to the phases
 * a local server has. Pure: the runtime feeds it pods from its informer.
 */
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import type { LastTermination, MCPServerPhase } from '../api/status.js';

export interface PodVerdict {
  phase: MCPServerPhase;
  ready: boolean;
  /** The condition reason (SecretNotFound, CrashLoopBackOff, ImagePullBackOff, Starting, ...). */
  reason: string;
  message: string;
  restartCount: number;
  /** The secret (and key) the pod waits for, when that is why it cannot start. */
  missing?: { secret: string; key?: string };
  lastTermination?: LastTermination;
  podName?: string;
}

/** The kubelet's messages for a container whose environment names a secret or key that is not there. */
const SECRET_NOT_FOUND = /^secret "([^"]+)" not found$/;
const KEY_NOT_FOUND = /^couldn't find key (\S+) in Secret ([^/\s]+)\/(\S+)$/;
const IMAGE_REASONS = new Set(['ImagePullBackOff', 'ErrImagePull', 'InvalidImageName', 'ErrImageNeverPull']);

/** The verdict for the server's pod (undefined: none yet); `replicas` 0 is a suspended server. */
export function podVerdict(pod: V1Pod | undefined, replicas: number, container = 'server'): PodVerdict {
  if (replicas === 0 && pod === undefined) return { phase: 'Suspended', ready: false, reason: 'Suspended', message: 'spec.suspend is true (0 replicas)', restartCount: 0 };
  if (pod === undefined) return { phase: 'Pending', ready: false, reason: 'Starting', message: "waiting for the Deployment's pod", restartCount: 0 };
  const podName = pod.metadata?.name;
  const status = (pod.status?.containerStatuses ?? []).find((c) => c.name === container) ?? pod.status?.containerStatuses?.[0];
  const base = { restartCount: status?.restartCount ?? 0, ...(podName !== undefined ? { podName } : {}), ...lastTerminationOf(status) };
  if (pod.metadata?.deletionTimestamp !== undefined) return { ...base, phase: 'Terminating', ready: false, reason: 'Terminating', message: `pod ${podName} is terminating` };
  if (status === undefined) {
    const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
    if (scheduled?.status === 'False') return { ...base, phase: 'Pending', ready: false, reason: scheduled.reason ?? 'Unschedulable', message: scheduled.message ?? 'the pod cannot be scheduled' };
    return { ...base, phase: 'Pending', ready: false, reason: 'Starting', message: `pod ${podName} is ${pod.status?.phase ?? 'Pending'}` };
  }
  const waiting = status.state?.waiting;
  if (waiting !== undefined) {
    const message = waiting.message ?? '';
    if (waiting.reason === 'CreateContainerConfigError') {
      const secret = SECRET_NOT_FOUND.exec(message);
      if (secret !== null) return { ...base, phase: 'Stuck', ready: false, reason: 'SecretNotFound', message: `secret "${secret[1]}" not found (the kubelet cannot start pod ${podName}: CreateContainerConfigError)`, missing: { secret: secret[1]! } };
      const key = KEY_NOT_FOUND.exec(message);
      if (key !== null) return { ...base, phase: 'Stuck', ready: false, reason: 'SecretKeyNotFound', message: `secret "${key[3]}" has no key "${key[1]}" (the kubelet cannot start pod ${podName}: CreateContainerConfigError)`, missing: { secret: key[3]!, key: key[1]! } };
      return { ...base, phase: 'Stuck', ready: false, reason: 'CreateContainerConfigError', message: message || 'the kubelet cannot configure the container' };
    }
    if (waiting.reason === 'CrashLoopBackOff') {
      const last = status.lastState?.terminated;
      const how = last === undefined ? '' : last.signal !== undefined ? ` (killed by signal ${last.signal})` : ` (exit code ${last.exitCode})`;
      return { ...base, phase: 'CrashLoopBackOff', ready: false, reason: 'CrashLoopBackOff', message: `${message || 'back-off restarting the failed container'}${how}` };
    }
    if (waiting.reason !== undefined && IMAGE_REASONS.has(waiting.reason)) return { ...base, phase: 'Stuck', ready: false, reason: waiting.reason, message: message || `cannot pull the image (${waiting.reason})` };
    return { ...base, phase: 'Pending', ready: false, reason: 'Starting', message: `${waiting.reason ?? 'waiting'}${message ? `: ${message}` : ''}` };
  }
  const terminated = status.state?.terminated;
  if (terminated !== undefined) {
    const clean = terminated.exitCode === 0;
    return { ...base, phase: clean ? 'Completed' : 'Failed', ready: false, reason: clean ? 'Completed' : 'Failed', message: `the container exited (${terminated.reason ?? `exit code ${terminated.exitCode}`})` };
  }
  if (status.state?.running !== undefined) {
    return status.ready
      ? { ...base, phase: 'Running', ready: true, reason: 'ContainerReady', message: `pod ${podName} is running and ready` }
      : { ...base, phase: 'Running', ready: false, reason: 'ContainersNotReady', message: `pod ${podName} is running, not ready yet` };
  }
  return { ...base, phase: 'Pending', ready: false, reason: 'Starting', message: `pod ${podName} is ${pod.status?.phase ?? 'Pending'}` };
}

function lastTerminationOf(status: V1ContainerStatus | undefined): { lastTermination?: LastTermination } {
  const t = status?.lastState?.terminated;
  if (t === undefined) return {};
  return {
    lastTermination: {
      exitCode: t.exitCode,
      signal: t.signal !== undefined ? String(t.signal) : null,
      finishedAt: t.finishedAt !== undefined ? new Date(t.finishedAt).toISOString() : '',
      reason: t.reason ?? 'Error',
    },
  };
}
