import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ApiaryError } from '../errors.js';
import { isDirectory, userManifestDir } from '../util/config-home.js';
import { redactUrl } from '../util/redact-url.js';
import { apiaryStateHome, directoryLabel, realDirectory } from '../util/state-home.js';
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
 * DESIGN.md section 5: --dir, else $APIARY_DIR, else ./manifests when it
 * exists, else the per-user directory (defaultManifestDir); --state-dir,
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
  const explicitState = options.stateDir ?? env['APIARY_STATE_DIR'];
  // A state directory `up --git URL` ran with knows the repository it follows: no verb needs --git again.
  const followed = explicitState !== undefined && options.dir === undefined ? followedRepository(resolve(cwd, explicitState)) : undefined;
  if (followed !== undefined) return followed;
  const dirDisplay = options.dir ?? env['APIARY_DIR'] ?? defaultManifestDir(env, cwd);
  const dir = realDirectory(resolve(cwd, dirDisplay));
  const stateDir = explicitState !== undefined ? resolve(cwd, explicitState) : defaultStateDir(dir, env);
  return { dir, dirDisplay, stateDir };
}

/**
 * The manifest directory when none is named: ./manifests when it exists (a
 * checkout, a project), else the per-user one, which `apiary init` makes and
 * a writer (`import`, `add`, `install`) makes owner-only when it first
 * writes; a reader reports it missing with a hint to run `apiary init`. Not
 * ./manifests in whatever folder a verb happens to run from: an import run
 * from the home folder would leave ~/manifests, a directory nobody asked for.
 */
export function defaultManifestDir(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string {
  return isDirectory(resolve(cwd, 'manifests')) ? 'manifests' : userManifestDir(env);
}

/**
 * The locations of a state directory that follows a repository given to
 * `up --git URL`: its source directory, named by the repository's URL
 * (credentials redacted). `git` stays unset: the GitRepository there,
 * with its ref, path and interval, is what is followed, and `up` keeps it
 * as it is. --dir (a flag, not $APIARY_DIR, which may be a shell's default
 * for other work) still names another directory.
 */
function followedRepository(stateDir: string): Locations | undefined {
  const layout = new StateLayout(stateDir);
  let text: string;
  try {
    text = readFileSync(layout.gitFlagSource, 'utf8');
  } catch {
    return undefined;
  }
  // The file is apiary's own (written by up --git): its url line is enough to name it.
  const url = /^\s+url:\s*["']?([^"'\n]+?)["']?\s*$/m.exec(text)?.[1];
  return { dir: layout.gitSourceDir, dirDisplay: url !== undefined ? redactUrl(url) : layout.gitSourceDir, stateDir };
}

export function defaultStateDir(dir: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(apiaryStateHome(env), directoryLabel(dir));
}

/** `git-<repository name>-<hash of the URL>`: one state directory per repository followed. */
function gitLabel(url: string): string {
  const digest = createHash('sha256').update(`git:${url}`).digest('hex').slice(0, 12);
  const name = (url.replace(/\/+$/, '').replace(/\.git$/, '').split(/[/:]/).at(-1) ?? '').replace(/[^A-Za-z0-9._-]/g, '_') || 'repo';
  return `git-${name}-${digest}`;
}
