/** What every reconciler is handed: the desired state, the world, and where status goes. */
import type { Clock } from '../util/clock.js';
import type { DesiredState } from '../manifests/desired-state.js';
import type { Logger } from '../util/logger.js';
import type { Gateway } from '../mcp/gateway.js';
import type { HealthFailure } from '../mcp/health.js';
import type { Runtime } from '../runtime/runtime.js';
import type { RecordBook } from '../state/record-book.js';
import type { ServerMemory } from './mcpserver-plan.js';
import type { SecretResolver } from './secret-resolver.js';

export interface ReconcileContext {
  desired: DesiredState;
  runtime: Runtime;
  /** MCP endpoints and readiness: the backend's, which attaches and detaches them as its processes come and go. */
  gateway: Gateway;
  /** The liveness failure the backend observed for the server's process, if any (the gateway's pings, a protocol error). */
  liveness(name: string): { pid: number; message: string; reason?: HealthFailure } | undefined;
  secrets: SecretResolver;
  records: RecordBook;
  memory: Map<string, ServerMemory>;
  clock: Clock;
  logger: Logger;
  /** The allowlisted part of the controller's environment, which every server inherits. */
  inheritedEnv: Readonly<Record<string, string>>;
  /** A rollout restart asked for at `requestedAt` has been carried out. */
  restartHandled(name: string, requestedAt: string): Promise<void>;
  /** Keyed fingerprint of secret values, so a config hash never holds a value. */
  fingerprint(value: string): string;
}

export type { ReconcileResult, Reconciler } from '../api/runnable.js';
