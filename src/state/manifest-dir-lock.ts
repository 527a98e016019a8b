/**
 * One controller per manifest directory, beside one per state directory:
 * `up --dir D` and `up --dir D --state-dir A` would otherwise each run every
 * server of D. A kernel lock like the controller lock (dropped by the kernel
 * however the holder exits), on a file under the user's state home keyed by
 * the directory's real path; its record says who holds it, for the refusal.
 */
import { closeSync, openSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ApiaryError } from '../errors.js';
import { ensureDir, FILE_MODE, writeFileAtomic } from '../util/atomic.js';
import { manifestControllerLockFile } from '../util/state-home.js';

export interface ManifestDirHolder {
  pid: number;
  stateDir: string;
  startedAt: string;
}

export interface ManifestDirLock {
  release(): Promise<void>;
}

async function readHolder(file: string): Promise<ManifestDirHolder | undefined> {
  try {
    const holder = JSON.parse(await readFile(file, 'utf8')) as ManifestDirHolder;
    return typeof holder?.pid === 'number' && typeof holder.stateDir === 'string' ? holder : undefined;
  } catch {
    return undefined;
  }
}

/** The lock file, opened; undefined when the state home cannot be written (then the state directory's lock alone stands). */
async function openLock(file: string): Promise<number | undefined> {
  try {
    await ensureDir(dirname(file));
    return openSync(file, 'a', FILE_MODE);
  } catch {
    return undefined;
  }
}

/**
 * Takes the lock for manifest directory `dir` on behalf of the controller of
 * `holder.stateDir`, or says which controller runs the directory already.
 */
export async function acquireManifestDirLock(dir: string, holder: ManifestDirHolder, env: NodeJS.ProcessEnv = process.env): Promise<ManifestDirLock> {
  const lockFile = manifestControllerLockFile(dir, env);
  const recordFile = lockFile.replace(/\.lock$/, '.json');
  const fd = await openLock(lockFile);
  if (fd === undefined) return { release: async () => undefined };
  const { tryLock, unlock } = await import('fs-native-extensions');
  if (!tryLock(fd)) {
    closeSync(fd);
    const other = await readHolder(recordFile);
    const who = other !== undefined ? `pid ${other.pid}, state directory ${other.stateDir}` : 'its record is unreadable';
    throw new ApiaryError('ControllerRunning', `another apiary controller (${who}) is running the manifests of ${dir}`, {
      hints: [`Stop it first (${other !== undefined ? `apiary --state-dir ${other.stateDir} down` : 'apiary down'}, or Ctrl-C where it runs): one directory's servers run under one controller.`],
    });
  }
  try {
    await writeFileAtomic(recordFile, JSON.stringify(holder, null, 2));
  } catch (err) {
    unlock(fd);
    closeSync(fd);
    throw err;
  }
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      // The record goes first, while the lock still keeps any other controller out.
      await rm(recordFile, { force: true });
      unlock(fd);
      closeSync(fd);
    },
  };
}
