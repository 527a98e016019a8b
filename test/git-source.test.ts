/**
 * Step 12: following a git repository. Every test pushes to a bare
 * repository made with the real git command, and a real controller fetches
 * it (with git too), runs the servers and writes status.
 */
import { readdir, readlink, rename, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCondition, type GitRepositoryStatus, type MCPServerStatus } from '../src/api/status.js';
import { seal } from '../src/crypto/seal.js';
import { KeyStore } from '../src/crypto/keys.js';
import { StateLayout } from '../src/state/layout.js';
import { requestReconcile } from '../src/state/requests.js';
import { harness, isAlive, tinyServer, type Harness } from './helpers/controller.js';
import { gitRepositoryYaml, hangingRemote, testRepo } from './helpers/git.js';
import { needsGit } from './helpers/tools.js';
import { FakeClock, type Timer } from '../src/util/clock.js';

const git = needsGit();

async function source(h: Harness): Promise<GitRepositoryStatus | undefined> {
  return (await h.view()).objects.find((o) => o.kind === 'GitRepository')?.object.status as GitRepositoryStatus | undefined;
}

/** Waits for the source to report this revision as applied (Ready). */
function appliedRevision(h: Harness, revision: string, timeoutMs = 10_000): Promise<GitRepositoryStatus> {
  return h.waitFor(`source at ${revision}`, async () => {
    const s = await source(h);
    return s?.artifact?.revision === revision && findCondition(s.conditions, 'Ready')?.status === 'True' ? s : undefined;
  }, timeoutMs);
}

function running(h: Harness, name: string, revision: string, timeoutMs = 10_000): Promise<MCPServerStatus> {
  return h.waitFor(`${name} running from ${revision}`, async () => {
    const s = await h.status(name);
    return s?.phase === 'Running' && s.lastAppliedRevision === revision ? s : undefined;
  }, timeoutMs);
}

/** A FakeClock that keeps when each timer set on it is due: a test moves time only once the next one it waits for is set. */
class ScheduleClock extends FakeClock {
  readonly #due: number[] = [];

  override setTimeout(fn: () => void, ms: number): Timer {
    this.#due.push(this.now() + Math.max(0, ms));
    return super.setTimeout(fn, ms);
  }

  /** How many timers have been set so far. */
  mark(): number {
    return this.#due.length;
  }

  /** Whether a timer due at `at` was set after `mark`. */
  scheduledSince(mark: number, at: number): boolean {
    return this.#due.slice(mark).includes(at);
  }

  /** When a timer set after `mark` is due between `from` and `to` (the earliest), if one is. */
  scheduledWithin(mark: number, from: number, to: number): number | undefined {
    return this.#due.slice(mark).filter((at) => at >= from && at <= to).sort((a, b) => a - b)[0];
  }
}

describe.skipIf(!git.available)('git source', () => {
  it('applies a pushed commit within one interval and names the revision on the source and every resource', async () => {
    const h = await harness();
    const repo = await testRepo();
    const first = await repo.commit({ 'servers/a.yaml': tinyServer('a', h), 'README.md': 'not a manifest\n' });
    await h.write('source.yaml', gitRepositoryYaml(repo.url, { path: 'servers', interval: '1s' }));
    await h.start({}, { git: true });
    const s1 = await appliedRevision(h, `main@sha1:${first}`);
    expect(s1.url).toBe(repo.url);
    expect(s1.fetchedAt).toBeDefined();
    const a1 = await running(h, 'a', `main@sha1:${first}`);

    // Pushed, not asked for: the interval (1 s) picks it up.
    const second = await repo.commit({ 'servers/b.yaml': tinyServer('b', h) });
    const pushedAt = Date.now();
    await appliedRevision(h, `main@sha1:${second}`, 5_000);
    await running(h, 'b', `main@sha1:${second}`);
    expect(Date.now() - pushedAt).toBeLessThan(5_000);
    // a did not change: same process, now stamped with the new revision it was reconciled against.
    const a2 = await running(h, 'a', `main@sha1:${second}`);
    expect(a2.pid).toBe(a1.pid);
    // Files are named as in the repository.
    const view = await h.view();
    expect(view.objects.find((o) => o.name === 'b')?.declaredAt).toBe('servers/b.yaml:1');
  });

  it('reconcile source fetches at once; a commit that does not validate is not applied at all, and a fix rolls forward', async () => {
    const h = await harness();
    const repo = await testRepo();
    const good = await repo.commit({ 'a.yaml': tinyServer('a', h) });
    await h.write('source.yaml', gitRepositoryYaml(repo.url, { interval: '1h' }));
    await h.start({}, { git: true });
    const layout = new StateLayout(h.stateDir);
    await appliedRevision(h, `main@sha1:${good}`);
    const a1 = await running(h, 'a', `main@sha1:${good}`);

    // One commit changes a (valid) and adds a broken b: none of it is applied.
    const bad = await repo.commit({
      'a.yaml': tinyServer('a', h, { args: ['--changed'] }),
      'b.yaml': 'apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: b\nspec:\n  command: node\n  port: nope\n',
    });
    await requestReconcile(layout);
    const failed = await h.waitFor('validation failure', async () => {
      const s = await source(h);
      return findCondition(s?.conditions, 'Ready')?.reason === 'ValidationFailed' ? s : undefined;
    });
    const ready = findCondition(failed.conditions, 'Ready')!;
    expect(ready.status).toBe('False');
    expect(ready.message).toContain(`main@sha1:${bad}`);
    expect(ready.message).toMatch(/b\.yaml:7:9: spec\.port/);
    expect(ready.message).toContain(`main@sha1:${good} keeps running`);
    expect(failed.artifact?.revision).toBe(`main@sha1:${good}`);
    expect(failed.lastAttemptedRevision).toBe(`main@sha1:${bad}`);
    expect(findCondition(failed.conditions, 'Stalled')?.status).toBe('True');
    const still = await h.status('a');
    expect(still?.pid).toBe(a1.pid);
    expect(still?.lastAppliedRevision).toBe(`main@sha1:${good}`);
    expect(isAlive(a1.pid!)).toBe(true);
    expect(await h.status('b')).toBeUndefined();

    // The fix: a rolls to the new spec, b runs.
    const fixed = await repo.commit({ 'b.yaml': tinyServer('b', h) });
    const asked = Date.now();
    await requestReconcile(layout);
    await appliedRevision(h, `main@sha1:${fixed}`, 5_000);
    const a2 = await running(h, 'a', `main@sha1:${fixed}`);
    expect(Date.now() - asked).toBeLessThan(5_000);
    expect(a2.pid).not.toBe(a1.pid);
    expect((await h.report('a', a2.pid!)).args).toContain('--changed');
    await running(h, 'b', `main@sha1:${fixed}`);
    const after = await source(h);
    expect(after?.lastAttemptedRevision).toBeUndefined();
  });

  it('follows a force-push that rewrites history back to older manifests', async () => {
    const h = await harness();
    const repo = await testRepo();
    const base = await repo.commit({ 'a.yaml': tinyServer('a', h) });
    const ahead = await repo.commit({ 'b.yaml': tinyServer('b', h) });
    await h.write('source.yaml', gitRepositoryYaml(repo.url, { interval: '1h' }));
    await h.start({}, { git: true });
    await appliedRevision(h, `main@sha1:${ahead}`);
    await running(h, 'b', `main@sha1:${ahead}`);

    // History rewritten: b's commit is gone from the branch, a new one replaces it.
    repo.git('reset', '--quiet', '--hard', base);
    const rewritten = await repo.commit({ 'c.yaml': tinyServer('c', h) }, 'rewrite', { push: false });
    repo.git('push', '--quiet', '--force', 'origin', 'HEAD:refs/heads/main');
    await requestReconcile(new StateLayout(h.stateDir));
    await appliedRevision(h, `main@sha1:${rewritten}`);
    await running(h, 'c', `main@sha1:${rewritten}`);
    await h.waitFor('b pruned', async () => (await h.status('b')) === undefined);
    // Only the revision that runs and the one before it are kept.
    const revisions = await readdir(join(h.stateDir, 'git', 'revisions'));
    expect(revisions.sort()).toEqual([ahead, rewritten].sort());
  });

  it('a tag and a pinned commit stay where they are while the branch moves', async () => {
    const h1 = await harness();
    const repo = await testRepo();
    const v1 = await repo.commit({ 'a.yaml': tinyServer('a', h1) });
    repo.git('tag', 'v1');
    repo.git('push', '--quiet', 'origin', 'v1');
    await repo.commit({ 'b.yaml': tinyServer('b', h1) });

    await h1.write('source.yaml', gitRepositoryYaml(repo.url, { ref: { tag: 'v1' }, interval: '1s' }));
    await h1.start({}, { git: true });
    await appliedRevision(h1, `v1@sha1:${v1}`);
    await running(h1, 'a', `v1@sha1:${v1}`);

    const h2 = await harness();
    await h2.write('source.yaml', gitRepositoryYaml(repo.url, { ref: { commit: v1 }, interval: '1s' }));
    await h2.start({}, { git: true });
    await appliedRevision(h2, `sha1:${v1}`);

    // The branch moves twice more; two intervals later neither has moved.
    await repo.commit({ 'c.yaml': tinyServer('c', h1) });
    const fetchedBefore = (await source(h1))!.fetchedAt!;
    await h1.waitFor('two more fetches', async () => ((await source(h1))!.fetchedAt! > fetchedBefore ? true : undefined), 5_000);
    expect((await source(h1))?.artifact?.revision).toBe(`v1@sha1:${v1}`);
    expect((await source(h2))?.artifact?.revision).toBe(`sha1:${v1}`);
    expect(await h1.status('b')).toBeUndefined();
    expect(await h2.status('c')).toBeUndefined();

    // Moving the tag (a release re-cut) is followed.
    const v1b = repo.git('rev-parse', 'HEAD');
    repo.git('tag', '--force', 'v1');
    repo.git('push', '--quiet', '--force', 'origin', 'v1');
    await appliedRevision(h1, `v1@sha1:${v1b}`, 5_000);
    await running(h1, 'c', `v1@sha1:${v1b}`);
  });

  it('an unreachable remote is a condition with the git error and back-off; what runs keeps running; it recovers', async () => {
    const h = await harness();
    const repo = await testRepo();
    const first = await repo.commit({ 'a.yaml': tinyServer('a', h) });
    await h.write('source.yaml', gitRepositoryYaml(repo.url, { interval: '1h' }));
    await h.start({}, { git: true });
    await appliedRevision(h, `main@sha1:${first}`);
    const a = await running(h, 'a', `main@sha1:${first}`);

    const moved = `${repo.url}.moved`;
    await rename(repo.url, moved);
    await requestReconcile(new StateLayout(h.stateDir));
    const failed = await h.waitFor('fetch failure', async () => {
      const s = await source(h);
      return findCondition(s?.conditions, 'Ready')?.reason === 'GitOperationFailed' ? s : undefined;
    });
    const ready = findCondition(failed.conditions, 'Ready')!;
    expect(ready.message).toMatch(/git (ls-remote|fetch) failed: .*(does not appear to be a git repository|not found|No such)/i);
    expect(ready.message).toContain(`main@sha1:${first} keeps running`);
    expect(failed.phase).toBe('FetchFailed');
    // The retry is sooner than the 1 h interval: back-off from 5 s.
    const retryIn = Date.parse(failed.nextFetchAt!) - Date.now();
    expect(retryIn).toBeLessThan(6_000);
    expect((await h.status('a'))?.pid).toBe(a.pid);
    expect(isAlive(a.pid!)).toBe(true);
    expect(h.logs.filter((l) => l.msg === 'git fetch failed; retrying with back-off')).toHaveLength(1);

    await rename(moved, repo.url);
    const next = await repo.commit({ 'b.yaml': tinyServer('b', h) });
    // The back-off retry finds it (no request needed).
    await appliedRevision(h, `main@sha1:${next}`, 15_000);
    await running(h, 'b', `main@sha1:${next}`);
  });

  it('failed fetches back off from 5 s, doubling, up to the interval, by the clock; a fetch that works again resets it', async () => {
    const clock = new ScheduleClock(Date.now());
    const h = await harness();
    const repo = await testRepo();
    const first = await repo.commit({ 'a.yaml': tinyServer('a', h) });
    const moved = `${repo.url}.moved`;
    await rename(repo.url, moved);
    await h.write('source.yaml', gitRepositoryYaml(repo.url, { interval: '45s' }));
    await h.start({}, { git: true, clock });
    clock.advance(0); // the first fetch, due at once
    // The clock moves only here, and only once the next fetch is on it: a failure's status names its
    // nextFetchAt, and the timer for it is set just after that status is written. (45 s, not the
    // controller's 60 s resync, so no other timer falls due at the same moment.)
    const failure = async (since: number): Promise<number | false> => {
      const s = await source(h);
      const at = s?.phase === 'FetchFailed' && s.nextFetchAt !== undefined ? Date.parse(s.nextFetchAt) : 0;
      return at > clock.now() && clock.scheduledSince(since, at) && at - clock.now();
    };
    const waits: number[] = [];
    for (let n = 1; n <= 6; n++) {
      const since = clock.mark();
      waits.push(await h.waitFor(`failure ${n}, its retry on the clock`, () => failure(since), 20_000));
      clock.advance(waits.at(-1)!);
    }
    expect(waits).toEqual([5_000, 10_000, 20_000, 40_000, 45_000, 45_000]);

    await rename(moved, repo.url);
    let since = clock.mark();
    clock.advance(45_000);
    await appliedRevision(h, `main@sha1:${first}`, 20_000);
    // An interval later, plus Flux's jitter (up to 10%): sources that share an interval do not fetch together.
    const next = await h.waitFor('the next fetch an interval later, on the clock', async () => clock.scheduledWithin(since, clock.now() + 45_000, clock.now() + 49_500));
    // Reset: the next failure, an interval later, waits 5 s again.
    await rename(repo.url, moved);
    since = clock.mark();
    clock.advance(next - clock.now());
    expect(await h.waitFor('a failure after the recovery, its retry on the clock', () => failure(since), 20_000)).toBe(5_000);
  });

  it('sealed values committed to the repository open with this machine key; a secret deleted by a commit keeps the server running', async () => {
    const h = await harness();
    const keys = new KeyStore({ env: { APIARY_KEY_FILE: h.keyFile } });
    const sealed = seal(await keys.get(), 'api', 'token', 'from-git-value');
    const secret = `apiVersion: apiary.dev/v1alpha1\nkind: Secret\nmetadata:\n  name: api\nencryptedData:\n  token: "${sealed}"\n`;
    const env = '    - name: TOKEN\n      valueFrom:\n        secretKeyRef: { name: api, key: token }\n';
    const repo = await testRepo();
    const first = await repo.commit({ 'secret.yaml': secret, 'a.yaml': tinyServer('a', h, { env, hash: ['TOKEN'] }) });
    await h.write('source.yaml', gitRepositoryYaml(repo.url, { interval: '1h' }));
    await h.start({}, { git: true });
    const a = await running(h, 'a', `main@sha1:${first}`);
    const report = await h.report('a', a.pid!);
    const { createHash } = await import('node:crypto');
    expect(report.hashes['TOKEN']).toBe(createHash('sha256').update('from-git-value').digest('hex'));

    const removed = await repo.commit({ 'secret.yaml': null });
    await requestReconcile(new StateLayout(h.stateDir));
    await appliedRevision(h, `main@sha1:${removed}`);
    const after = await h.waitFor('secret gone noticed', async () => {
      const s = await h.status('a');
      return findCondition(s?.conditions, 'SecretsResolved')?.status === 'False' ? s : undefined;
    });
    expect(after.phase).toBe('Running');
    expect(after.pid).toBe(a.pid);
    // Nothing about the value anywhere apiary wrote.
    const status = await readFile(join(h.stateDir, 'status', 'mcpserver', 'a.json'), 'utf8');
    expect(status).not.toContain('from-git-value');
  });

  it('starts from the last good revision when the remote is down at start, and never prunes before the first fetch', async () => {
    const h = await harness();
    const repo = await testRepo();
    const first = await repo.commit({ 'a.yaml': tinyServer('a', h) });
    await h.write('source.yaml', gitRepositoryYaml(repo.url, { interval: '1h' }));
    const c1 = await h.start({}, { git: true });
    const a = await running(h, 'a', `main@sha1:${first}`);
    await c1.stop();

    await rename(repo.url, `${repo.url}.away`);
    await h.start({}, { git: true });
    const again = await running(h, 'a', `main@sha1:${first}`);
    expect(again.pid).not.toBe(a.pid);
    const s = await h.waitFor('fetch failure', async () => {
      const st = await source(h);
      return findCondition(st?.conditions, 'Ready')?.reason === 'GitOperationFailed' ? st : undefined;
    });
    expect(s.artifact?.revision).toBe(`main@sha1:${first}`);
    expect(await readlink(join(h.stateDir, 'git', 'current'))).toBe(`revisions/${first}`);
  });
});

describe.skipIf(!git.available)('git source: editing the GitRepository', () => {
  it('another ref is followed at the next resync, without waiting for the interval; a short sha pins its commit', async () => {
    const h = await harness();
    const repo = await testRepo();
    const first = await repo.commit({ 'a.yaml': tinyServer('a', h) });
    const second = await repo.commit({ 'b.yaml': tinyServer('b', h) });
    await h.write('source.yaml', gitRepositoryYaml(repo.url, { interval: '1h' }));
    const controller = await h.start({}, { git: true });
    await appliedRevision(h, `main@sha1:${second}`);
    await running(h, 'b', `main@sha1:${second}`);

    await h.write('source.yaml', gitRepositoryYaml(repo.url, { interval: '1h', ref: { name: first.slice(0, 8) } }));
    await controller.resync();
    const pinned = await appliedRevision(h, `sha1:${first}`);
    expect(h.logs.some((l) => l.msg === 'GitRepository changed; fetching now')).toBe(true);
    expect(pinned.observedGeneration).toBe(2);
    await h.waitFor('b pruned', async () => (await h.status('b')) === undefined);
    await running(h, 'a', `sha1:${first}`);

    // A GitRepository that stops validating: nothing is fetched, what runs stays, and the source says where.
    await h.write('source.yaml', gitRepositoryYaml(repo.url, { interval: 'soon' }));
    await controller.resync();
    const invalid = await h.waitFor('invalid source manifest', async () => {
      const s = await source(h);
      return findCondition(s?.conditions, 'Ready')?.reason === 'InvalidManifest' ? s : undefined;
    });
    expect(findCondition(invalid.conditions, 'Ready')?.message).toMatch(/source\.yaml:7:13: spec\.interval: must be a duration .*; nothing is fetched until it is fixed; sha1:\w+ keeps running$/);
    expect((await h.status('a'))?.phase).toBe('Running');

    await h.write('source.yaml', gitRepositoryYaml(repo.url, { interval: '1h', ref: { name: 'nothing-like-this' } }));
    await controller.resync();
    const failed = await h.waitFor('unknown ref', async () => {
      const s = await source(h);
      return findCondition(s?.conditions, 'Ready')?.reason === 'GitOperationFailed' ? s : undefined;
    });
    expect(findCondition(failed.conditions, 'Ready')?.message).toContain(`no branch, tag or commit "nothing-like-this" in ${repo.url}; sha1:${first} keeps running`);
  });
});

describe.skipIf(!git.available)('git source: authentication', () => {
  it('a remote that wants a login fails at once (no prompt), says so, and never shows the password in the URL', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((_req, res) => {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' });
      res.end('login required');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const h = await harness();
      const url = `http://someone:s3cret-pass@127.0.0.1:${port}/team/servers.git`;
      await h.write('source.yaml', gitRepositoryYaml(url, { interval: '1h' }));
      const started = Date.now();
      await h.start({}, { git: true });
      const failed = await h.waitFor('auth failure', async () => {
        const s = await source(h);
        return findCondition(s?.conditions, 'Ready')?.reason === 'GitOperationFailed' ? s : undefined;
      });
      expect(Date.now() - started).toBeLessThan(10_000);
      const ready = findCondition(failed.conditions, 'Ready')!;
      expect(ready.message).toMatch(/Authentication failed|could not read Username|401/);
      expect(ready.message).toContain('nothing from this repository runs yet');
      // Status files, events and logs: what apiary writes (the manifest itself is the user's).
      const { filesUnder } = await import('./helpers/tmp.js');
      const written = await Promise.all((await filesUnder(h.stateDir)).filter((f) => !f.includes('/source/')).map((f) => readFile(f, 'latin1')));
      expect(written.join('\n') + JSON.stringify(h.logs)).not.toContain('s3cret-pass');
      const listed = await (await import('./helpers/cli.js')).runCli(['get', 'sources', '-o', 'json'], { env: h.env });
      expect(listed.stdout).toContain('***@127.0.0.1');
      expect(listed.stdout).not.toContain('s3cret-pass');
      expect(failed.url).toBe(`http://***@127.0.0.1:${port}/team/servers.git`);
    } finally {
      server.close();
    }
  });
});

/** Processes whose command line names `marker` (git and its git-remote-http helper both carry the URL). */
async function processesNaming(marker: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(marker)) found.push(`${pid}: ${cmdline.split('\0').join(' ')}`);
  }
  return found;
}

describe.skipIf(!git.available)('git source: a remote that never answers', () => {
  it('a fetch that times out leaves no git or git-remote-http behind', async () => {
    const remote = await hangingRemote();
    try {
      const h = await harness();
      await h.write('source.yaml', gitRepositoryYaml(remote.url, { interval: '1h', timeout: '2s' }));
      await h.start({}, { git: true });
      // While it hangs, the probe sees git and its helper: the check below can see them.
      await h.waitFor('git hanging on the remote', async () => remote.requests() > 0 && (await processesNaming(remote.marker)).some((p) => p.includes('remote-http')));
      const failed = await h.waitFor('fetch timeout', async () => {
        const s = await source(h);
        return findCondition(s?.conditions, 'Ready')?.reason === 'GitOperationFailed' ? s : undefined;
      });
      expect(findCondition(failed.conditions, 'Ready')?.message).toContain('took longer than 2s and was stopped (spec.timeout)');
      let left: string[] = [];
      await h.waitFor('git processes gone', async () => (left = await processesNaming(remote.marker)).length === 0, 5_000).catch(() => undefined);
      expect(left).toEqual([]);
    } finally {
      await remote.close();
    }
  });

  it('stop during a hanging fetch returns at once, not after the fetch timeout, and leaves no git behind', async () => {
    const remote = await hangingRemote();
    try {
      const h = await harness();
      // Ten minutes: far beyond the test's own timeout, so only an aborted fetch lets stop return in time.
      await h.write('source.yaml', gitRepositoryYaml(remote.url, { interval: '1h', timeout: '10m' }));
      const controller = await h.start({}, { git: true });
      await h.waitFor('git hanging on the remote', async () => remote.requests() > 0 && (await processesNaming(remote.marker)).length > 0);
      const order: string[] = [];
      const stopped = controller.stop().then(() => order.push('stopped'));
      const timedOut = new Promise<void>((resolve) => setTimeout(resolve, 10 * 60_000).unref()).then(() => order.push('fetch timeout'));
      await Promise.race([stopped, timedOut]);
      expect(order).toEqual(['stopped']);
      expect(await processesNaming(remote.marker)).toEqual([]);
      // Stopping is not a failed fetch: no GitOperationFailed was recorded for it.
      expect(findCondition((await source(h))?.conditions, 'Ready')?.reason).not.toBe('GitOperationFailed');
    } finally {
      await remote.close();
    }
  });
});

describe('GitRepository manifests', () => {
  it('are validated where they are written: one ref, a relative path, durations; a password in the URL is warned about', async () => {
    const { parseManifestText } = await import('../src/manifests/parse.js');
    const doc = (spec: string) => parseManifestText(`apiVersion: apiary.dev/v1alpha1\nkind: GitRepository\nmetadata:\n  name: origin\nspec:\n${spec}`, '/x/source.yaml', 'source.yaml')[0]!;
    expect(doc('  url: https://example.com/r.git\n  ref: { branch: main }\n  path: servers\n  interval: 1m30s\n').errors).toEqual([]);
    expect(doc('  url: https://example.com/r.git\n  ref: { branch: main, tag: v1 }\n').errors.map((e) => e.message)).toEqual([expect.stringContaining('set exactly one of branch, tag, commit, name')]);
    expect(doc('  url: https://example.com/r.git\n  path: ../elsewhere\n').errors.map((e) => `${e.line}:${e.col}: ${e.message}`)).toEqual([expect.stringMatching(/^7:9: spec\.path: must be a relative path inside the repository/)]);
    expect(doc('  url: https://example.com/r.git\n  interval: soon\n').errors[0]?.message).toContain('must be a duration such as 30s, 1m or 1h');
    expect(doc('  url: --upload-pack=evil\n').errors[0]?.message).toContain('not an option');
    expect(doc('  url: https://me:token@example.com/r.git\n').warnings.map((w) => w.message)).toEqual([expect.stringContaining('credentials in the URL are readable by anyone who reads this file')]);
  });
});
