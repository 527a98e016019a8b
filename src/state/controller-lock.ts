/**
 * One controller per state directory (and, by manifest-dir-lock, one per
 * manifest directory). The lock is a kernel lock on
 * `controller.lock`, held on an open file for the controller's whole life:
 * the kernel drops it when the holder exits however it exits (kill -9, OOM),
 * and two processes can never both hold it, whatever any file says.
 * `controller.json` beside it is information only (who holds it, since when),
 * for messages and for readers that match status to its writer.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import type * as FsExtensions from 'fs-native-extensions';
import { ApiaryError } from '../errors.js';
import { isSameProcess, procStartTime } from '../util/proc.js';
import { ensureDir, FILE_MODE, writeFileAtomic } from '../util/atomic.js';
import { acquireManifestDirLock, type ManifestDirLock } from './manifest-dir-lock.js';
import type { StateLayout } from './layout.js';

export interface ControllerInfo {
  pid: number;
  procStart?: string;
  runId: string;
  startedAt: string;
  dir: string;
  version: string;
}

export interface ControllerLock {
  info: ControllerInfo;
  /** Writes controller.json again if it is missing or not ours (someone removed or damaged it). */
  repairInfo(): Promise<void>;
  release(): Promise<void>;
}

export async function readControllerInfo(layout: StateLayout): Promise<ControllerInfo | undefined> {
  try {
    const info = JSON.parse(await readFile(layout.controllerFile, 'utf8')) as ControllerInfo;
    return typeof info?.pid === 'number' && typeof info.runId === 'string' ? info : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The kernel-lock calls, loaded on first use: a native addon whose loading
 * costs a reader (get, describe) ~10 ms that the pid record saves it.
 */
async function locks(): Promise<typeof FsExtensions> {
  return import('fs-native-extensions');
}

/** Is the controller lock held (by any process, this one included)? */
export async function isControllerLockHeld(layout: StateLayout): Promise<boolean> {
  const { tryLock, unlock } = await locks();
  let fd: number;
  try {
    fd = openSync(layout.controllerLockFile, 'r');
  } catch {
    return false; // never created: no controller ever ran here
  }
  try {
    // A shared lock is refused exactly when someone holds the exclusive one.
    if (!tryLock(fd, { shared: true })) return true;
    unlock(fd);
    return false;
  } finally {
    closeSync(fd);
  }
}

/**
 * The running controller for this state directory, if there is one: the lock
 * says whether one runs; controller.json says which. When the lock is held but
 * the record is unreadable, the holder repairs it at its next resync.
 */
export async function liveController(layout: StateLayout): Promise<ControllerInfo | undefined> {
  const info = await readControllerInfo(layout);
  // The record's process, alive with the same start time, is the holder (only the holder writes it).
  if (info !== undefined && isSameProcess(info.pid, info.procStart)) return info;
  return info !== undefined && (await isControllerLockHeld(layout)) ? info : undefined;
}

export async function acquireControllerLock(layout: StateLayout, dir: string, version: string): Promise<ControllerLock> {
  await ensureDir(layout.root);
  // Opened for writing (an exclusive lock needs it) without truncating; O_CLOEXEC (libuv's
  // default) keeps the descriptor out of every server, so a server that outlives the
  // controller never holds the lock.
  const { tryLock, unlock } = await locks();
  const fd = openSync(layout.controllerLockFile, 'a', FILE_MODE);
  if (!tryLock(fd)) {
    closeSync(fd);
    const holder = await readControllerInfo(layout);
    const who = holder !== undefined ? `pid ${holder.pid}, started ${holder.startedAt}` : 'its record controller.json is unreadable';
    throw new ApiaryError('ControllerRunning', `another apiary controller (${who}) is running for state directory ${layout.root}`, {
      hints: ['Stop it first (apiary down, or Ctrl-C where it runs), or use another --state-dir.'],
    });
  }
  const startedAt = new Date().toISOString();
  let dirLock: ManifestDirLock;
  try {
    dirLock = await acquireManifestDirLock(dir, { pid: process.pid, stateDir: layout.root, startedAt });
  } catch (err) {
    unlock(fd);
    closeSync(fd);
    throw err;
  }
  const procStart = procStartTime(process.pid);
  const info: ControllerInfo = {
    pid: process.pid,
    ...(procStart !== undefined ? { procStart } : {}),
    runId: randomBytes(8).toString('hex'),
    startedAt,
    dir,
    version,
  };
  const text = JSON.stringify(info, null, 2);
  const writeInfo = (): Promise<void> => writeFileAtomic(layout.controllerFile, text);
  try {
    await writeInfo();
  } catch (err) {
    await dirLock.release();
    closeSync(fd);
    throw err;
  }
  let released = false;
  return {
    info,
    async repairInfo() {
      if (released) return;
      const current = await readFile(layout.controllerFile, 'utf8').catch(() => undefined);
      if (current !== text) await writeInfo();
    },
    async release() {
      if (released) return;
      released = true;
      // The record goes first, while the lock still keeps any other controller out.
      await rm(layout.controllerFile, { force: true });
      await dirLock.release();
      unlock(fd);
      closeSync(fd);
    },
  };
}
