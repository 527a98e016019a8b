import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { harness, tinyServer } from './helpers/controller.js';

/** An in-place save that a reader can catch half-way: truncate, write half, pause, write the rest. */
async function tornWrite(path: string, text: string, pauseMs: number): Promise<void> {
  const handle = await open(path, 'w');
  const half = Math.floor(text.length / 2);
  await handle.write(text.slice(0, half));
  await handle.sync();
  await new Promise((r) => setTimeout(r, pauseMs));
  await handle.write(text.slice(half));
  await handle.close();
}

describe('manifest source', () => {
  it('loses none of 30 torn in-place edits: the last one always wins', async () => {
    const h = await harness();
    const path = join(h.dir, 'a.yaml');
    await h.write('a.yaml', tinyServer('a', h));
    await h.start();
    await h.waitFor('running', async () => (await h.status('a'))?.phase === 'Running');
    for (let round = 0; round < 30; round++) {
      await tornWrite(path, tinyServer('a', h, { args: [`--edit-${round}`] }), 1 + (round % 7) * 5);
      if (round % 3 === 0) await new Promise((r) => setTimeout(r, 20));
    }
    const pid = await h.waitFor('the last edit running', async () => {
      const s = await h.server('a');
      const status = await h.status('a');
      // Rolled out: Ready speaks of the generation the manifest is at (during a rolling update it names the old one).
      const ready = findCondition(status?.conditions, 'Ready');
      return s?.stale === false && status?.phase === 'Running' && ready?.status === 'True' && ready.observedGeneration === s.object.metadata.generation && status.pid;
    }, 20_000);
    expect((await h.report('a', pid)).args).toEqual(['--edit-29']);
  }, 40_000);

  it('follows atomic saves (write a temp file, rename over) and delete-then-recreate', async () => {
    const h = await harness();
    const path = join(h.dir, 'a.yaml');
    await h.write('a.yaml', tinyServer('a', h));
    await h.start();
    const first = await h.waitFor('running', async () => (await h.status('a'))?.pid);

    await writeFile(join(h.dir, '.a.yaml.swp'), 'garbage: [');
    await writeFile(join(h.dir, 'a.yaml.tmp'), tinyServer('a', h, { args: ['--atomic'] }));
    await rename(join(h.dir, 'a.yaml.tmp'), path);
    const second = await h.waitFor('atomic save applied', async () => {
      const s = await h.status('a');
      return s?.phase === 'Running' && s.pid !== first && s.pid;
    });
    expect((await h.report('a', second)).cwd).toBe(h.dir);

    await rm(path);
    await writeFile(path, tinyServer('a', h, { args: ['--recreated'] }));
    const third = await h.waitFor('recreate applied', async () => {
      const s = await h.status('a');
      return s?.phase === 'Running' && s.pid !== second && (await h.server('a'))?.stale === false && s.pid;
    });
    expect(third).toBeGreaterThan(0);
  });

  it('picks up files in new subfolders', async () => {
    const h = await harness();
    await h.start();
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(h.dir, 'team', 'tools'), { recursive: true });
    await writeFile(join(h.dir, 'team', 'tools', 'b.yaml'), tinyServer('b', h));
    await h.waitFor('b running', async () => (await h.status('b'))?.phase === 'Running');
  });
});

describe('the manifest directory itself disappearing', () => {
  it('prunes nothing while it is gone, and picks up where it was when it is back', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    await h.start();
    const pid = await h.waitFor('running', async () => (await h.status('a'))?.pid);
    const away = `${h.dir}.away`;
    await rename(h.dir, away);
    // The watcher has heard of it (the file event finds the directory gone and says so), then a full pass.
    await h.waitFor('the watcher finding the directory gone', async () => h.logs.some((r) => r.msg.startsWith('manifest directory is gone')));
    await h.controller!.resync();
    await h.controller!.idle();
    expect((await h.status('a'))?.pid).toBe(pid);
    expect((await h.status('a'))?.phase).toBe('Running');
    await rename(away, h.dir);
    await h.controller!.resync();
    await h.controller!.idle();
    expect((await h.status('a'))?.pid).toBe(pid);
    // Deleted and made again (a new inode): the next resync watches it again, so edits apply promptly.
    // Made whole beside it and renamed into place: an empty directory seen in between would rightly prune a.
    const text = await readFile(join(h.dir, 'a.yaml'), 'utf8');
    await rm(h.dir, { recursive: true });
    await h.controller!.resync();
    await h.controller!.idle();
    const remade = `${h.dir}.new`;
    await mkdir(remade);
    await writeFile(join(remade, 'a.yaml'), text);
    await rename(remade, h.dir);
    await h.controller!.resync();
    await h.controller!.idle();
    expect((await h.status('a'))?.pid).toBe(pid);
    await writeFile(join(h.dir, 'a.yaml'), tinyServer('a', h, { args: ['--after-recreate'] }));
    await h.waitFor('edit applied by the new watch', async () => {
      const s = await h.status('a');
      return s?.pid !== pid && s?.phase === 'Running';
    }, 3000);
    // And a real delete still prunes.
    await rm(join(h.dir, 'a.yaml'));
    await h.controller!.resync();
    await h.waitFor('a pruned', async () => (await h.server('a')) === undefined);
  });
});
