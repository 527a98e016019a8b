import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach } from 'vitest';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = `${ROOT}bin/apiary`;

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built ./bin/apiary as a real process. */
export function runCli(
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, [...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, NO_COLOR: '1', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined); // a child that stops reading early (an input limit)
    child.stdin.end(options.input ?? '');
  });
}

const controllers: ChildProcess[] = [];
afterEach(() => {
  // A failed assertion must not leave a controller (and its servers) running.
  for (const child of controllers.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
});

export interface UpProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** `apiary ARGS...` (an up) as a long-running process, stopped after the test if it is still running. */
export function spawnUp(args: readonly string[], env: NodeJS.ProcessEnv): UpProcess {
  const child = spawn(BIN, [...args], { env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  controllers.push(child);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}
