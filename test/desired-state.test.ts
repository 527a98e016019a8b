/** The desired state carries the git revision each declaration was read from: what statuses name as applied. */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resourceKey } from '../src/api/names.js';
import { DesiredState } from '../src/manifests/desired-state.js';
import { tempDir } from './helpers/tmp.js';

const server = (name: string, arg = 'x'): string => `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: ${name}\nspec:\n  command: node\n  args: [${arg}]\n`;

describe('DesiredState: the revision each entry was read from', () => {
  it('a scan at a revision stamps every entry, changed or not; a scan without one keeps it; a removed key reads the newest', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.yaml'), server('a'));
    await writeFile(join(dir, 'b.yaml'), server('b'));
    const desired = new DesiredState(dir);
    const a = resourceKey('MCPServer', 'a');
    const b = resourceKey('MCPServer', 'b');

    await desired.scan({ reread: true, revision: 'main@sha1:one' });
    expect(desired.get(a)?.revision).toBe('main@sha1:one');
    expect(desired.revisionOf(b)).toBe('main@sha1:one');

    // The next revision changes b only: a, the same text, comes from it too.
    await writeFile(join(dir, 'b.yaml'), server('b', 'y'));
    const { affected } = await desired.scan({ reread: true, revision: 'main@sha1:two' });
    expect([...affected]).toEqual([b]);
    expect(desired.get(a)?.revision).toBe('main@sha1:two');
    expect(desired.get(b)?.revision).toBe('main@sha1:two');

    // A resync reads no new revision: entries keep theirs.
    await desired.scan();
    expect(desired.get(a)?.revision).toBe('main@sha1:two');

    await rm(join(dir, 'b.yaml'));
    await desired.scan({ reread: true, revision: 'main@sha1:three' });
    expect(desired.get(b)).toBeUndefined();
    expect(desired.revisionOf(b)).toBe('main@sha1:three');
  });

  it('without git no entry has a revision', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.yaml'), server('a'));
    const desired = new DesiredState(dir);
    await desired.scan();
    expect(desired.get(resourceKey('MCPServer', 'a'))?.revision).toBeUndefined();
    expect(desired.revisionOf(resourceKey('MCPServer', 'a'))).toBeUndefined();
  });
});
