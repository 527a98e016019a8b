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
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ApiaryError } from '../errors.js';
import { currentTarget } from '../state/git-current.js';
import { DIR_MODE } from '../util/atomic.js';
import { redactText, type GitRef } from './spec.js';

export interface Fetched {
  sha: string;
  /** The branch or tag the revision is named after (undefined for a pinned commit). */
  refName: string | undefined;
}

/**
 * How long one git operation may take (spec.timeout), and the signal that
 * stops it at once (the controller stopping).
 */
export interface GitLimits {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

const SHA = /^[0-9a-f]{40}$/;
/** What git may print on stdout before it is stopped (a ref listing of a huge repository fits). */
const MAX_STDOUT = 16 * 1024 * 1024;
/** The end of stderr kept for the error message. */
const MAX_STDERR = 64 * 1024;

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
  async fetch(url: string, ref: GitRef, limits: GitLimits): Promise<Fetched> {
    await this.#ensureMirror(limits);
    let branch: string | undefined;
    if (ref.kind === 'default') branch = await this.#defaultBranch(url, limits);
    await this.#git(['fetch', '--prune', '--prune-tags', '--force', '--no-write-fetch-head', url, '+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*'], { ...limits, url, what: 'fetch' });
    switch (ref.kind) {
      case 'default':
        return { sha: await this.#resolve(`refs/heads/${branch!}`, url, `the default branch ${branch!}`, limits.signal), refName: branch };
      case 'branch':
        return { sha: await this.#resolve(`refs/heads/${ref.value}`, url, `branch "${ref.value}"`, limits.signal), refName: ref.value };
      case 'tag':
        return { sha: await this.#resolve(`refs/tags/${ref.value}`, url, `tag "${ref.value}"`, limits.signal), refName: ref.value };
      case 'name': {
        const asBranch = await this.#tryResolve(`refs/heads/${ref.value}`, limits.signal);
        if (asBranch !== undefined) return { sha: asBranch, refName: ref.value };
        const asTag = await this.#tryResolve(`refs/tags/${ref.value}`, limits.signal);
        if (asTag !== undefined) return { sha: asTag, refName: ref.value };
        // A short sha (as git log prints it) pins that commit, if it names exactly one.
        const asCommit = /^[0-9a-f]{7,39}$/.test(ref.value) ? await this.#tryResolve(ref.value, limits.signal) : undefined;
        if (asCommit !== undefined) return { sha: asCommit, refName: undefined };
        throw new ApiaryError('GitOperationFailed', `no branch, tag or commit "${ref.value}" in ${redactText(url, url)}`);
      }
      case 'commit': {
        if ((await this.#tryResolve(ref.value, limits.signal)) === undefined) {
          // Not on any branch or tag: ask for it by sha (servers that allow it answer).
          await this.#git(['fetch', '--no-write-fetch-head', url, ref.value], { ...limits, url, what: 'fetch' }).catch(() => undefined);
        }
        return { sha: await this.#resolve(ref.value, url, `commit ${ref.value}`, limits.signal), refName: undefined };
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
  async checkout(sha: string, limits: GitLimits): Promise<string> {
    if (!SHA.test(sha)) throw new ApiaryError('GitOperationFailed', `not a commit sha: ${JSON.stringify(sha)}`);
    const target = join(this.revisions, sha);
    if ((await stat(target).catch(() => undefined))?.isDirectory()) return target;
    await mkdir(this.revisions, { recursive: true, mode: DIR_MODE });
    const tmp = join(this.revisions, `.tmp-${sha.slice(0, 12)}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmp, { mode: DIR_MODE });
    try {
      await this.#git(['-c', 'core.symlinks=false', `--work-tree=${tmp}`, 'read-tree', '--reset', '-u', sha], {
        ...limits,
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

  async #ensureMirror(limits: GitLimits): Promise<void> {
    if ((await stat(join(this.mirror, 'HEAD')).catch(() => undefined))?.isFile()) return;
    await mkdir(this.root, { recursive: true, mode: DIR_MODE });
    const tmp = `${this.mirror}.tmp-${randomBytes(4).toString('hex')}`;
    await runGit(['init', '--bare', '--quiet', tmp], { ...limits, env: this.#env, what: 'init' });
    await rm(this.mirror, { recursive: true, force: true });
    await rename(tmp, this.mirror);
  }

  async #defaultBranch(url: string, limits: GitLimits): Promise<string> {
    const out = await this.#git(['ls-remote', '--symref', url, 'HEAD'], { ...limits, url, what: 'ls-remote', noMirror: true });
    const match = /^ref: refs\/heads\/(\S+)\s+HEAD$/m.exec(out);
    if (match === null) {
      throw new ApiaryError('GitOperationFailed', `${redactText(url, url)} names no default branch (an empty repository?); set spec.ref.branch (up --ref BRANCH)`);
    }
    return match[1]!;
  }

  async #tryResolve(ref: string, signal: AbortSignal | undefined): Promise<string | undefined> {
    const out = await this.#git(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { timeoutMs: 10_000, signal, what: 'rev-parse' }).catch(() => undefined);
    const sha = out?.trim();
    return sha !== undefined && SHA.test(sha) ? sha : undefined;
  }

  async #resolve(ref: string, url: string, what: string, signal: AbortSignal | undefined): Promise<string> {
    const sha = await this.#tryResolve(ref, signal);
    // Stopping is not "not found": say so rather than blame the ref.
    if (sha === undefined && signal?.aborted === true) throw new ApiaryError('GitOperationFailed', 'git rev-parse was stopped: apiary is stopping');
    if (sha === undefined) throw new ApiaryError('GitOperationFailed', `${what} not found in ${redactText(url, url)}`);
    return sha;
  }

  #git(args: string[], opts: GitLimits & { url?: string; what: string; env?: NodeJS.ProcessEnv; noMirror?: boolean }): Promise<string> {
    const full = opts.noMirror === true ? args : [`--git-dir=${this.mirror}`, ...args];
    return runGit(full, { ...opts, env: { ...this.#env, ...opts.env } });
  }
}

/**
 * Runs git; its error is the `fatal:`/`error:` lines it printed, credentials
 * in the URL blanked. Git runs in a process group of its own, and a timeout
 * or an abort kills the whole group: killing git alone left its
 * git-remote-http (or ssh) helper waiting on the network for ever. The
 * promise settles only once git's pipes are closed, that is once every
 * process of the group holding them is gone.
 */
function runGit(args: string[], opts: GitLimits & { env: NodeJS.ProcessEnv; what: string; url?: string | undefined }): Promise<string> {
  const failure = (message: string, cause?: unknown): ApiaryError =>
    new ApiaryError('GitOperationFailed', opts.url !== undefined ? redactText(message, opts.url) : message, cause !== undefined ? { cause } : undefined);
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted === true) {
      reject(failure(`git ${opts.what} was not started: apiary is stopping`));
      return;
    }
    const child = spawn('git', args, { env: opts.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stopped: 'timeout' | 'abort' | 'output' | undefined;
    let stdout = '';
    let stderr = '';
    const stopGroup = (why: NonNullable<typeof stopped>): void => {
      if (stopped !== undefined || child.pid === undefined) return;
      stopped = why;
      killGroup(child.pid);
    };
    const timer = setTimeout(() => stopGroup('timeout'), opts.timeoutMs);
    timer.unref();
    const onAbort = (): void => stopGroup('abort');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (stdout.length > MAX_STDOUT) stopGroup('output');
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-MAX_STDERR);
    });
    let settled = false;
    const settle = (err: ApiaryError | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (err === undefined) resolve(stdout);
      else reject(err);
    };
    child.on('error', (err: NodeJS.ErrnoException) => {
      // Only a git that could not be started (a running one reports through close).
      if (child.pid === undefined) settle(failure(err.code === 'ENOENT' ? 'the git command is not installed (apt install git)' : `git ${opts.what} could not start: ${err.message}`, err));
    });
    child.on('close', (code) => {
      if (stopped === 'timeout') settle(failure(`git ${opts.what} took longer than ${Math.round(opts.timeoutMs / 1000)}s and was stopped (spec.timeout)`));
      else if (stopped === 'abort') settle(failure(`git ${opts.what} was stopped: apiary is stopping`));
      else if (stopped === 'output') settle(failure(`git ${opts.what} printed more than ${MAX_STDOUT / 1024 / 1024} MiB and was stopped`));
      else if (code === 0) settle(undefined);
      else settle(failure(gitErrorText(opts.what, stderr, code)));
    });
  });
}

/** SIGKILL to git's process group: git and every helper it started. */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // The group is already gone.
  }
}

/** What git said went wrong: its `fatal:`/`error:`/`remote:` lines, else its last lines. */
function gitErrorText(what: string, stderr: string, code: number | null): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const told = lines.filter((l) => /^(fatal|error|remote):/.test(l));
  return `git ${what} failed: ${(told.length > 0 ? told : lines.slice(-2)).join('; ') || `exit ${String(code)}`}`;
}
