/**
 * Processes of this machine by their command line, from /proc: what a test
 * looks for to say a server (or the sandbox around it) is there, or gone.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** The pids whose argv `match` accepts (processes that go while being read are left out). */
export function processesWith(match: (argv: string[]) => boolean): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return match(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'));
      } catch {
        return false;
      }
    })
    .map(Number);
}
