/**
 * Serializes read-modify-write of one file that is not apiary's own (an MCP
 * client's configuration) across processes. A lock file beside it, held with
 * a kernel lock on the open file: it goes with its holder however the holder
 * ends (Ctrl-C, kill -9), so nobody waits on a stale lock. The holder removes
 * the lock file before letting go, so nothing is left in the user's folder; a
 * waiter that then locks the removed file sees it is no longer the one at the
 * path and tries again.
 */
import { closeSync, fstatSync, openSync, rmSync, statSync } from 'node:fs';
import { tryLock } from 'fs-native-extensions';
import { ApiaryError } from '../errors.js';
import { FILE_MODE } from './atomic.js';
import { backoff } from './backoff.js';

const LOCK_WAIT_MS = 60_000;
/** A held lock is tried again after 5 ms, doubling to 100 ms. */
const LOCK_POLL = { baseMs: 5, capMs: 100 };

function lockPathOf(path: string): string {
  return `${path}.apiary-lock`;
}

/** Runs `fn` while holding the lock of `path` (its folder must exist). */
export async function withFileLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const lockPath = lockPathOf(path);
  const fd = await acquire(lockPath);
  try {
    return await fn();
  } finally {
    // Removed before the lock is let go: a later writer never locks a file another already holds.
    rmSync(lockPath, { force: true });
    closeSync(fd);
  }
}

async function acquire(lockPath: string): Promise<number> {
  for (let waited = 0, tries = 1; ; tries += 1) {
    const pause = backoff(LOCK_POLL, tries);
    const fd = openSync(lockPath, 'a', FILE_MODE);
    if (tryLock(fd) && fstatSync(fd).ino === statSync(lockPath, { throwIfNoEntry: false })?.ino) return fd;
    closeSync(fd);
    if (waited >= LOCK_WAIT_MS) throw new ApiaryError('Io', `cannot lock ${lockPath}: another apiary command has held it for ${LOCK_WAIT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, pause));
    waited += pause;
  }
}
