import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquireManifestDirLock } from '../src/state/manifest-dir-lock.js';
import { tempDir } from './helpers/tmp.js';

describe('the manifest directory lock', () => {
  it('is held by one controller at a time, names the holder to the next, and is free again once released', async () => {
    const home = await tempDir();
    const dir = await tempDir();
    const env = { XDG_STATE_HOME: home };
    const first = await acquireManifestDirLock(dir, { pid: 4242, stateDir: '/state/one', startedAt: '2026-12-01T00:00:00.000Z' }, env);
    await expect(acquireManifestDirLock(dir, { pid: process.pid, stateDir: '/state/two', startedAt: new Date().toISOString() }, env)).rejects.toMatchObject({
      code: 'ControllerRunning',
      message: `another apiary controller (pid 4242, state directory /state/one) is running the manifests of ${dir}`,
    });
    // Nothing is written into the manifest directory; the lock and its record are owner-only.
    expect(await readdir(dir)).toEqual([]);
    const locks = join(home, 'apiary', 'locks');
    for (const file of await readdir(locks)) expect((await stat(join(locks, file))).mode & 0o077).toBe(0);
    await first.release();
    expect((await readdir(locks)).filter((f) => f.endsWith('.json'))).toEqual([]);
    const second = await acquireManifestDirLock(dir, { pid: process.pid, stateDir: '/state/two', startedAt: new Date().toISOString() }, env);
    await second.release();
  });
});
