import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { createKeyFile } from '../../src/crypto/keys.js';

const made: string[] = [];

/** A temp folder removed after the test (under `base`, the system's temp folder by default). */
export async function tempDir(prefix = 'apiary-test-', base = tmpdir()): Promise<string> {
  await mkdir(base, { recursive: true });
  const dir = await mkdtemp(join(base, prefix));
  made.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** A manifest dir, a state dir and an owner-only key file, with env pointing at them. */
export async function workspace(base?: string): Promise<{ root: string; dir: string; stateDir: string; keyFile: string; env: NodeJS.ProcessEnv }> {
  const root = await tempDir('apiary-test-', base);
  const dir = join(root, 'manifests');
  const stateDir = join(root, 'state');
  const keyFile = join(root, 'master.key');
  await createKeyFile(keyFile);
  return { root, dir, stateDir, keyFile, env: { APIARY_DIR: dir, APIARY_STATE_DIR: stateDir, APIARY_KEY_FILE: keyFile } };
}

/** Every file below a folder (for searching all that was written). */
export async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { withFileTypes: true, recursive: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}
