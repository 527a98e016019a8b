/**
 * The GitRepository reconciler on its own: a FakeClock, a fake Host (no
 * manager, no controller), the real git against a bare repository in a temp
 * folder. Each pass is called as the work queue would call it, and what it
 * returns is when the queue would call it again.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Kind, ResourceKey } from '../src/api/names.js';
import type { Host, Reconciler } from '../src/api/runnable.js';
import { findCondition, type GitRepositoryStatus } from '../src/api/status.js';
import { GitRepositoryReconciler } from '../src/reconcilers/gitrepository.js';
import { StateLayout } from '../src/state/layout.js';
import { RecordBook } from '../src/state/record-book.js';
import { requestReconcile } from '../src/state/requests.js';
import { StatusStore } from '../src/state/status-store.js';
import { FakeClock } from '../src/util/clock.js';
import { createLogger, type LogRecord } from '../src/util/logger.js';
import { gitRepositoryYaml, hangingRemote, testRepo, type TestRepo } from './helpers/git.js';
import { tempDir } from './helpers/tmp.js';
import { needsGit } from './helpers/tools.js';
import { waitFor } from './helpers/wait.js';

const git = needsGit();
const SERVER = 'apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: a\nspec:\n  command: node\n';
/** With random fixed at 0.5, an interval of 1 m is requeued after 63 s (half of Flux's 10% jitter). */
const MINUTE_JITTERED = 63_000;

interface World {
  reconciler: GitRepositoryReconciler;
  clock: FakeClock;
  records: RecordBook;
  layout: StateLayout;
  sourceDir: string;
  repo: TestRepo;
  logs: LogRecord[];
  applied: string[];
  registered: Map<Kind, Reconciler>;
  /** Status files written so far. */
  writes(): number;
  status(): GitRepositoryStatus;
  /** Writes the GitRepository manifest the source directory declares. */
  declare(spec?: Record<string, unknown>, url?: string): Promise<void>;
}

async function world(spec: Record<string, unknown> = { interval: '1m' }, url?: string): Promise<World> {
  const root = await tempDir('apiary-gitrec-');
  const layout = new StateLayout(join(root, 'state'));
  const sourceDir = join(root, 'source');
  await mkdir(sourceDir, { recursive: true });
  const repo = await testRepo();
  await repo.commit({ 'a.yaml': SERVER });
  const clock = new FakeClock(Date.parse('2026-03-01T00:00:00Z'));
  const records = new RecordBook(new StatusStore(layout), clock, { pid: process.pid, runId: 'test' });
  let writes = 0;
  records.onWrite((kind) => {
    if (kind === 'GitRepository') writes += 1;
  });
  const logs: LogRecord[] = [];
  const applied: string[] = [];
  const declare = (s: Record<string, unknown> = spec, u: string = url ?? repo.url): Promise<void> => writeFile(join(sourceDir, 'source.yaml'), gitRepositoryYaml(u, s));
  await declare();
  const reconciler = new GitRepositoryReconciler({
    layout,
    sourceDir,
    records,
    clock,
    logger: createLogger((r) => logs.push(r), 'debug'),
    random: () => 0.5,
    applied: async (revision) => {
      applied.push(revision);
    },
  });
  const registered = new Map<Kind, Reconciler>();
  const host: Host = {
    enqueue: () => undefined,
    enqueueAll: () => undefined,
    register: (kind, r) => registered.set(kind, r),
    changed: () => undefined,
    idle: () => Promise.resolve(),
    signal: new AbortController().signal,
  };
  await reconciler.start(host);
  return {
    reconciler, clock, records, layout, sourceDir, repo, logs, applied, registered, declare,
    writes: () => writes,
    status: () => records.get('GitRepository', 'origin')!.status as GitRepositoryStatus,
  };
}

describe.skipIf(!git.available)('GitRepositoryReconciler', () => {
  it('registers for GitRepository and names its key; the first pass fetches, applies and asks to come back after the interval with jitter', async () => {
    const w = await world();
    expect(w.registered.get('GitRepository')).toBe(w.reconciler);
    expect([...w.reconciler.keys()]).toEqual<ResourceKey[]>(['GitRepository/origin' as ResourceKey]);
    const sha = w.repo.git('rev-parse', 'HEAD');

    const result = await w.reconciler.reconcile('origin');
    expect(result).toEqual({ requeueAfterMs: MINUTE_JITTERED });
    expect(w.applied).toEqual([`main@sha1:${sha}`]);
    expect(w.reconciler.revision).toBe(`main@sha1:${sha}`);
    const status = w.status();
    expect(findCondition(status.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'Succeeded' });
    expect(status.nextFetchAt).toBe(new Date(w.clock.now() + MINUTE_JITTERED).toISOString());
    // Once per pass, with its event.
    expect(w.writes()).toBe(1);
    expect(w.records.get('GitRepository', 'origin')!.events.map((e) => e.reason)).toEqual(['NewArtifact']);
    // Another name is not this directory's GitRepository: nothing to do.
    expect(await w.reconciler.reconcile('other')).toEqual({});
  });

  it('a new revision is announced after its status is written; an announcement that fails is made again at the next pass', async () => {
    const w = await world();
    const sha = w.repo.git('rev-parse', 'HEAD');
    const seen: (string | undefined)[] = [];
    let fail = true;
    const flaky = new GitRepositoryReconciler({
      layout: w.layout, sourceDir: w.sourceDir, records: w.records, clock: w.clock, logger: createLogger(() => undefined), random: () => 0.5,
      applied: async (revision) => {
        seen.push(w.status().artifact?.revision);
        if (fail) throw new Error(`cannot read ${revision}`);
      },
    });
    await expect(flaky.reconcile('origin')).rejects.toThrow(`cannot read main@sha1:${sha}`);
    // The status was written first: whoever reads it after hearing of the revision finds it there.
    expect(seen).toEqual([`main@sha1:${sha}`]);
    expect(w.writes()).toBe(1);
    fail = false;
    // Not due, yet the revision the wiring has not read is announced again; then never more.
    expect(await flaky.reconcile('origin')).toEqual({ requeueAfterMs: MINUTE_JITTERED });
    expect(await flaky.reconcile('origin')).toEqual({ requeueAfterMs: MINUTE_JITTERED });
    expect(seen).toHaveLength(2);
    expect(w.writes()).toBe(1);
  });

  it('a pass before the next fetch is due does not fetch and returns the time left', async () => {
    const w = await world();
    await w.reconciler.reconcile('origin');
    const fetched = w.status().fetchedAt;
    // Were it to fetch, it would fail: the remote is gone.
    await rename(w.repo.url, `${w.repo.url}.away`);
    w.clock.advance(20_000);
    expect(await w.reconciler.reconcile('origin')).toEqual({ requeueAfterMs: MINUTE_JITTERED - 20_000 });
    expect(w.writes()).toBe(1);
    expect(w.status().fetchedAt).toBe(fetched);
    expect(findCondition(w.status().conditions, 'Ready')?.status).toBe('True');
    // Once it is due, it does fetch (and fails, and says so).
    w.clock.advance(MINUTE_JITTERED - 20_000);
    expect(await w.reconciler.reconcile('origin')).toEqual({ requeueAfterMs: 5_000 });
    expect(w.status().phase).toBe('FetchFailed');
    expect(w.writes()).toBe(2);
  });

  it('a changed GitRepository spec is fetched at once, as a new generation', async () => {
    const w = await world();
    await w.reconciler.reconcile('origin');
    const second = await w.repo.commit({ 'b.yaml': SERVER.replace('name: a', 'name: b') });
    w.clock.advance(1_000);
    // Not due for another minute, and no request: only the edit makes this pass fetch.
    await w.declare({ interval: '2m' });
    expect(await w.reconciler.reconcile('origin')).toEqual({ requeueAfterMs: 126_000 });
    expect(w.applied.at(-1)).toBe(`main@sha1:${second}`);
    expect(w.status().observedGeneration).toBe(2);
    expect(w.logs.some((l) => l.msg === 'GitRepository changed; fetching now')).toBe(true);
    expect(w.writes()).toBe(2);
    // Acted on once: the next pass waits for the new interval.
    expect(await w.reconciler.reconcile('origin')).toEqual({ requeueAfterMs: 126_000 });
    expect(w.writes()).toBe(2);
  });

  it('a pending reconcile request fetches at once and is recorded as handled; once handled it is not pending', async () => {
    const w = await world();
    await w.reconciler.reconcile('origin');
    const next = await w.repo.commit({ 'b.yaml': SERVER.replace('name: a', 'name: b') });
    w.clock.advance(1_000);
    const request = await requestReconcile(w.layout, new Date(w.clock.now()));

    expect(await w.reconciler.reconcile('origin')).toEqual({ requeueAfterMs: MINUTE_JITTERED });
    expect(w.applied.at(-1)).toBe(`main@sha1:${next}`);
    expect(w.status().lastHandledReconcileAt).toBe(request.requestedAt);
    expect(w.writes()).toBe(2);

    // The same request file, read again: already handled, so the next pass waits for the interval.
    w.clock.advance(1_000);
    expect(await w.reconciler.reconcile('origin')).toEqual({ requeueAfterMs: MINUTE_JITTERED - 1_000 });
    expect(w.writes()).toBe(2);
  });

  it('failed fetches return a growing back-off, capped at the interval; a fetch that works returns the interval with jitter', async () => {
    const w = await world();
    await rename(w.repo.url, `${w.repo.url}.away`);
    const waits: number[] = [];
    for (let n = 1; n <= 6; n++) {
      const { requeueAfterMs } = await w.reconciler.reconcile('origin');
      waits.push(requeueAfterMs!);
      expect(w.writes()).toBe(n);
      expect(w.status().nextFetchAt).toBe(new Date(w.clock.now() + requeueAfterMs!).toISOString());
      w.clock.advance(requeueAfterMs!);
    }
    expect(waits).toEqual([5_000, 10_000, 20_000, 40_000, 60_000, 60_000]);
    expect(findCondition(w.status().conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'GitOperationFailed' });
    expect(w.records.get('GitRepository', 'origin')!.events.filter((e) => e.reason === 'GitOperationFailed').reduce((n, e) => n + e.count, 0)).toBe(6);

    await rename(`${w.repo.url}.away`, w.repo.url);
    expect(await w.reconciler.reconcile('origin')).toEqual({ requeueAfterMs: MINUTE_JITTERED });
    expect(w.status().phase).toBe('Ready');
    // The back-off starts again from 5 s.
    await rename(w.repo.url, `${w.repo.url}.away`);
    w.clock.advance(MINUTE_JITTERED);
    expect(await w.reconciler.reconcile('origin')).toEqual({ requeueAfterMs: 5_000 });
  });

  it('without an injected random the interval is jittered by up to 10%, never less', async () => {
    const w = await world();
    const plain = new GitRepositoryReconciler({ layout: w.layout, sourceDir: w.sourceDir, records: w.records, clock: w.clock, logger: createLogger(() => undefined), applied: async () => undefined });
    const { requeueAfterMs } = await plain.reconcile('origin');
    expect(requeueAfterMs).toBeGreaterThanOrEqual(60_000);
    expect(requeueAfterMs).toBeLessThanOrEqual(66_000);
  });

  it('an aborted signal kills a hanging fetch at once; the pass writes and reports nothing', async () => {
    const remote = await hangingRemote();
    try {
      // Ten minutes: only the abort lets the pass end within the test.
      const w = await world({ interval: '1h', timeout: '10m' }, remote.url);
      const stop = new AbortController();
      const pass = w.reconciler.reconcile('origin', stop.signal);
      await waitFor('git hanging on the remote', () => remote.requests() > 0);
      stop.abort();
      expect(await pass).toEqual({});
      expect(w.writes()).toBe(0);
      expect(w.logs.filter((l) => l.level === 'warn')).toEqual([]);
      expect(w.records.get('GitRepository', 'origin')!.events).toEqual([]);
      // Not a failure: the next pass (the manager started again) fetches at once.
      expect((w.status() as Partial<GitRepositoryStatus>).nextFetchAt).toBeUndefined();
    } finally {
      await remote.close();
    }
  });

  it('stop() kills a hanging fetch too, and no pass starts after it', async () => {
    const remote = await hangingRemote();
    try {
      const w = await world({ interval: '1h', timeout: '10m' }, remote.url);
      const pass = w.reconciler.reconcile('origin');
      await waitFor('git hanging on the remote', () => remote.requests() > 0);
      await w.reconciler.stop();
      expect(await pass).toEqual({});
      expect(await w.reconciler.reconcile('origin')).toEqual({});
      expect(w.writes()).toBe(0);
    } finally {
      await remote.close();
    }
  });
});
