/**
 * A git remote that hangs: an HTTP server that takes git's request and never
 * answers. A controller following it must kill the whole fetch (git and its
 * `git-remote-http` helper) when `spec.timeout` passes, and stop at once
 * when told to, a fetch in flight or not.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, sleep } from './world.js';

/** What /proc says of these processes (state, parent, group, command), for a violation's message. */
export function describeProcesses(pids: readonly number[]): string {
  return pids
    .map((pid) => {
      try {
        const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/\(.*\)/, 'x').split(' ');
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
        return `${pid} state ${fields[2]} ppid ${fields[3]} pgid ${fields[4]}: ${cmd}`;
      } catch {
        return `${pid} gone`;
      }
    })
    .join('; ');
}

/** Processes whose command line names `needle` (zombies excluded). */
export function processesNaming(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (/^\S+ \S+ Z/.test(readFileSync(`/proc/${entry}/stat`, 'utf8').replace(/\(.*\)/, 'x'))) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}

async function until(limitMs: number, probe: () => boolean): Promise<boolean> {
  for (const deadline = Date.now() + limitMs; !probe(); await sleep(20)) if (Date.now() > deadline) return false;
  return true;
}

/**
 * Two controllers against a remote that never answers: one with a 1 s
 * fetch timeout (after it, no git process of the fetch may remain), one
 * with a 10 min timeout stopped with SIGTERM mid-fetch (it must be gone
 * within `stopLimitMs`, its git processes with it). Returns what failed.
 */
export async function hangingGitRemote(env: NodeJS.ProcessEnv, stopLimitMs: number): Promise<string[]> {
  const problems: string[] = [];
  const held: Socket[] = [];
  const remote = createServer((socket) => {
    held.push(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => remote.listen(0, '127.0.0.1', resolve));
  const root = await mkdtemp(join(tmpdir(), 'apiary-chaos-git-'));
  try {
    const port = (remote.address() as { port: number }).port;
    for (const [label, timeout] of [['short', '1s'], ['long', '10m']] as const) {
      const url = `http://127.0.0.1:${port}/${label}-${Date.now()}.git`;
      const dir = join(root, label);
      await mkdir(dir);
      await writeFile(join(dir, 'source.yaml'), `apiVersion: apiary.dev/v1alpha1\nkind: GitRepository\nmetadata:\n  name: origin\nspec:\n  url: ${url}\n  ref: { branch: main }\n  interval: 1m\n  timeout: ${timeout}\n`);
      const controller = spawn(BIN, ['up', '--dir', dir, '--state-dir', join(root, `${label}-state`)], { env, stdio: 'ignore' });
      let ending = 'running';
      const exited = new Promise<void>((resolve) => controller.once('exit', (code, signal) => resolve(void (ending = signal !== null ? `killed by ${signal}` : `exit ${code}`))));
      try {
        if (!(await until(20_000, () => processesNaming(url).length > 0))) {
          problems.push(`git (${label} timeout): no fetch of the hanging remote started within 20 s`);
          continue;
        }
        if (label === 'short') {
          // Past the timeout, the fetch is killed whole; the next try comes after a 5 s back-off.
          if (!(await until(4_000, () => processesNaming(url).length === 0))) problems.push(`git (1 s timeout): git process(es) of the timed-out fetch still running after 4 s: ${describeProcesses(processesNaming(url))}`);
        } else {
          const asked = Date.now();
          controller.kill('SIGTERM');
          const stopped = await Promise.race([exited.then(() => true), sleep(stopLimitMs).then(() => false)]);
          if (!stopped) problems.push(`git (fetch in flight): the controller was still running ${stopLimitMs} ms after SIGTERM`);
          else if (!(await until(2_000, () => processesNaming(url).length === 0))) problems.push(`git (fetch in flight): git process(es) left after the controller stopped (${ending}) in ${Date.now() - asked} ms: ${describeProcesses(processesNaming(url))}`);
        }
      } finally {
        controller.kill('SIGKILL');
        await exited;
        for (const pid of processesNaming(url)) process.kill(pid, 'SIGKILL');
      }
    }
  } finally {
    for (const s of held) s.destroy();
    remote.close();
    await rm(root, { recursive: true, force: true });
  }
  return problems;
}
