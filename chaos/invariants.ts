/**
 * What must hold after every round, whatever the fault: checked from
 * outside, on the files and processes themselves, never by asking apiary's
 * code. Each check returns the violations it found (empty when it holds).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { World } from './world.js';

/**
 * Exactly one process per server that should run, none for one that should
 * not; with `known`, no process of a server outside it either.
 */
export function oneProcessEach(world: World, running: readonly string[], stopped: readonly string[], found = world.serverProcesses(), known?: readonly string[]): string[] {
  const out: string[] = [];
  for (const name of running) if ((found[name]?.length ?? 0) !== 1) out.push(`server ${name}: ${found[name]?.length ?? 0} processes (want 1) ${found[name]?.join(', ') ?? ''}`.trim());
  for (const name of stopped) if ((found[name]?.length ?? 0) !== 0) out.push(`server ${name}: ${found[name]!.length} processes (want 0)`);
  if (known !== undefined) for (const name of Object.keys(found)) if (!known.includes(name)) out.push(`a process of unknown server ${name}`);
  return out;
}

/** The controller the harness started is still the one running: no fault may kill it. */
export function controllerAlive(world: World): string[] {
  const child = world.controller;
  if (child === undefined) return ['no controller is running'];
  if (child.exitCode !== null || child.signalCode !== null) return [`the controller exited (${child.exitCode ?? child.signalCode}) during the round; see ${world.controllerLog}`];
  return [];
}

/** Names apiary gives its state files (a 64-hex name: a console login code's digest in console-logins/). */
const STATE_FILE = /^(controller\.(json|lock|log|previous\.log)|console\.json|console-sessions\.json|[0-9a-f]{64}|endpoint\.token|ports\.json|state\.key|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.json|\.next\.json|\.old\.json|\.log|\.next\.log|\.previous\.log|\.log\.idx|\.previous\.log\.idx|\.log\.1|\.log\.1\.idx))$/;

/**
 * Every folder 0700 and file 0600; every file named as apiary names its
 * files (no temp file left behind, nothing foreign); every JSON file whole.
 */
export async function stateFilesSound(world: World): Promise<string[]> {
  const out: string[] = [];
  /** Files not named as apiary names its files: a temp file renamed into place a moment later is not one left behind. */
  const unnamed: string[] = [];
  const walk = async (folder: string): Promise<void> => {
    const info = await stat(folder);
    if ((info.mode & 0o777) !== 0o700) out.push(`${rel(world, folder)}/: mode ${(info.mode & 0o777).toString(8)} (want 700)`);
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) {
        await walk(path);
        continue;
      }
      // A writer still at work (a status write after a rollout's last exit) renames its temp file away between readdir and stat.
      const fileInfo = await stat(path).catch(gone);
      if (fileInfo === undefined) continue;
      const mode = fileInfo.mode & 0o777;
      if (mode !== 0o600) out.push(`${rel(world, path)}: mode ${mode.toString(8)} (want 600)`);
      if (!STATE_FILE.test(entry.name)) unnamed.push(path);
      if (entry.name.endsWith('.json')) {
        const text = await readFile(path, 'utf8').catch(gone);
        if (text === undefined) continue;
        try {
          JSON.parse(text);
        } catch {
          out.push(`${rel(world, path)}: torn (does not parse)`);
        }
      }
    }
  };
  await walk(world.stateDir);
  if (unnamed.length > 0) await new Promise((r) => setTimeout(r, 1_000));
  for (const path of unnamed) if ((await stat(path).catch(gone)) !== undefined) out.push(`${rel(world, path)}: not a file apiary writes (a temp file left behind?)`);
  return out;
}

/** undefined for a file that is gone (ENOENT); any other error is thrown. */
function gone(err: unknown): undefined {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  throw err;
}

/** No secret value, ever set in this run, in any file apiary wrote or the text given (logs, CLI output, responses). */
export async function noCanary(world: World, canaries: readonly string[], texts: Record<string, string>): Promise<string[]> {
  const out: string[] = [];
  const places: [string, string][] = Object.entries(texts);
  // A file can vanish between the listing and the read: a writer's temp file renamed into place (its
  // content is then in the file it became, read by this pass or the next one).
  const walk = async (folder: string): Promise<void> => {
    for (const entry of (await readdir(folder, { withFileTypes: true }).catch(gone)) ?? []) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) await walk(path);
      else {
        const text = await readFile(path, 'latin1').catch(gone);
        if (text !== undefined) places.push([rel(world, path), text]);
      }
    }
  };
  await walk(world.stateDir);
  await walk(world.dir);
  places.push(['controller log', await readFile(world.controllerLog, 'latin1').catch(() => '')]);
  for (const [where, text] of places) for (const canary of canaries) if (text.includes(canary)) out.push(`secret value ${canary.slice(0, 12)}... found in ${where}`);
  return out;
}

function rel(world: World, path: string): string {
  return relative(world.root, path) || '.';
}
