/**
 * The CLI: parses argv with commander, runs one verb, and maps every error to
 * a message and an exit code (0 success, 1 failure, 2 usage) in one place.
 */
import { Command, CommanderError } from 'commander';
import { ApiaryError, isApiaryError } from '../errors.js';
import { createContext } from './context.js';
import { paint, processIo, type Io } from './io.js';
import { registerSchema } from './commands/schema.js';
import { registerValidate } from './commands/validate.js';
import { registerKey } from './commands/key.js';
import { registerUp } from './commands/up.js';
import { registerGet } from './commands/get.js';
import { registerDescribe } from './commands/describe.js';
import { registerWait } from './commands/wait.js';
import { registerLogs } from './commands/logs.js';
import { registerApply } from './commands/apply.js';
import { registerRollout } from './commands/rollout.js';
import { registerAdd } from './commands/add.js';
import { registerCompletion } from './commands/completion.js';
import { registerClient } from './commands/client.js';
import { registerSecret } from './commands/secret.js';
import { registerSeal } from './commands/seal.js';

export const VERSION = '0.1.0';

export function buildProgram(io: Io, env: NodeJS.ProcessEnv): { program: Command; exitCode: () => number } {
  const ctx = createContext(io, env);
  const program = new Command('apiary')
    .description('Run MCP servers from a directory of Kubernetes-style YAML manifests')
    .version(VERSION)
    .option('--dir <DIR>', 'manifest directory (default: $APIARY_DIR, else ./manifests)')
    .option('--state-dir <DIR>', 'state directory (default: $APIARY_STATE_DIR, else under $XDG_STATE_HOME/apiary)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
    });
  registerUp(program, ctx);
  registerGet(program, ctx);
  registerDescribe(program, ctx);
  registerWait(program, ctx);
  registerLogs(program, ctx);
  registerApply(program, ctx);
  registerRollout(program, ctx);
  registerAdd(program, ctx);
  registerValidate(program, ctx);
  registerSchema(program, ctx);
  registerSecret(program, ctx);
  registerSeal(program, ctx);
  registerKey(program, ctx);
  registerClient(program, ctx);
  registerCompletion(program, ctx);
  const override = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(override);
  };
  program.commands.forEach(override);
  return { program, exitCode: () => ctx.exitCode };
}

export async function main(argv: readonly string[], io: Io = processIo(), env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { program, exitCode } = buildProgram(io, env);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode();
  } catch (err) {
    return reportError(io, err);
  }
}

function reportError(io: Io, err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and version are "errors" to commander; they exit 0.
    if (err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    return 2;
  }
  if (isApiaryError(err)) {
    io.err(`${paint(io, 'red', 'error:')} ${err.message}`);
    for (const hint of err.hints) io.err(`  ${hint}`);
    return err.exitCode ?? (err.code === 'Usage' || err.code === 'NameInvalid' ? 2 : 1);
  }
  const wrapped = new ApiaryError('Io', err instanceof Error ? err.message : String(err), { cause: err });
  io.err(`${paint(io, 'red', 'error:')} ${wrapped.message}`);
  if (env('APIARY_DEBUG') && err instanceof Error && err.stack) io.err(err.stack);
  return 1;
}

function env(name: string): boolean {
  return process.env[name] !== undefined && process.env[name] !== '';
}
