/** Process identity from /proc: a pid plus its start time, so a reused pid is not mistaken for ours. */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname } from 'node:path';

/** The process's start time in clock ticks since boot, or undefined if it is gone (or /proc is absent). */
export function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); starttime is field 22.
    if (fields[0] === 'Z') return undefined;
    return fields[19];
  } catch {
    return undefined;
  }
}

export function hasProcFs(): boolean {
  try {
    readFileSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Is `pid` still the process that was recorded with `startTime`? */
export function isSameProcess(pid: number, startTime: string | undefined): boolean {
  if (!hasProcFs()) return isAlive(pid);
  const now = procStartTime(pid);
  return now !== undefined && now === startTime;
}

/**
 * Process-group leaders whose stderr (or fd 3) is open on a file in `folder`, with
 * that file: how a server apiary started can be found without its record
 * (servers write straight to their log file, and each leads its own group,
 * so a launcher's children, which share the file, are not counted twice).
 * Empty where there is no /proc.
 */
export function groupLeadersLoggingTo(folder: string): { pid: number; procStart: string; file: string }[] {
  const found: { pid: number; procStart: string; file: string }[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[0] state, [2] process group, [19] start time.
      if (fields[0] === 'Z' || fields[2] !== entry) continue;
      // fd 2, or fd 3 for a server whose stderr is a pipe to the controller that holds its log open there (see ProcessRuntime).
      const file = [2, 3].map((fd) => linkOf(`/proc/${entry}/fd/${fd}`)).find((f) => f !== undefined && dirname(f) === folder);
      if (file !== undefined) found.push({ pid: Number(entry), procStart: fields[19]!, file });
    } catch {
      // Gone, or not ours to look at.
    }
  }
  return found;
}

function linkOf(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}
