/**
 * The git side of a GitRepository: a bare mirror in the state directory,
 * fetched with the real `git` command (so the user's SSH agent and
 * credential helpers apply, and no token ever sits in a manifest), each
 * revision checked out into a folder of its own beside the others, and one
 * symlink, `current`, swapped atomically to the revision that runs.
 *
 *   <state>/git/mirror.git          bare repository (fetch --prune)
 *   <state>/git/revisions/<sha>     one checkout per revision, made whole in a temp folder first
 *   <state>/git/current  ->         revisions/<sha>[/<path>]  (renamed over, never edited)
 *
 * A controller killed at any point leaves `current` at the last revision it
 * switched to: a checkout in progress is only a hidden temp folder, swept at
 * the next start.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ApiaryError } from '../errors.js';
import { DIR_MODE } from '../util/atomic.js';
import { redactText, type GitRef } from './spec.js';

export interface Fetched {
  sha: string;
  /** The branch or tag the revision is named after (undefined for a pinned commit). */
  refName: string | undefined;
}

const SHA = /^[0-9a-f]{40}$/;

export class GitMirror {
  readonly root: string;
  readonly #env: NodeJS.ProcessEnv;

  constructor(root: string, env: NodeJS.ProcessEnv = process.env) {
    this.root = root;
    // Never wait for a person: no password prompt, no host-key question (the agent or a helper answers, or it fails).
    this.#env = {
      ...env,
      GIT_TERMINAL_PROMPT: '0',
      GCM_INTERACTIVE: 'never',
      LC_ALL: 'C',
      ...(env['GIT_SSH_COMMAND'] === undefined && env['GIT_SSH'] === undefined ? { GIT_SSH_COMMAND: 'ssh -o BatchMode=yes' } : {}),
    };
  }

  get mirror(): string {
    return join(this.root, 'mirror.git');
  }
  get revisions(): string {
    return join(this.root, 'revisions');
  }
  /** The symlink to what runs: what the controller reads manifests from. */
  get current(): string {
    return join(this.root, 'current');
  }

  /** Fetches the repository and resolves the ref to a commit. */
  async fetch(url: string, ref: GitRef, timeoutMs: number): Promise<Fetched> {
    await this.#ensureMirror(timeoutMs);
    let branch: string | undefined;
    if (ref.kind === 'default') branch = await this.#defaultBranch(url, timeoutMs);
    await this.#git(['fetch', '--prune', '--prune-tags', '--force', '--no-write-fetch-head', url, '+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*'], { timeoutMs, url, what: 'fetch' });
    switch (ref.kind) {
      case 'default':
        return { sha: await this.#resolve(`refs/heads/${branch!}`, url, `the default branch ${branch!}`), refName: branch };
      case 'branch':
        return { sha: await this.#resolve(`refs/heads/${ref.value}`, url, `branch "${ref.value}"`), refName: ref.value };
      case 'tag':
        return { sha: await this.#resolve(`refs/tags/${ref.value}`, url, `tag "${ref.value}"`), refName: ref.value };
      case 'name': {
        const asBranch = await this.#tryResolve(`refs/heads/${ref.value}`);
        if (asBranch !== undefined) return { sha: asBranch, refName: ref.value };
        const asTag = await this.#tryResolve(`refs/tags/${ref.value}`);
        if (asTag !== undefined) return { sha: asTag, refName: ref.value };
        // A short sha (as git log prints it) pins that commit, if it names exactly one.
        const asCommit = /^[0-9a-f]{7,39}$/.test(ref.value) ? await this.#tryResolve(ref.value) : undefined;
        if (asCommit !== undefined) return { sha: asCommit, refName: undefined };
        throw new ApiaryError('GitOperationFailed', `no branch, tag or commit "${ref.value}" in ${redactText(url, url)}`);
      }
      case 'commit': {
        if ((await this.#tryResolve(ref.value)) === undefined) {
          // Not on any branch or tag: ask for it by sha (servers that allow it answer).
          await this.#git(['fetch', '--no-write-fetch-head', url, ref.value], { timeoutMs, url, what: 'fetch' }).catch(() => undefined);
        }
        return { sha: await this.#resolve(ref.value, url, `commit ${ref.value}`), refName: undefined };
      }
    }
  }

  /**
   * The revision's files in `revisions/<sha>`: made whole in a hidden temp
   * folder, then renamed into place, so the folder exists only complete.
   * Symlinks in the repository come out as plain files holding the link's
   * text (core.symlinks=false): a repository cannot make apiary read a file
   * outside it.
   */
  async checkout(sha: string, timeoutMs: number): Promise<string> {
    if (!SHA.test(sha)) throw new ApiaryError('GitOperationFailed', `not a commit sha: ${JSON.stringify(sha)}`);
    const target = join(this.revisions, sha);
    if ((await stat(target).catch(() => undefined))?.isDirectory()) return target;
    await mkdir(this.revisions, { recursive: true, mode: DIR_MODE });
    const tmp = join(this.revisions, `.tmp-${sha.slice(0, 12)}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmp, { mode: DIR_MODE });
    try {
      await this.#git(['-c', 'core.symlinks=false', `--work-tree=${tmp}`, 'read-tree', '--reset', '-u', sha], {
        timeoutMs,
        what: 'checkout',
        env: { GIT_INDEX_FILE: `${tmp}.index` },
      });
      await rm(`${tmp}.index`, { force: true });
      // Tests: hold the checkout half made, to kill the controller there.
      const pause = Number(this.#env['APIARY_TEST_CHECKOUT_PAUSE_MS'] ?? 0);
      if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
      await rename(tmp, target);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      await rm(`${tmp}.index`, { force: true });
      // Another checkout of the same sha may have won the rename: that is as good.
      if ((await stat(target).catch(() => undefined))?.isDirectory()) return target;
      throw err;
    }
    return target;
  }

  /** Points `current` at the revision's folder (and path in it), atomically: a rename over the old link. */
  async switchTo(sha: string, path: string): Promise<void> {
    const link = `${this.current}.tmp-${randomBytes(4).toString('hex')}`;
    await symlink(join('revisions', sha, path), link);
    try {
      await rename(link, this.current);
    } catch (err) {
      await rm(link, { force: true });
      throw err;
    }
  }

  /** The sha and path `current` points at, if a revision was ever switched to. */
  async currentTarget(): Promise<{ sha: string; path: string } | undefined> {
    const target = await currentTarget(this.current);
    if (target === undefined || !(await stat(join(this.revisions, target.sha)).catch(() => undefined))?.isDirectory()) return undefined;
    return target;
  }

  /** Removes revisions other than `keep`, and what a killed checkout or switch left (temp folders, temp links). */
  async prune(keep: readonly string[]): Promise<void> {
    for (const name of await readdir(this.revisions).catch(() => [] as string[])) {
      if (keep.includes(name)) continue;
      await rm(join(this.revisions, name), { recursive: true, force: true });
    }
    for (const name of await readdir(this.root).catch(() => [] as string[])) {
      if (name.startsWith('current.tmp-') || name.startsWith('mirror.git.tmp-')) await rm(join(this.root, name), { recursive: true, force: true });
    }
  }

  async #ensureMirror(timeoutMs: number): Promise<void> {
    if ((await stat(join(this.mirror, 'HEAD')).catch(() => undefined))?.isFile()) return;
    await mkdir(this.root, { recursive: true, mode: DIR_MODE });
    const tmp = `${this.mirror}.tmp-${randomBytes(4).toString('hex')}`;
    await runGit(['init', '--bare', '--quiet', tmp], { env: this.#env, timeoutMs, what: 'init' });
    await rm(this.mirror, { recursive: true, force: true });
    await rename(tmp, this.mirror);
  }

  async #defaultBranch(url: string, timeoutMs: number): Promise<string> {
    const out = await this.#git(['ls-remote', '--symref', url, 'HEAD'], { timeoutMs, url, what: 'ls-remote', noMirror: true });
    const match = /^ref: refs\/heads\/(\S+)\s+HEAD$/m.exec(out);
    if (match === null) {
      throw new ApiaryError('GitOperationFailed', `${redactText(url, url)} names no default branch (an empty repository?); set spec.ref.branch (up --ref BRANCH)`);
    }
    return match[1]!;
  }

  async #tryResolve(ref: string): Promise<string | undefined> {
    const out = await this.#git(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { timeoutMs: 10_000, what: 'rev-parse' }).catch(() => undefined);
    const sha = out?.trim();
    return sha !== undefined && SHA.test(sha) ? sha : undefined;
  }

  async #resolve(ref: string, url: string, what: string): Promise<string> {
    const sha = await this.#tryResolve(ref);
    if (sha === undefined) throw new ApiaryError('GitOperationFailed', `${what} not found in ${redactText(url, url)}`);
    return sha;
  }

  #git(args: string[], opts: { timeoutMs: number; url?: string; what: string; env?: NodeJS.ProcessEnv; noMirror?: boolean }): Promise<string> {
    const full = opts.noMirror === true ? args : [`--git-dir=${this.mirror}`, ...args];
    return runGit(full, { env: { ...this.#env, ...opts.env }, timeoutMs: opts.timeoutMs, what: opts.what, ...(opts.url !== undefined ? { url: opts.url } : {}) });
  }
}

/** What a `current` link points at: `revisions/<sha>[/<path>]`, read without git (readers of status use it too). */
export async function currentTarget(link: string): Promise<{ sha: string; path: string } | undefined> {
  const target = await readlink(link).catch(() => undefined);
  const [first, sha, ...rest] = target?.split('/') ?? [];
  if (first !== 'revisions' || sha === undefined || !SHA.test(sha)) return undefined;
  return { sha, path: rest.join('/') };
}

/** Runs git; its error is the `fatal:`/`error:` lines it printed, credentials in the URL blanked. */
function runGit(args: string[], opts: { env: NodeJS.ProcessEnv; timeoutMs: number; what: string; url?: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('git', args, { env: opts.env, timeout: opts.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err === null) {
        resolve(stdout);
        return;
      }
      const e = err as NodeJS.ErrnoException & { killed?: boolean };
      let message: string;
      if (e.code === 'ENOENT') message = 'the git command is not installed (apt install git)';
      else if (e.killed === true) message = `git ${opts.what} took longer than ${Math.round(opts.timeoutMs / 1000)}s and was stopped (spec.timeout)`;
      else {
        const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
        const told = lines.filter((l) => /^(fatal|error|remote):/.test(l));
        message = `git ${opts.what} failed: ${(told.length > 0 ? told : lines.slice(-2)).join('; ') || `exit ${String(e.code)}`}`;
      }
      reject(new ApiaryError('GitOperationFailed', opts.url !== undefined ? redactText(message, opts.url) : message));
    });
  });
}
