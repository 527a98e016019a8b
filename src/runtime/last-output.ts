/**
 * The line a failed server's output ends with, as the kubelet's
 * FallbackToLogsOnError puts the end of a container's log in its termination
 * message: most often the error that ended it ("Error: GITHUB_TOKEN is not
 * set"). Read once, when the process ends, from the end of its log file.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { redactValues } from '../api/remote.js';

/** How much of the log's end is read: a last line longer than this is cut at its start. */
const TAIL_BYTES = 8 * 1024;
/** How much of the line status carries. */
export const LAST_OUTPUT_CHARS = 240;

/**
 * The last line that says something, with `secrets` redacted, or undefined
 * when the file is empty or gone. Runtimes' own footers say nothing of the
 * failure: a stack frame ("    at f (file.js:1:2)") and Node's version line
 * after an uncaught exception are passed over for the error above them.
 */
export function lastOutputLine(file: string, secrets: readonly string[]): string | undefined {
  const tail = readTail(file);
  if (tail === undefined) return undefined;
  const line = tail
    .split(/\r?\n/)
    .map((l) => l.trimEnd())
    .reverse()
    .find((l) => l.trim() !== '' && !/^Node\.js v\d/.test(l) && !/^\s+at\s/.test(l));
  if (line === undefined) return undefined;
  // Redacted before it is cut: a cut could leave part of a value unrecognised.
  const redacted = redactValues(line.trim(), secrets);
  return redacted.length > LAST_OUTPUT_CHARS ? `${redacted.slice(0, LAST_OUTPUT_CHARS - 1)}…` : redacted;
}

/** The end of a file, synchronously (an exit is reported in the turn it is seen). */
function readTail(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    return buffer.toString('utf8');
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}
