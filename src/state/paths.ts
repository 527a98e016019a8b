import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { ApiaryError } from '../errors.js';
import { redactUrl } from '../util/redact-url.js';
import { StateLayout } from './layout.js';

export interface Locations {
  /** Absolute manifest directory. */
  dir: string;
  /** The manifest directory as the user named it (for messages). */
  dirDisplay: string;
  /** Absolute state directory. */
  stateDir: string;
  /** Following a repository given by --git (dir is then the source directory apiary keeps in the state directory). */
  git?: string;
}

/**
 * DESIGN.md section 5: --dir, else $APIARY_DIR, else ./manifests; --state-dir,
 * else $APIARY_STATE_DIR, else a folder under $XDG_STATE_HOME/apiary named
 * after the manifest directory's absolute path.
 */
export function resolveLocations(
  options: { dir?: string | undefined; stateDir?: string | undefined; git?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): Locations {
  const git = options.git ?? (options.dir === undefined ? env['APIARY_GIT'] || undefined : undefined);
  if (git !== undefined) {
    if (options.dir !== undefined) throw new ApiaryError('Usage', '--git and --dir name two different sources of manifests; give one');
    const explicit = options.stateDir ?? env['APIARY_STATE_DIR'];
    const stateDir = explicit !== undefined ? resolve(cwd, explicit) : join(apiaryStateHome(env), gitLabel(git));
    // The source directory of a URL: the GitRepository `up --git` writes, in the state directory.
    return { dir: new StateLayout(stateDir).gitSourceDir, dirDisplay: redactUrl(git), stateDir, git };
  }
  const dirDisplay = options.dir ?? env['APIARY_DIR'] ?? 'manifests';
  const dir = realDirectory(resolve(cwd, dirDisplay));
  const explicitState = options.stateDir ?? env['APIARY_STATE_DIR'];
  const stateDir = explicitState !== undefined ? resolve(cwd, explicitState) : defaultStateDir(dir, env);
  return { dir, dirDisplay, stateDir };
}

/**
 * The directory's real path (symlinks resolved), so one directory reached by
 * two paths has one state directory and one controller. A directory that does
 * not exist yet keeps the path as given (get says it is missing).
 */
function realDirectory(path: string): string {
  try {
    return realpathSync.native(path);
  } catch {
    return path;
  }
}

export function defaultStateDir(dir: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(apiaryStateHome(env), directoryLabel(dir));
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

function apiaryStateHome(env: NodeJS.ProcessEnv): string {
  const stateHome = env['XDG_STATE_HOME'] || join(env['HOME'] || homedir(), '.local', 'state');
  return join(stateHome, 'apiary');
}

/** `git-<repository name>-<hash of the URL>`: one state directory per repository followed. */
function gitLabel(url: string): string {
  const digest = createHash('sha256').update(`git:${url}`).digest('hex').slice(0, 12);
  const name = (url.replace(/\/+$/, '').replace(/\.git$/, '').split(/[/:]/).at(-1) ?? '').replace(/[^A-Za-z0-9._-]/g, '_') || 'repo';
  return `git-${name}-${digest}`;
}

/** `<name>-<hash of the absolute path>`: readable, and unique per directory. */
function directoryLabel(dir: string): string {
  const digest = createHash('sha256').update(dir).digest('hex').slice(0, 12);
  const label = basename(dir).replace(/[^A-Za-z0-9._-]/g, '_') || 'root';
  return `${label}-${digest}`;
}
