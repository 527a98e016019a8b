/**
 * A verb's failure as the user reads it, and its exit code (0 success, 1
 * failure, 2 usage): the one place errors become messages, for main.ts and
 * for the start-up snapshot's get and validate (src/cli/snapshot-main.ts),
 * which run without commander.
 */
import { ApiaryError, isApiaryError } from '../errors.js';
import { escapeTerminalLines } from './escape.js';
import { paint, type Io } from './io.js';

export function reportFailure(io: Io, err: unknown): number {
  // A message may quote what a server, a manifest or the command line said: escaped, as every human output.
  if (isApiaryError(err)) {
    io.err(`${paint(io, 'red', 'error:')} ${escapeTerminalLines(err.message)}`);
    for (const hint of err.hints) io.err(`  ${escapeTerminalLines(hint)}`);
    return err.exitCode ?? (err.code === 'Usage' || err.code === 'NameInvalid' ? 2 : 1);
  }
  const wrapped = new ApiaryError('Io', err instanceof Error ? err.message : String(err), { cause: err });
  io.err(`${paint(io, 'red', 'error:')} ${escapeTerminalLines(wrapped.message)}`);
  if (env('APIARY_DEBUG') && err instanceof Error && err.stack) io.err(err.stack);
  return 1;
}

function env(name: string): boolean {
  return process.env[name] !== undefined && process.env[name] !== '';
}
