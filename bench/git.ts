/**
 * Following a git repository (issue 15), with the real git command:
 *
 * - commit pushed -> new process spawned, with `apiary reconcile source`
 *   (the CLI, timed from the push returning), beside what a user of mcp-hub
 *   does in the same run: `git pull` in a clone, the config copied in place
 *   to the file mcp-hub --watch follows (pointed at the clone's own file,
 *   mcp-hub saw the first pull only: git replaces the file). "Spawned" is the stamp the server's sh wrapper writes
 *   before it execs node (bench/stamps.ts).
 * - a repository of 1,000 manifests: the first revision applied from cold,
 *   `apiary reconcile source` when nothing changed (the whole round trip:
 *   CLI start, request, fetch, status, answer), and a one-file commit
 *   applied; beside a bare `git fetch` and a `git pull` of the same
 *   repository (the floor for any tool that follows git).
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFile, mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { GitRepositoryStatus } from '../src/api/status.js';
import { StateLayout } from '../src/state/layout.js';
import { requestReconcile } from '../src/state/requests.js';
import { StatusStore } from '../src/state/status-store.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createKeyFile } from '../src/crypto/keys.js';
import { HELLO_SERVER, serverManifest, STAMP } from './controller.js';
import { epochMs, newStamp, runProcess, sleep, until } from './stamps.js';
import { fmtMs, percentile, type Row } from './stats.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'apiary');
const GIT_ENV = { ...process.env, GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'b@example.com', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'b@example.com', GIT_CONFIG_NOSYSTEM: '1' };

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8' }).trim();
}


interface Repo {
  root: string;
  url: string;
  work: string;
  stamps: string;
  env: NodeJS.ProcessEnv;
}

async function repo(name: string): Promise<Repo> {
  const root = await mkdtemp(join(tmpdir(), `apiary-bench-git-${name}-`));
  const url = join(root, 'remote.git');
  const work = join(root, 'work');
  const stamps = join(root, 'stamps');
  await mkdir(stamps, { recursive: true });
  git(root, 'init', '--quiet', '--bare', '-b', 'main', url);
  git(root, 'init', '--quiet', '-b', 'main', work);
  git(work, 'remote', 'add', 'origin', url);
  const keyFile = join(root, 'key');
  await createKeyFile(keyFile);
  return { root, url, work, stamps, env: { APIARY_KEY_FILE: keyFile, XDG_STATE_HOME: join(root, 'state') } };
}

function commitAndPush(r: Repo, message: string): void {
  git(r.work, 'add', '-A');
  git(r.work, 'commit', '--quiet', '-m', message);
  git(r.work, 'push', '--quiet', 'origin', 'HEAD:refs/heads/main');
}

function manifest(r: Repo, name: string, edit: number, suspend = false): string {
  return serverManifest(name, r.stamps, suspend ? '  suspend: true\n' : '', edit);
}

function startUp(r: Repo, extra: string[] = []): { stop: () => Promise<void> } {
  const child = spawn(BIN, ['--git', r.url, 'up', '--no-ui', '--interval', '1h', ...extra], { env: { ...process.env, ...r.env }, stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function pushToSpawnApiary(commits: number): Promise<number[]> {
  const r = await repo('apiary');
  await writeFile(join(r.work, 'roll.yaml'), manifest(r, 'roll', 0));
  commitAndPush(r, 'edit 0');
  const up = startUp(r);
  const seen = new Set<string>();
  const samples: number[] = [];
  try {
    await until('first spawn', () => newStamp(r.stamps, seen));
    await sleep(1_500);
    for (let i = 1; i <= commits; i++) {
      await writeFile(join(r.work, 'roll.yaml'), manifest(r, 'roll', i));
      commitAndPush(r, `edit ${i}`);
      const t0 = epochMs();
      const reconciled = await runProcess(BIN, ['--git', r.url, 'reconcile', 'source'], r.env);
      if (reconciled.code !== 0) throw new Error(`bench: reconcile source failed: ${reconciled.stderr}`);
      samples.push((await until(`spawn after commit ${i}`, () => newStamp(r.stamps, seen))) - t0);
      await sleep(1_000);
    }
  } finally {
    await up.stop();
    await rm(r.root, { recursive: true, force: true });
  }
  return samples;
}

/** The same job by hand with mcp-hub: its config lives in the repository; a clone is pulled and mcp-hub --watch restarts the server. */
async function pushToSpawnMcpHub(commits: number): Promise<number[]> {
  const r = await repo('mcphub');
  const config = (edit: number): string => JSON.stringify({ mcpServers: { roll: { command: '/bin/sh', args: ['-c', STAMP], env: { STAMP_DIR: r.stamps, HELLO: HELLO_SERVER, EDIT: String(edit) } } } });
  await writeFile(join(r.work, 'mcp-servers.json'), config(0));
  commitAndPush(r, 'edit 0');
  const clone = join(r.root, 'clone');
  git(r.root, 'clone', '--quiet', r.url, clone);
  // mcp-hub --watch pointed at the clone's file sees the first pull only (git replaces the file; the watch stays on the old one:
  // seen while writing this bench), so the config is copied in place after each pull, as a hand-made script would.
  const watched = join(r.root, 'mcp-servers.json');
  await copyFile(join(clone, 'mcp-servers.json'), watched);
  const port = 39000 + Math.floor(Math.random() * 1000);
  const hub = spawn(process.execPath, [join(ROOT, 'node_modules', 'mcp-hub', 'dist', 'cli.js'), '--port', String(port), '--config', watched, '--watch'], {
    stdio: 'ignore',
    env: { ...process.env, HOME: r.root },
  });
  const seen = new Set<string>();
  const samples: number[] = [];
  try {
    await until('mcp-hub first spawn', () => newStamp(r.stamps, seen));
    await sleep(1_500);
    for (let i = 1; i <= commits; i++) {
      await writeFile(join(r.work, 'mcp-servers.json'), config(i));
      commitAndPush(r, `edit ${i}`);
      const t0 = epochMs();
      await runProcess('git', ['-C', clone, 'pull', '--quiet', '--ff-only'], GIT_ENV);
      await writeFile(watched, await readFile(join(clone, 'mcp-servers.json')));
      samples.push((await until(`mcp-hub spawn after commit ${i}`, () => newStamp(r.stamps, seen), 15_000)) - t0);
      await sleep(1_000);
    }
  } finally {
    hub.kill('SIGTERM');
    await new Promise((resolve) => hub.on('exit', resolve));
    await rm(r.root, { recursive: true, force: true });
  }
  return samples;
}

async function timed(n: number, fn: () => Promise<void>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  return samples;
}

async function thousandManifests(): Promise<Row[]> {
  const r = await repo('thousand');
  const rows: Row[] = [];
  // Suspended servers: the revision is read, validated and reconciled in full; nothing is spawned a thousand times.
  for (let i = 0; i < 1000; i++) {
    const folder = join(r.work, `team-${i % 10}`);
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, `s${i}.yaml`), manifest(r, `s${i}`, 0, true));
  }
  commitAndPush(r, 'a thousand servers');
  const clone = join(r.root, 'clone');
  git(r.root, 'clone', '--quiet', r.url, clone);
  const t0 = performance.now();
  const up = startUp(r);
  try {
    // The source's status file alone is polled (get would load all 1,000 manifests at each poll).
    const home = join(r.root, 'state', 'apiary');
    const first = await until('first revision applied', async () => {
      const folder = (await readdir(home).catch(() => [] as string[])).find((n) => n.startsWith('git-'));
      if (folder === undefined) return undefined;
      const status = (await new StatusStore(new StateLayout(join(home, folder))).read('GitRepository', 'origin'))?.status as GitRepositoryStatus | undefined;
      return status?.conditions.find((c) => c.type === 'Ready')?.status === 'True' ? performance.now() - t0 : undefined;
    }, 120_000, 10);
    rows.push({ measure: '1,000 manifests: `up --git` spawned -> first revision applied (source Ready)', result: fmtMs(first), note: 'node start, keyring, endpoints, then fetch, checkout, validate all, switch' });

    const noChange = await timed(10, async () => {
      const out = await runProcess(BIN, ['--git', r.url, 'reconcile', 'source'], r.env);
      if (out.code !== 0) throw new Error(`bench: reconcile failed: ${out.stderr}`);
    });
    // The controller's part alone: request file written -> status says the fetch was handled (no CLI start).
    const stateDir = join(home, (await readdir(home)).find((n) => n.startsWith('git-'))!);
    const layout = new StateLayout(stateDir);
    const store = new StatusStore(layout);
    const controllerSide = await timed(10, async () => {
      const request = await requestReconcile(layout);
      await until('fetch handled', async () => {
        const status = (await store.read('GitRepository', 'origin'))?.status as GitRepositoryStatus | undefined;
        return status?.lastHandledReconcileAt !== undefined && status.lastHandledReconcileAt >= request.requestedAt ? true : undefined;
      });
    });
    const fetchOnly = await timed(10, async () => void (await runProcess('git', ['-C', clone, 'fetch', '--quiet'], GIT_ENV)));
    const pullOnly = await timed(10, async () => void (await runProcess('git', ['-C', clone, 'pull', '--quiet', '--ff-only'], GIT_ENV)));
    rows.push({
      measure: '1,000 manifests, nothing new: `apiary reconcile source` (p50 / p95 of 10)',
      result: `${fmtMs(percentile(noChange, 50))} / ${fmtMs(percentile(noChange, 95))}`,
      note: `CLI start, fetch, status, answer; the controller's part alone ${fmtMs(percentile(controllerSide, 50))}; same run: git fetch ${fmtMs(percentile(fetchOnly, 50))}, git pull ${fmtMs(percentile(pullOnly, 50))} (p50): apiary's controller ${(percentile(controllerSide, 50) / percentile(pullOnly, 50)).toFixed(1)}x slower than a bare git pull`,
    });

    const oneFile = await timed(5, async () => {
      const file = join(r.work, 'team-3', 's3.yaml');
      const edit = Math.floor(Math.random() * 1e9);
      await writeFile(file, manifest(r, 's3', edit, true));
      commitAndPush(r, `edit s3 ${edit}`);
      const out = await runProcess(BIN, ['--git', r.url, 'reconcile', 'source'], r.env);
      if (out.code !== 0) throw new Error(`bench: reconcile failed: ${out.stderr}`);
    });
    rows.push({ measure: '1,000 manifests, one file changed: commit+push+`reconcile source` -> new revision applied (p50 of 5)', result: fmtMs(percentile(oneFile, 50)), note: 'includes git commit and push (~30 ms), a checkout of all 1,000 files (~0.5 ms each, system time, on this machine) and a validation of all (only changed files parsed again); the command returns when the source is Ready' });
  } finally {
    await up.stop();
    await rm(r.root, { recursive: true, force: true });
  }
  return rows;
}

export async function benchGit(): Promise<Row[]> {
  const commits = 10;
  const apiary = await pushToSpawnApiary(commits);
  const hub = await pushToSpawnMcpHub(commits);
  const a50 = percentile(apiary, 50);
  const h50 = percentile(hub, 50);
  return [
    {
      measure: `commit pushed -> new process spawned: apiary --git + \`reconcile source\` (p50 / p95 of ${commits})`,
      result: `${fmtMs(a50)} / ${fmtMs(percentile(apiary, 95))}`,
      note: `includes the CLI's start (~150-250 ms of node); apiary ${a50 <= h50 ? `${(h50 / a50).toFixed(1)}x faster` : `${(a50 / h50).toFixed(1)}x slower`} than mcp-hub`,
    },
    {
      measure: `same, by hand: \`git pull\` in a clone, config copied in place, mcp-hub --watch (p50 / p95 of ${commits})`,
      result: `${fmtMs(h50)} / ${fmtMs(percentile(hub, 95))}`,
      note: 'mcp-hub 4, same run; git pull is a process too',
    },
    ...(await thousandManifests()),
  ];
}
