/** Process identity from /proc: a pid plus its start time, so a reused pid is not mistaken for ours. */
import { readFileSync } from 'node:fs';

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
