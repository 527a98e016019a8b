/**
 * The output shim: what apiary runs in place of a server whose output goes
 * straight to its log file (an HTTP server, which outlives the controller, so
 * a pipe to the controller would break). It runs the real command with its
 * stdout and stderr as pipes to itself and writes each line to the log (its
 * own stdout and stderr, the log file apiary opened) with every secret value
 * replaced by `[redacted: secret NAME/KEY]`, as a stdio server's stderr is.
 *
 *   node output-shim.js SECRET_ENV COMMAND [ARGS...]
 *
 * SECRET_ENV is JSON, {"VAR": {"secret": NAME, "key": KEY}}: the names of the
 * variables that carry secrets, never the values, which the shim reads from
 * its own environment (the server's), so they are held only in its memory.
 *
 * It is the process group's leader, the pid apiary records and signals (a
 * later controller adopts it by the log file it holds open); the server is in
 * its group, so apiary's SIGTERM and SIGKILL reach both. It does not pass a
 * SIGTERM, SIGINT or SIGHUP on (the server had the group's own) but outlives
 * it: it leaves with the server's exit, its code or its signal.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { SecretRedactor, type NamedSecret } from '../api/secret-redactor.js';
import { pipeStderr } from './stderr-pipe.js';

type SecretEnv = Record<string, { secret: string; key: string }>;

/** The secret values of the variables named, read from this process's environment. */
function namedSecrets(secretEnv: SecretEnv, env: NodeJS.ProcessEnv): NamedSecret[] {
  return Object.entries(secretEnv).flatMap(([name, from]) => {
    const value = env[name];
    return value === undefined || value === '' ? [] : [{ secret: from.secret, key: from.key, value }];
  });
}

const GROUP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/** How long after the server's exit its output may still come (as apiary waits for a stdio server's stderr). */
const DRAIN_MS = 2_000;

function run(argv: readonly string[]): void {
  const [secretEnvJson = '{}', command, ...args] = argv;
  if (command === undefined) {
    process.stderr.write('apiary output shim: no command to run\n');
    process.exit(64);
  }
  const redactor = SecretRedactor.build(namedSecrets(JSON.parse(secretEnvJson) as SecretEnv, process.env));
  const filter = (line: string): string => (redactor === undefined ? line : redactor.redact(line).text);
  // The group's signals reach the server itself; the shim stays to write its last lines, and leaves as it does.
  for (const signal of GROUP_SIGNALS) process.on(signal, () => undefined);
  const child = spawn(command, args, { stdio: ['inherit', 'pipe', 'pipe'] });
  child.on('error', (err: NodeJS.ErrnoException) => {
    process.stderr.write(`apiary output shim: cannot start ${command} (${err.code ?? err.name})\n`);
    process.exit(127);
  });
  const drained = Promise.all([pipeStderr(child.stdout, 1, () => filter), pipeStderr(child.stderr, 2, () => filter)]);
  child.on('exit', (code, signal) => {
    // Its last lines first; but a process it left behind may hold the pipes open: the shim does not outlive the server for it.
    const late = new Promise((resolve) => setTimeout(resolve, DRAIN_MS));
    void Promise.race([drained, late]).then(() => leaveAs(code, signal));
  });
}

/** Ends this process as the server ended: by the same signal (its default action), or with the same code. */
function leaveAs(code: number | null, signal: NodeJS.Signals | null): void {
  if (signal !== null) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
    // A signal whose default action is not to end (or one ignored here): the conventional code instead.
    process.exit(128 + (constants.signals[signal] ?? 0));
  }
  process.exit(code ?? 1);
}

run(process.argv.slice(2));
