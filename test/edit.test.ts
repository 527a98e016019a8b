import { spawnSync } from 'node:child_process';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { withDirectoryLock } from '../src/manifests/edit.js';
import { tempDir } from './helpers/tmp.js';
import { documentTexts, replaceDocumentText, setInBlockMap, splitDocuments } from '../src/manifests/edit.js';

describe('setInBlockMap', () => {
  const doc = `kind: MCPServer
spec: # the spec
  command: node   # launcher
  env:
    - name: A
      value: "1"   # kept
# trailing comment
`;
  it('adds a key after the last entry, at the mapping indent, touching no other line', () => {
    expect(setInBlockMap(doc, ['spec'], 'suspend', 'true')).toBe(doc.replace('      value: "1"   # kept\n', '      value: "1"   # kept\n  suspend: true\n'));
  });

  it('replaces only the value of an existing key, and removes only its line', () => {
    const withKey = 'spec:\n  suspend: false # why\n  command: x\n';
    expect(setInBlockMap(withKey, ['spec'], 'suspend', 'true')).toBe('spec:\n  suspend: true # why\n  command: x\n');
    expect(setInBlockMap(withKey, ['spec'], 'suspend', undefined)).toBe('spec:\n  command: x\n');
  });

  it('gives up on flow mappings so the caller can fall back', () => {
    expect(setInBlockMap('spec: { command: x }\n', ['spec'], 'suspend', 'true')).toBeUndefined();
  });
});

describe('document texts', () => {
  const file = '# head\na: 1\n---\n# second\nb: 2\n---\nc: 3\n';
  it('splits a file into documents, the first keeping the comments above it', () => {
    expect(documentTexts(file)).toEqual(['# head\na: 1\n', '---\n# second\nb: 2\n', '---\nc: 3\n']);
    expect(splitDocuments(file).map((s) => s.isDocument)).toEqual([false, true, true, true]);
  });

  it('replaces one document as written and leaves the others byte for byte', () => {
    expect(replaceDocumentText(file, 1, '# new\nb: 3\n')).toBe('# head\na: 1\n---\n# new\nb: 3\n---\nc: 3\n');
    expect(replaceDocumentText(file, 0, 'a: 2\n')).toBe('a: 2\n---\n# second\nb: 2\n---\nc: 3\n');
  });
});

describe('withDirectoryLock', () => {
  it('sweeps temp files of writers that died, and keeps those of live ones', async () => {
    const dir = await tempDir();
    const dead = spawnSync('true').pid;
    await writeFile(join(dir, `.a.yaml.${dead}.0123abcd.tmp`), 'half');
    await writeFile(join(dir, `.b.yaml.${process.ppid}.0123abcd.tmp`), 'in progress');
    await writeFile(join(dir, 'c.yaml'), 'kept: true\n');
    await withDirectoryLock(dir, async () => undefined);
    expect((await readdir(dir)).sort()).toEqual([`.b.yaml.${process.ppid}.0123abcd.tmp`, 'c.yaml']);
  });
});

describe('withDirectoryLock where the state home cannot be written', () => {
  it('falls back to a hidden lock file in the directory, and still serializes writers', async () => {
    const dir = await tempDir();
    const blocker = join(dir, '..', `${basename(dir)}-not-a-folder`);
    await writeFile(blocker, 'a file where a folder would go');
    const saved = process.env['XDG_STATE_HOME'];
    process.env['XDG_STATE_HOME'] = join(blocker, 'state');
    try {
      const order: string[] = [];
      await Promise.all([
        withDirectoryLock(dir, async () => {
          order.push('a in');
          await new Promise((r) => setTimeout(r, 50));
          order.push('a out');
        }),
        withDirectoryLock(dir, async () => {
          order.push('b in');
          await new Promise((r) => setTimeout(r, 50));
          order.push('b out');
        }),
      ]);
      // One section at a time, whichever took the lock first.
      expect(order.join()).toMatch(/^(a in,a out,b in,b out|b in,b out,a in,a out)$/);
      expect(await readdir(dir)).toEqual(['.apiary.lock']);
    } finally {
      if (saved === undefined) delete process.env['XDG_STATE_HOME'];
      else process.env['XDG_STATE_HOME'] = saved;
      await rm(blocker, { force: true });
    }
  });
});
