/**
 * apiary's folder under the user's state home ($XDG_STATE_HOME/apiary) and the
 * per-directory locks kept there. Below every layer: the manifest writers and
 * the controller both lock a manifest directory by these names, and neither
 * knows the other's state directory.
 */
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';

/**
 * The directory's real path (symlinks resolved), so one directory reached by
 * two paths has one state directory and one controller. A directory that does
 * not exist yet keeps the path as given (get says it is missing).
 */
export function realDirectory(path: string): string {
  try {
    return realpathSync.native(path);
  } catch {
    return path;
  }
}

/**
 * The lock file that serializes writers of manifest directory `dir` (any
 * path to it): per directory, not per --state-dir, and outside the directory,
 * which is often a git checkout that should not see apiary's files.
 */
export function manifestLockFile(dir: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(apiaryStateHome(env), 'locks', `${directoryLabel(realDirectory(dir))}.lock`);
}

/**
 * The lock a controller holds on manifest directory `dir` (any path to it),
 * whatever its --state-dir, so no directory has two controllers running its
 * servers; `.json` beside it says which one holds it. Under the user's state
 * home, like the writers' lock: never in the directory itself.
 */
export function manifestControllerLockFile(dir: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(apiaryStateHome(env), 'locks', `${directoryLabel(realDirectory(dir))}.controller.lock`);
}

export function apiaryStateHome(env: NodeJS.ProcessEnv): string {
  const stateHome = env['XDG_STATE_HOME'] || join(env['HOME'] || homedir(), '.local', 'state');
  return join(stateHome, 'apiary');
}

/** `<name>-<hash of the absolute path>`: readable, and unique per directory. */
export function directoryLabel(dir: string): string {
  const digest = createHash('sha256').update(dir).digest('hex').slice(0, 12);
  const label = basename(dir).replace(/[^A-Za-z0-9._-]/g, '_') || 'root';
  return `${label}-${digest}`;
}
