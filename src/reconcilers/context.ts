/** What every reconciler is handed: the desired state, the world, and where status goes. */
import type { Clock } from '../controller/clock.js';
import type { DesiredState } from '../controller/desired-state.js';
import type { Logger } from '../controller/logger.js';
import type { Runtime } from '../runtime/runtime.js';
import type { RecordBook } from '../state/record-book.js';
import type { ServerMemory } from './mcpserver-plan.js';
import type { SecretResolver } from './secret-resolver.js';

export interface ReconcileContext {
  desired: DesiredState;
  runtime: Runtime;
  secrets: SecretResolver;
  records: RecordBook;
  memory: Map<string, ServerMemory>;
  clock: Clock;
  logger: Logger;
  /** The controller's environment, from which the allowlist is inherited. */
  parentEnv: NodeJS.ProcessEnv;
  /** Keyed fingerprint of secret values, so a config hash never holds a value. */
  fingerprint(value: string): string;
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}
