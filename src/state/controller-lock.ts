/**
 * One controller per state directory. The lock file records the owner's pid
 * and start time; a lock whose process is gone (or whose pid was reused) is
 * stale and taken over.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rm } from 'node:fs/promises';
import { ApiaryError } from '../errors.js';
import { isSameProcess, procStartTime } from '../runtime/proc.js';
import { ensureDir } from '../util/atomic.js';
import type { StateLayout } from './layout.js';

export interface ControllerInfo {
  pid: number;
  procStart?: string;
  runId: string;
  startedAt: string;
  dir: string;
  version: string;
}

export async function readControllerInfo(layout: StateLayout): Promise<ControllerInfo | undefined> {
  try {
    return JSON.parse(await readFile(layout.controllerFile, 'utf8')) as ControllerInfo;
  } catch {
    return undefined;
  }
}

/** The running controller for this state directory, if there is one. */
export async function liveController(layout: StateLayout): Promise<ControllerInfo | undefined> {
  const info = await readControllerInfo(layout);
  return info !== undefined && isSameProcess(info.pid, info.procStart) ? info : undefined;
}

export async function acquireControllerLock(layout: StateLayout, dir: string, version: string): Promise<{ info: ControllerInfo; release: () => Promise<void> }> {
  await ensureDir(layout.root);
  const procStart = procStartTime(process.pid);
  const info: ControllerInfo = {
    pid: process.pid,
    ...(procStart !== undefined ? { procStart } : {}),
    runId: randomBytes(8).toString('hex'),
    startedAt: new Date().toISOString(),
    dir,
    version,
  };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(layout.controllerFile, 'wx', 0o600);
      await handle.writeFile(JSON.stringify(info, null, 2));
      await handle.sync();
      await handle.close();
      return {
        info,
        release: async () => {
          const current = await readControllerInfo(layout);
          if (current?.runId === info.runId) await rm(layout.controllerFile, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = await liveController(layout);
      if (holder !== undefined) {
        throw new ApiaryError(
          'ControllerRunning',
          `another apiary controller (pid ${holder.pid}, started ${holder.startedAt}) is running for state directory ${layout.root}`,
          { hints: ['Stop it first, or use another --state-dir.'] },
        );
      }
      await rm(layout.controllerFile, { force: true });
    }
  }
  throw new ApiaryError('ControllerRunning', `cannot take the controller lock in ${layout.root}`);
}
