/**
 * Waiting and "spawned" stamps for the benches that time a new process: the
 * server's command is a sh wrapper that writes a nanosecond timestamp the
 * moment it starts, before it execs node, whoever started it.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Wall-clock ms with sub-ms precision, comparable with the stamps. */
export const epochMs = (): number => performance.timeOrigin + performance.now();

export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 2): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** The earliest stamp (epoch ms) of the stamp files in `dir` not in `seen`; undefined while none, or one is half written. */
export async function newStamp(dir: string, seen: Set<string>): Promise<number | undefined> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.stamp') && !seen.has(f));
  let earliest: number | undefined;
  for (const f of files) {
    const text = (await readFile(join(dir, f), 'utf8')).trim();
    if (text === '') return undefined;
    seen.add(f);
    earliest = Math.min(earliest ?? Infinity, Number(BigInt(text) / 1000n) / 1000);
  }
  return earliest;
}

/** Runs a command to its end: exit code and output (input, if any, on its stdin). */
export function runProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}
