/**
 * Step 12 through the built CLI: `up --git`, `get sources`, `reconcile
 * source`, `suspend/resume source`, the writing verbs' refusal, and a
 * controller killed with -9 in the middle of a checkout.
 */
import { readdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { GitRepositoryStatus } from '../src/api/status.js';
import { StateLayout } from '../src/state/layout.js';
import { requestReconcile } from '../src/state/requests.js';
import { runCli, spawnUp, type UpProcess } from './helpers/cli.js';
import { harness, isAlive, tinyServer, type Harness } from './helpers/controller.js';
import { gitRepositoryYaml, testRepo } from './helpers/git.js';
import { needsGit } from './helpers/tools.js';
import { waitFor } from './helpers/wait.js';

const git = needsGit();

function up(h: Harness, args: string[], env: NodeJS.ProcessEnv = {}): UpProcess {
  return spawnUp(['up', '--no-ui', ...args], { ...h.env, ...env });
}

describe.skipIf(!git.available)('apiary up --git (the built CLI)', () => {
  it('follows a repository: get sources, -o wide revisions, reconcile, a bad commit refused, writing verbs refused, suspend and resume', async () => {
    const h = await harness();
    const repo = await testRepo();
    const first = await repo.commit({ 'servers/a.yaml': tinyServer('a', h) });
    const git = ['--git', repo.url];
    const controller = up(h, [...git, '--path', 'servers', '--interval', '1h']);
    const ready = await runCli([...git, 'wait', 'mcpserver/a', '--for=phase=Running', '--timeout', '15s'], { env: h.env });
    expect(ready.code, controller.output()).toBe(0);
    expect(controller.output()).toContain(`following git repository ${repo.url} (gitrepository/origin); status: apiary --git ${repo.url} get sources`);

    const sources = await runCli([...git, 'get', 'sources'], { env: h.env });
    expect(sources.stdout).toMatch(new RegExp(`^NAME +REVISION +SUSPENDED +READY +FETCHED +MESSAGE\\norigin +main@sha1:${first.slice(0, 12)} +False +True +\\d+s ago +stored artifact for revision 'main@sha1:${first}'\\n$`));
    const wide = await runCli([...git, 'get', 'mcp', '-o', 'wide'], { env: h.env });
    expect(wide.stdout).toMatch(/GENERATION +REVISION +MESSAGE/);
    expect(wide.stdout).toContain(`main@sha1:${first.slice(0, 12)}`);
    const described = await runCli([...git, 'describe', 'mcpserver', 'a'], { env: h.env });
    expect(described.stdout).toContain(`Applied from:     main@sha1:${first}`);
    expect(described.stdout).toContain('Declared in:      servers/a.yaml:1');

    // reconcile source: fetched now, and says which revision.
    const second = await repo.commit({ 'servers/b.yaml': tinyServer('b', h) });
    const reconciled = await runCli([...git, 'reconcile', 'source'], { env: h.env });
    expect(reconciled.stdout).toBe(`gitrepository/origin fetched revision main@sha1:${second}\n`);
    expect((await runCli([...git, 'wait', 'mcpserver/b', '--for=phase=Running', '--timeout', '15s'], { env: h.env })).code).toBe(0);

    // A bad commit: reconcile fails with the file, line and column, and the revision that keeps running.
    const bad = await repo.commit({ 'servers/c.yaml': 'apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: c\nspec:\n  command: 42\n' });
    const refused = await runCli([...git, 'reconcile', 'source'], { env: h.env });
    expect(refused.code, controller.output()).toBe(1);
    expect(refused.stderr).toContain(`ValidationFailed: revision main@sha1:${bad} is not applied: servers/c.yaml:6:12: spec.command`);
    expect(refused.stderr).toContain(`main@sha1:${second} keeps running`);
    const source = JSON.parse((await runCli([...git, 'get', 'source', 'origin', '-o', 'json'], { env: h.env })).stdout) as { status: GitRepositoryStatus };
    expect(source.status.artifact?.revision).toBe(`main@sha1:${second}`);
    expect(source.status.lastAttemptedRevision).toBe(`main@sha1:${bad}`);

    // Writing verbs refuse: the repository is where changes go.
    const apply = await runCli([...git, 'apply', '-f', '-'], { env: h.env, input: tinyServer('d', h) });
    expect(apply.code).toBe(1);
    expect(apply.stderr).toContain(`follows git repository ${repo.url} (GitRepository "origin"): the manifests that run are the repository's, so nothing is written here`);
    expect(apply.stderr).toContain('Commit the change to the repository instead');
    expect(apply.stderr).toContain('apiary --dir CLONE');
    const set = await runCli([...git, 'secret', 'set', 'api', 'token'], { env: h.env, input: 'value' });
    expect(set.code).toBe(1);
    expect(set.stderr).toContain('so nothing is written here');
    // Verbs that read what runs read the repository's revision: restart works, suspend of a server is a change to commit.
    const restarted = await runCli([...git, 'restart', 'a'], { env: h.env });
    expect(restarted.stdout).toBe('mcpserver/a restart requested\n');
    const suspendServer = await runCli([...git, 'suspend', 'a'], { env: h.env });
    expect(suspendServer.code).toBe(1);
    expect(suspendServer.stderr).toContain('so nothing is written here');
    expect((await runCli([...git, 'restart', 'nope'], { env: h.env })).stderr).toContain('mcpserver/nope not found');
    // ...and the clone is where they are written.
    const inClone = await runCli(['--dir', join(repo.work, 'servers'), 'secret', 'set', 'api', 'token'], { env: h.env, input: 'value' });
    expect(inClone.code, inClone.stderr).toBe(0);

    // Suspend: no fetch; what runs stays. Resume: the next fetch applies the branch as it is.
    const suspended = await runCli([...git, 'suspend', 'source'], { env: h.env });
    expect(suspended.stdout).toBe('gitrepository/origin suspended: no fetch until apiary resume source; what runs stays as it is\n');
    const fixed = await repo.commit({ 'servers/c.yaml': tinyServer('c', h) });
    const stillSuspended = await runCli([...git, 'get', 'sources'], { env: h.env });
    expect(stillSuspended.stdout).toMatch(/origin +main@sha1:\w+ +True/);
    const whileSuspended = await runCli([...git, 'reconcile', 'source', '--timeout', '5s'], { env: h.env });
    expect(whileSuspended.code).toBe(1);
    expect(whileSuspended.stderr).toContain('gitrepository/origin is suspended: nothing is fetched');
    expect((await runCli([...git, 'get', 'mcp', 'c'], { env: h.env })).code).toBe(1);
    expect((await runCli([...git, 'resume', 'source'], { env: h.env })).stdout).toBe('gitrepository/origin resumed\n');
    expect((await runCli([...git, 'reconcile', 'source'], { env: h.env })).stdout).toBe(`gitrepository/origin fetched revision main@sha1:${fixed}\n`);
    expect((await runCli([...git, 'wait', 'mcpserver/c', '--for=phase=Running', '--timeout', '15s'], { env: h.env })).code).toBe(0);

    controller.child.kill('SIGTERM');
    expect(await controller.exited).toBe(0);
  }, 60_000);

  it('after up --git with a state directory, verbs given only that state directory need no --git: it knows what it follows (and a second up keeps its ref and path)', async () => {
    const h = await harness();
    const repo = await testRepo();
    const first = await repo.commit({ 'servers/a.yaml': tinyServer('a', h) });
    // $APIARY_DIR names another (empty) directory: the state directory's repository wins over it, --dir does not.
    const controller = up(h, ['--git', repo.url, '--path', 'servers', '--interval', '1h', '--state-dir', h.stateDir]);
    // What the state directory knows is written by up: verbs asked before that are asked of $APIARY_DIR.
    await waitFor('up following the repository', () => controller.output().includes('following git repository'), 30_000);
    const plain = { ...h.env, APIARY_STATE_DIR: undefined };
    const ready = await runCli(['--state-dir', h.stateDir, 'wait', 'mcpserver/a', '--for=phase=Running', '--timeout', '30s'], { env: plain });
    expect(ready.code, `${ready.stderr}${controller.output()}`).toBe(0);
    const table = await runCli(['get', 'mcp'], { env: h.env });
    expect(table.stdout).toMatch(/^a +Running /m);
    expect((await runCli(['get', 'sources'], { env: h.env })).stdout).toContain(`origin   main@sha1:${first.slice(0, 12)}`);
    const apply = await runCli(['apply', '-f', '-'], { env: h.env, input: tinyServer('d', h) });
    expect(apply.code).toBe(1);
    expect(apply.stderr).toContain(`follows git repository ${repo.url} (GitRepository "origin")`);
    // --dir still names another directory: there, a is declared nowhere.
    expect((await runCli(['--dir', h.dir, 'get', 'mcp'], { env: h.env })).stdout).toMatch(/^a +Running \(deleted\) /m);
    controller.child.kill('SIGTERM');
    expect(await controller.exited).toBe(0);

    // up with only the state directory follows the same repository, its --path kept.
    const second = await repo.commit({ 'servers/b.yaml': tinyServer('b', h), 'elsewhere/c.yaml': tinyServer('c', h) });
    const again = up(h, []);
    expect((await runCli(['wait', 'mcpserver/b', '--for=phase=Running', '--timeout', '30s'], { env: h.env })).code, again.output()).toBe(0);
    expect((await runCli(['get', 'sources'], { env: h.env })).stdout).toContain(`origin   main@sha1:${second.slice(0, 12)}`);
    expect((await runCli(['get', 'mcp', 'c'], { env: h.env })).code).toBe(1);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  }, 120_000);

  it('a directory that declares a GitRepository follows it, and holds nothing else', async () => {
    const h = await harness();
    const repo = await testRepo();
    const first = await repo.commit({ 'a.yaml': tinyServer('a', h) });
    await h.write('source.yaml', gitRepositoryYaml(repo.url, { interval: '1h' }));
    await h.write('local.yaml', tinyServer('local', h));
    const refused = await runCli(['up', '--no-ui'], { env: h.env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('declares a GitRepository, so it may hold only that one, valid:');
    expect(refused.stderr).toMatch(/local\.yaml:1:1: MCPServer "local" cannot sit beside a GitRepository/);

    await runCli(['delete', '-f', join(h.dir, 'local.yaml')], { env: h.env }).then((r) => expect(r.code).toBe(1));
    const { rm } = await import('node:fs/promises');
    await rm(join(h.dir, 'local.yaml'));
    const controller = up(h, []);
    expect((await runCli(['wait', 'mcpserver/a', '--for=phase=Running', '--timeout', '15s'], { env: h.env })).code, controller.output()).toBe(0);
    const all = await runCli(['get', 'all'], { env: h.env });
    expect(all.stdout).toContain(`origin   main@sha1:${first.slice(0, 12)}`);
    const described = await runCli(['describe', 'source', 'origin'], { env: h.env });
    expect(described.stdout).toContain(`Revision:         main@sha1:${first}`);
    expect(described.stdout).toMatch(/Normal +NewArtifact/);
    controller.child.kill('SIGTERM');
    expect(await controller.exited).toBe(0);
  }, 30_000);

  it('a controller killed with -9 during a checkout leaves the last good revision intact; the next up finishes the job without a second copy of any server', async () => {
    const h = await harness();
    const repo = await testRepo();
    // --ignore-stdin: a stdio server outlives its controller only if it ignores its stdin closing.
    const first = await repo.commit({ 'a.yaml': tinyServer('a', h, { args: ['--ignore-stdin'] }) });
    const git = ['--git', repo.url];
    const slow = up(h, [...git, '--interval', '1h'], { APIARY_TEST_CHECKOUT_PAUSE_MS: '60000' });
    // The first checkout is slow too: kill nothing yet, wait it out with a fresh controller instead.
    const gitDir = join(h.stateDir, 'git');
    const revisions = join(gitDir, 'revisions');
    const tmpCheckout = async (): Promise<string | undefined> => (await readdir(revisions).catch(() => [] as string[])).find((n) => n.startsWith('.tmp-'));
    await h.waitFor('first checkout under way', tmpCheckout, 15_000);
    slow.child.kill('SIGKILL');
    await slow.exited;
    // Killed before anything was switched to: nothing runs, nothing is current.
    await expect(readlink(join(gitDir, 'current'))).rejects.toThrow();

    const normal = up(h, git);
    expect((await runCli([...git, 'wait', 'mcpserver/a', '--for=phase=Running', '--timeout', '15s'], { env: h.env })).code, normal.output()).toBe(0);
    expect(await readlink(join(gitDir, 'current'))).toBe(`revisions/${first}`);
    expect(await tmpCheckout()).toBeUndefined();
    const pid = (JSON.parse((await runCli([...git, 'get', 'mcp', 'a', '-o', 'json'], { env: h.env })).stdout) as { status: { pid: number } }).status.pid;
    normal.child.kill('SIGKILL');
    await normal.exited;
    expect(isAlive(pid)).toBe(true);

    // Now a checkout of a new revision, killed halfway.
    const second = await repo.commit({ 'a.yaml': tinyServer('a', h, { args: ['--ignore-stdin', '--second'] }), 'b.yaml': tinyServer('b', h) });
    const killed = up(h, git, { APIARY_TEST_CHECKOUT_PAUSE_MS: '60000' });
    await h.waitFor('second checkout under way', tmpCheckout, 15_000);
    killed.child.kill('SIGKILL');
    await killed.exited;
    expect(await readlink(join(gitDir, 'current'))).toBe(`revisions/${first}`);
    expect((await stat(join(revisions, first, 'a.yaml'))).isFile()).toBe(true);
    await expect(stat(join(revisions, second))).rejects.toThrow();

    const last = up(h, git);
    await requestReconcile(new StateLayout(h.stateDir));
    expect((await runCli([...git, 'wait', 'mcpserver/b', '--for=phase=Running', '--timeout', '15s'], { env: h.env })).code, last.output()).toBe(0);
    expect(await readlink(join(gitDir, 'current'))).toBe(`revisions/${second}`);
    expect(await tmpCheckout()).toBeUndefined();
    // a was adopted, then rolled to the new spec: one process at a time, never two copies left.
    await h.waitFor('a rolled to the second revision', async () => {
      const a = JSON.parse((await runCli([...git, 'get', 'mcp', 'a', '-o', 'json'], { env: h.env })).stdout) as { status: { pid: number; lastAppliedRevision?: string; phase: string } };
      return a.status.lastAppliedRevision === `main@sha1:${second}` && a.status.phase === 'Running' ? a : undefined;
    }, 15_000);
    // Every a that was ever started: one alive, the one status names.
    const current = (JSON.parse((await runCli([...git, 'get', 'mcp', 'a', '-o', 'json'], { env: h.env })).stdout) as { status: { pid: number } }).status.pid;
    await h.waitFor('one a alive', async () => {
      const alive = (await h.starts('a')).filter((p) => isAlive(p));
      return alive.length === 1 && alive[0] === current;
    });
    expect((await h.report('a', current)).args).toContain('--second');
    last.child.kill('SIGTERM');
    expect(await last.exited).toBe(0);
  }, 90_000);
});
