/**
 * The controller process's last resort: an error no code handled is logged
 * through the controller's Logger instead of ending the process with every
 * server orphaned (their secrets in their environment). It is not how errors
 * are handled; each one it logs is a bug to fix where it was raised.
 */
import type { Logger } from '../util/logger.js';

export interface ProcessGuardOptions {
  logger: Logger;
  /** Asks for the orderly stop (every server stopped, the lock released), as SIGTERM does, ending with a failure exit code. */
  stop: () => void;
  /** The process to guard (tests pass their own emitter). */
  target?: NodeJS.EventEmitter;
}

/**
 * A rejected promise nobody awaited is logged and the controller runs on:
 * the operation that made it has already ended, and nothing was left
 * half-done by it (this is how a dropped request body killed the controller).
 *
 * An uncaught exception is logged and the controller stops in order, with
 * exit code 1: it unwound some synchronous work half-way, so the memory it
 * left (a bridge's routes, a session's streams) may be inconsistent, and
 * serving on from it could send one client's answers to another. Stopping
 * in order still stops every server, which dying at once would not.
 *
 * Returns the function that removes the guard.
 */
export function guardProcess(options: ProcessGuardOptions): () => void {
  const { logger, stop } = options;
  const target = options.target ?? process;
  const onRejection = (reason: unknown): void => {
    logger.error('unhandled promise rejection (a bug in apiary); the controller keeps running', describeError(reason));
  };
  const onException = (err: unknown): void => {
    logger.error('uncaught exception (a bug in apiary); stopping every server and the controller', describeError(err));
    stop();
  };
  target.on('unhandledRejection', onRejection);
  target.on('uncaughtException', onException);
  return () => {
    target.off('unhandledRejection', onRejection);
    target.off('uncaughtException', onException);
  };
}

/**
 * Log fields for what was thrown: an Error's name, message, code and stack
 * (apiary's messages carry no secret values); anything else only by type,
 * since a bare rejected value could be anything, a secret's included.
 */
function describeError(thrown: unknown): Record<string, unknown> {
  if (!(thrown instanceof Error)) return { error: `a ${thrown === null ? 'null' : typeof thrown} value (not shown)` };
  const code = (thrown as { code?: unknown }).code;
  return { error: `${thrown.name}: ${thrown.message}`, ...(typeof code === 'string' ? { code } : {}), ...(thrown.stack !== undefined ? { stack: thrown.stack } : {}) };
}
