/**
 * Status shapes (DESIGN.md section 3). Conditions follow Kubernetes'
 * metav1.Condition; phase is derived from them for display.
 */
export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration: number;
}

export type MCPServerConditionType = 'Ready' | 'SecretsResolved' | 'Reconciling' | 'Stalled';

export const MCPSERVER_PHASES = [
  'Pending',
  'Running',
  'Stuck',
  'CrashLoopBackOff',
  'Failed',
  'Completed',
  'Suspended',
  'Terminating',
] as const;
export type MCPServerPhase = (typeof MCPSERVER_PHASES)[number];

export interface LastTermination {
  exitCode: number | null;
  signal: string | null;
  finishedAt: string;
  reason?: string;
  /** A failed run: the last line of its output, secrets redacted (the kubelet's terminated.message). */
  message?: string;
}

export interface MCPServerStatus {
  observedGeneration: number;
  phase: MCPServerPhase;
  conditions: Condition[];
  pid?: number;
  /** On the Kubernetes runtime: the pod that serves, as namespace/name (instead of a pid). */
  pod?: string;
  startedAt?: string;
  restartCount: number;
  lastTermination?: LastTermination;
  url?: string;
  /** From the MCP initialize handshake. */
  serverInfo?: { name: string; version: string };
  protocolVersion?: string;
  /** How many of the server's tools apiary's endpoint exposes (after spec.tools). */
  tools?: number;
  /** The tools the server listed that spec.tools keeps from clients. */
  toolsFiltered?: string[];
  /** The sandbox the running process is in (spec.sandbox), in one line. */
  sandbox?: string;
  message?: string;
  /** When the controller will try again (back-off), if it is waiting. */
  nextRetryAt?: string;
  /** Following a git repository: the revision the running server's manifest came from. */
  lastAppliedRevision?: string;
}

export type SecretPhase = 'Ready' | 'Invalid' | 'DecryptFailed';

export interface SecretStatus {
  observedGeneration: number;
  phase: SecretPhase;
  conditions: Condition[];
  keys: string[];
  /** Key -> how it is stored in the manifest. */
  forms: Record<string, 'sealed' | 'plain' | 'base64'>;
  decryptable: boolean;
  usedBy: string[];
  message?: string;
  /** Following a git repository: the revision this secret was last read from. */
  lastAppliedRevision?: string;
}

export interface ResourceEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
}

/** Set a condition; lastTransitionTime moves only when status flips. */
export function setCondition(
  conditions: readonly Condition[],
  next: Omit<Condition, 'lastTransitionTime'>,
  now: string,
): Condition[] {
  const previous = conditions.find((c) => c.type === next.type);
  const lastTransitionTime =
    previous !== undefined && previous.status === next.status ? previous.lastTransitionTime : now;
  const updated: Condition = { ...next, lastTransitionTime };
  const rest = conditions.filter((c) => c.type !== next.type);
  return [...rest, updated];
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export type SourcePhase = 'Pending' | 'Ready' | 'FetchFailed' | 'Invalid' | 'Suspended';

/** A GitRepository's status (step 12), in the shape of Flux's source-controller. */
export interface GitRepositoryStatus {
  observedGeneration: number;
  phase: SourcePhase;
  conditions: Condition[];
  /** The repository as fetched (credentials in the URL never shown). */
  url: string;
  /** The revision that runs: what was last fetched, validated and switched to. */
  artifact?: { revision: string; lastUpdateTime: string };
  /** When the repository was last fetched successfully (with or without a new revision). */
  fetchedAt?: string;
  /** A revision fetched but not applied (its manifests do not validate). */
  lastAttemptedRevision?: string;
  /** The last `apiary reconcile source` request handled (its requestedAt). */
  lastHandledReconcileAt?: string;
  /** When the next fetch is due. */
  nextFetchAt?: string;
  message?: string;
}

/** The Gateway's status (step 17): whether its settings are in force at every endpoint, and what they are now. */
export interface GatewayStatus {
  observedGeneration: number;
  phase: 'Ready' | 'Invalid' | 'Degraded';
  conditions: Condition[];
  /** The auth mode the endpoints apply (none under `up --no-auth`, whatever the manifest says). */
  mode: 'token' | 'oidc' | 'none';
  /** Whether calls are written to the audit log. */
  audit: boolean;
  /** Where Prometheus scrapes, when spec.telemetry.prometheus is set and the exporter listens. */
  metricsUrl?: string;
  /** How many AccessPolicies are compiled into what the endpoints apply. */
  policies: number;
  message?: string;
}

/** An AccessPolicy's status: whether its rules are among those the endpoints apply, and if not, why. */
export interface AccessPolicyStatus {
  observedGeneration: number;
  phase: 'Ready' | 'Invalid' | 'Unused';
  conditions: Condition[];
  rules: number;
  message?: string;
}

/** What a status record holds, by kind. */
export type AnyStatus = MCPServerStatus | SecretStatus | GitRepositoryStatus | GatewayStatus | AccessPolicyStatus;
