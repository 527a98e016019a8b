/**
 * The manifest watcher (ManifestSource) against real chokidar and a real
 * directory: what it must not lose, and what it must not do forever.
 * chokidar passes one `change` per file per 50 ms and drops the rest, so a
 * second write soon after a first has no event of its own: the watcher's
 * look a little after every read is what catches it.
 */
import { utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resourceKey, type ResourceKey } from '../src/api/names.js';
import { ManifestSource } from '../src/controller/source.js';
import { DesiredState } from '../src/manifests/desired-state.js';
import { toolsLockPath } from '../src/manifests/tools-lock.js';
import { writeFileAtomic } from '../src/util/atomic.js';
import { systemClock } from '../src/util/clock.js';
import { silentLogger } from '../src/util/logger.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

const server = (name: string, arg = 'x'): string => `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: ${name}\nspec:\n  command: node\n  args: [${arg}]\n`;

/** A lock whose one server pins one tool with this description (the digest is all the reader compares). */
const lock = (digit: string): string =>
  `apiVersion: apiary.dev/v1alpha1\nkind: ToolsLock\nservers:\n  s:\n    echo:\n      digest: sha256:${digit.repeat(64)}\n      description: Echoes\n`;

const sources: ManifestSource[] = [];
afterEach(async () => {
  for (const source of sources.splice(0)) await source.stop();
});

async function watching(dir: string): Promise<{ desired: DesiredState; affected: ResourceKey[] }> {
  const desired = new DesiredState(dir);
  await desired.scan();
  const affected: ResourceKey[] = [];
  const source = new ManifestSource({ desired, clock: systemClock, logger: silentLogger, onAffected: (keys) => affected.push(...keys) });
  sources.push(source);
  await source.start();
  return { desired, affected };
}

describe('ManifestSource', () => {
  it('reads a second write of tools.lock.yaml made while chokidar still throttles the first one', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 's.yaml'), server('s'));
    await writeFileAtomic(toolsLockPath(dir), lock('0'));
    const { desired } = await watching(dir);
    const digestOf = (): string | undefined => desired.toolsLockEntry('s')?.['echo']?.digest;

    // Both written atomically, as `apiary tools approve` and the console do.
    await writeFileAtomic(toolsLockPath(dir), lock('a'));
    await waitFor('the first lock read', () => digestOf()?.startsWith('sha256:aaa'));
    await writeFileAtomic(toolsLockPath(dir), lock('b'));
    await waitFor('the second lock read', () => digestOf()?.startsWith('sha256:bbb'), 5_000, { observe: digestOf });
  });

  it('reads a second edit of a manifest made while chokidar still throttles the first one', async () => {
    const dir = await tempDir();
    const file = join(dir, 's.yaml');
    await writeFile(file, server('s'));
    const { desired } = await watching(dir);
    const argOf = (): unknown => {
      const resource = desired.get(resourceKey('MCPServer', 's'))?.resource;
      return resource?.kind === 'MCPServer' ? resource.manifest.spec.args?.[0] : undefined;
    };

    await writeFile(file, server('s', 'first'));
    await waitFor('the first edit read', () => argOf() === 'first');
    await writeFile(file, server('s', 'second'));
    await waitFor('the second edit read', () => argOf() === 'second', 5_000, { observe: argOf });
  });

  it('a save that changes nothing (a touch, an atomic rewrite of the same text) leaves the file not stale', async () => {
    const dir = await tempDir();
    const file = join(dir, 's.yaml');
    await writeFile(file, server('s'));
    const desired = new DesiredState(dir);
    await desired.scan();
    expect(await desired.isStale(file)).toBe(false);

    const later = new Date(Date.now() + 5_000);
    await utimes(file, later, later);
    expect(await desired.isStale(file)).toBe(true);
    expect([...desired.commit(await desired.read(file))]).toEqual([]);
    expect(await desired.isStale(file)).toBe(false);

    await writeFileAtomic(file, server('s'));
    expect(await desired.isStale(file)).toBe(true);
    expect([...desired.commit(await desired.read(file))]).toEqual([]);
    expect(await desired.isStale(file)).toBe(false);

    // tools.lock.yaml the same way: read means not stale, until it is written again.
    await writeFileAtomic(toolsLockPath(dir), lock('a'));
    expect(await desired.isStale(toolsLockPath(dir))).toBe(true);
    await desired.reloadToolsLock();
    expect(await desired.isStale(toolsLockPath(dir))).toBe(false);
  });
});
