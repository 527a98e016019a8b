/**
 * Atomic, owner-only file writes (DESIGN.md section 7): a temp file in the
 * same folder, fsync, rename, then fsync of the folder. A crash leaves the
 * old file or the new one, never a mix.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ApiaryError, messageOf } from '../errors.js';
import { isAlive } from './proc.js';

export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

export async function ensureDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: DIR_MODE });
}

/**
 * A folder only its owner may enter (the state directory: logs, status and
 * process records under it). One made here is 0700. One that was already
 * there and is open to others, or belongs to another user, is refused with
 * the command that fixes it, never changed behind the user's back (pointed
 * at /tmp by mistake, a chmod would break the machine).
 */
export async function ensurePrivateDir(path: string): Promise<void> {
  await ensureDir(path);
  const info = await stat(path);
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) {
    throw new ApiaryError('StateInvalid', `state directory ${path} belongs to another user (uid ${info.uid})`, {
      hints: ['Use a state directory of your own (--state-dir, or APIARY_STATE_DIR).'],
    });
  }
  if ((info.mode & 0o077) === 0) return;
  throw new ApiaryError('StateInvalid', `state directory ${path} is open to others (mode ${(info.mode & 0o7777).toString(8)}): anyone who can read it can read server logs, and anyone who can write it can replace what apiary reads back`, {
    hints: [`Close it with: chmod 700 ${path}`, 'or use a state directory of your own (--state-dir, or APIARY_STATE_DIR).'],
  });
}

/** How a file in the manifest directory is rewritten: through a symlink to its target. */
export const MANIFEST_WRITE = { throughSymlink: true } as const;

/**
 * `throughSymlink`: when `path` is a symlink, replace the file it points at and
 * keep the link (a user's manifest linked from elsewhere). State files never
 * set it: a link planted there is replaced, never written through.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: { mode?: number; throughSymlink?: boolean } = {}): Promise<void> {
  if (options.throughSymlink === true) path = await realpath(path).catch(() => path);
  const folder = dirname(path);
  const temp = join(folder, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', options.mode ?? FILE_MODE);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(temp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await syncDir(folder);
}

async function syncDir(folder: string): Promise<void> {
  try {
    const dir = await open(folder, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  }
}

const TEMP_NAME = /^\.(.+)\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/**
 * Removes temp files left by writers that died mid-write (their pid is gone).
 * Call it only while holding the folder's write lock.
 */
export async function sweepTempFiles(folder: string): Promise<number> {
  let removed = 0;
  for (const name of await readdir(folder).catch(() => [] as string[])) {
    const match = TEMP_NAME.exec(name);
    if (match === null) continue;
    const pid = Number(match[2]);
    if (pid === process.pid || isAlive(pid)) continue;
    await rm(join(folder, name), { force: true });
    removed++;
  }
  return removed;
}

/** A file's text, or undefined when there is no such file; any other failure is an Io error naming the file. */
export async function readTextIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ApiaryError('Io', `cannot read ${path}: ${messageOf(err)}`, { cause: err });
  }
}
