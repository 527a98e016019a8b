/**
 * How a console route writes the manifest directory: under its lock, with
 * the directory read and parsed once there. Every check the route makes (is
 * the key there? who uses the secret? is the name free?) and the edit itself
 * see that one read, so nothing another writer does can slip in between,
 * and a write costs one parse however many steps it has.
 */
import type { Sealer } from '../crypto/sealer.js';
import { sealerFor } from '../crypto/sealer.js';
import type { KeyStore } from '../crypto/keys.js';
import { withDirectoryLock } from '../manifests/edit.js';
import { loadDirectory, type LoadResult } from '../manifests/loader.js';
import { refuseGitSourced } from '../source/directory.js';

export async function underDirectoryLock<T>(dir: string, write: (loaded: LoadResult) => Promise<T>): Promise<T> {
  return withDirectoryLock(dir, async () => {
    const loaded = await loadDirectory(dir);
    // A directory that follows git is refused from the same read (the check needs no read of its own).
    await refuseGitSourced(dir, loaded);
    return write(loaded);
  });
}

/** The sealer, fetched before the lock is taken: the keyring may be slow, and the lock should not wait on it. */
export async function sealerIfNeeded(dir: string, keys: Pick<KeyStore, 'getOrCreate'>, needed: boolean): Promise<Sealer | undefined> {
  return needed ? sealerFor(dir, keys) : undefined;
}
