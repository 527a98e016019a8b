import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tryLock, unlock } from 'fs-native-extensions';
import { parseAllDocuments, parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { BIN, runCli } from './helpers/cli.js';
import { workspace } from './helpers/tmp.js';
import { manifestLockFile } from '../src/util/state-home.js';
import { waitFor } from './helpers/wait.js';
import { needsScript } from './helpers/tools.js';

/** script(1) gives the hidden prompt a pseudo-terminal. */
const script = needsScript();

const SERVER = `apiVersion: apiary.dev/v1alpha1
kind: MCPServer
metadata:
  name: github
spec:
  command: node
  env:
    - name: GITHUB_TOKEN
      valueFrom:
        secretKeyRef: { name: github, key: token }
`;

describe('secret verbs through ./bin/apiary with APIARY_KEY_FILE', () => {
  it('set from stdin, get, list, and no plaintext in the manifest directory', async () => {
    const ws = await workspace();
    const set = await runCli(['secret', 'set', 'github', 'token'], { env: ws.env, input: 'ghp_plain_value_1\n' });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/secret\/github key "token" sealed into new file .*secret-github\.yaml/);
    const file = await readFile(join(ws.dir, 'secret-github.yaml'), 'utf8');
    expect(file).not.toContain('ghp_plain_value_1');
    expect((await stat(join(ws.dir, 'secret-github.yaml'))).mode & 0o777).toBe(0o600);
    expect(parse(file)).toMatchObject({ kind: 'Secret', encryptedData: { token: expect.stringMatching(/^apiary:v1:/) } });

    expect((await runCli(['secret', 'get', 'github', 'token'], { env: ws.env })).stdout).toBe('ghp_plain_value_1\n');
    await runCli(['secret', 'set', 'github', 'user'], { env: ws.env, input: 'octocat' });
    expect((await runCli(['secret', 'get', 'github'], { env: ws.env })).stdout).toBe('token=ghp_plain_value_1\nuser=octocat\n');

    await writeFile(join(ws.dir, 'server.yaml'), SERVER);
    const list = await runCli(['secret', 'list'], { env: ws.env });
    expect(list.stdout.split('\n')).toEqual([
      'NAME     KEYS         FORM     USED BY   DECRYPTS',
      'github   token,user   sealed   github    yes',
      '',
    ]);
  });

  it('refuses values from argv, empty values, and bad names', async () => {
    const ws = await workspace();
    expect((await runCli(['secret', 'set', 'github', 'token', 'the-value'], { env: ws.env })).code).toBe(2);
    const empty = await runCli(['secret', 'set', 'github', 'token'], { env: ws.env, input: '\n' });
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('refusing an empty value for github/token');
    expect((await runCli(['secret', 'set', 'GitHub', 'token'], { env: ws.env, input: 'x' })).stderr).toContain('not a valid secret name');
  });

  it('--from-file keeps the file content exactly', async () => {
    const ws = await workspace();
    const source = join(ws.root, 'value.txt');
    await writeFile(source, 'line one\nline two\n');
    await runCli(['secret', 'set', 'cert', 'pem', '--from-file', source], { env: ws.env });
    expect((await runCli(['secret', 'get', 'cert', 'pem'], { env: ws.env })).stdout).toBe('line one\nline two\n\n');
  });

  it('updates the declaring document in place, keeping every other byte of the file', async () => {
    const ws = await workspace();
    await mkdir(join(ws.dir, 'team'), { recursive: true });
    const original = `# Team secrets, reviewed by platform.
apiVersion: apiary.dev/v1alpha1
kind: MCPServer
metadata: { name: other }   # flow style kept
spec:
  command: "node"
---
# the github secret
apiVersion: v1
kind: Secret
metadata:
  name: github   # keep me
stringData:
  token: old-plain   # rotate quarterly
  user: octocat
---
apiVersion: apiary.dev/v1alpha1
kind: Secret
metadata: { name: last }
stringData: { a: "1" }
`;
    const path = join(ws.dir, 'team', 'all.yaml');
    await writeFile(path, original);
    const r = await runCli(['secret', 'set', 'github', 'token'], { env: ws.env, input: 'new-value' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('converted secret/github to apiVersion apiary.dev/v1alpha1');
    const after = await readFile(path, 'utf8');
    const [first, second, third] = after.split(/^---\n/m);
    const [oFirst, , oThird] = original.split(/^---\n/m);
    expect(first).toBe(oFirst);
    expect(third).toBe(oThird);
    expect(second).toContain('# the github secret');
    expect(second).toContain('name: github # keep me');
    expect(second).toContain('user: octocat');
    expect(second).not.toContain('old-plain');
    expect((await runCli(['secret', 'get', 'github'], { env: ws.env })).stdout).toBe('token=new-value\nuser=octocat\n');
    expect((await runCli(['validate'], { env: ws.env })).code).toBe(0);
  });

  it('seal rewrites stringData and data into encryptedData, keeping comments', async () => {
    const ws = await workspace();
    await mkdir(ws.dir, { recursive: true });
    const path = join(ws.dir, 's.yaml');
    await writeFile(path, '# keep this comment\napiVersion: v1\nkind: Secret\nmetadata:\n  name: k8s\n# from the cluster\ndata:\n  a: cGxhaW4tYQ==  # base64\nstringData:\n  # the second one\n  b: plain-b # trailing\n');
    const r = await runCli(['seal', path], { env: ws.env });
    expect(r.stdout).toMatch(/sealed 2 value\(s\) with key [0-9a-f]{8}/);
    const text = await readFile(path, 'utf8');
    // Every comment stays with what it was written beside.
    expect(text).toMatch(/^# keep this comment\napiVersion: apiary\.dev\/v1alpha1\n/);
    expect(text).toMatch(/\n# from the cluster\nencryptedData:\n {2}a: apiary:v1:\S+ # base64\n {2}# the second one\n {2}b: apiary:v1:\S+ # trailing\n$/);
    expect(text).not.toMatch(/plain-a|plain-b|cGxhaW4tYQ==/);
    expect(parse(text)).toMatchObject({ apiVersion: 'apiary.dev/v1alpha1', encryptedData: { a: expect.any(String), b: expect.any(String) } });
    expect((await runCli(['secret', 'get', 'k8s'], { env: ws.env })).stdout).toBe('a=plain-a\nb=plain-b\n');
    expect((await runCli(['seal', path], { env: ws.env })).stdout).toContain('nothing to seal');

    // A Secret that does not validate is not sealed: nothing is written, and the error says where.
    const bad = join(ws.dir, 'bad.yaml');
    const badText = 'apiVersion: apiary.dev/v1alpha1\nkind: Secret\nmetadata: { name: bad }\nstringData:\n  a: plain-a\ndata:\n  a: cGxhaW4tYQ==\n';
    await writeFile(bad, badText);
    const refused = await runCli(['seal', bad], { env: ws.env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error: \S+bad\.yaml:7:3: data\.a: key "a" is also set in stringData; .*; nothing was sealed$/m);
    expect(await readFile(bad, 'utf8')).toBe(badText);
  });

  it('delete names the servers that use the secret; delete KEY removes one key', async () => {
    const ws = await workspace();
    await runCli(['secret', 'set', 'github', 'token'], { env: ws.env, input: 'v1' });
    await runCli(['secret', 'set', 'github', 'extra'], { env: ws.env, input: 'v2' });
    await writeFile(join(ws.dir, 'server.yaml'), SERVER);
    const delKey = await runCli(['secret', 'delete', 'github', 'extra'], { env: ws.env });
    expect(delKey.stdout).toContain('secret/github key "extra" deleted');
    expect((await runCli(['secret', 'get', 'github'], { env: ws.env })).stdout).toBe('token=v1\n');
    const del = await runCli(['secret', 'delete', 'github'], { env: ws.env });
    expect(del.code).toBe(0);
    expect(del.stderr).toContain(
      'warning: secret "github" is used by mcpserver/github: running servers keep running, but cannot start or restart until the secret is back',
    );
    expect(await readdir(ws.dir)).toEqual(['server.yaml']);
    expect((await runCli(['secret', 'delete', 'github'], { env: ws.env })).code).toBe(1);
  });

  it('a sealed value moved under another secret refuses to decrypt', async () => {
    const ws = await workspace();
    await runCli(['secret', 'set', 'github', 'token'], { env: ws.env, input: 'moved-value' });
    const text = await readFile(join(ws.dir, 'secret-github.yaml'), 'utf8');
    await writeFile(join(ws.dir, 'secret-github.yaml'), text.replace('name: github', 'name: gitlab'));
    const r = await runCli(['secret', 'get', 'gitlab', 'token'], { env: ws.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'error: secret "gitlab" key "token" failed to decrypt: the value was altered, or was sealed for another secret name or key\n',
    );
  });

  it('20 concurrent `secret set` on one secret keep all 20 keys', async () => {
    const ws = await workspace();
    const runs = Array.from({ length: 20 }, (_, i) => runCli(['secret', 'set', 'shared', `key${i}`], { env: ws.env, input: `value-${i}` }));
    const results = await Promise.all(runs);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const files = (await readdir(ws.dir)).filter((f) => !f.startsWith('.'));
    expect(files).toEqual(['secret-shared.yaml']);
    const doc = parse(await readFile(join(ws.dir, 'secret-shared.yaml'), 'utf8')) as { encryptedData: Record<string, string> };
    expect(Object.keys(doc.encryptedData).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `key${i}`).sort());
    const all = (await runCli(['secret', 'get', 'shared'], { env: ws.env })).stdout.trim().split('\n').sort();
    expect(all).toEqual(Array.from({ length: 20 }, (_, i) => `key${i}=value-${i}`).sort());
  }, 60_000);

  it('a writer killed with SIGKILL at random points leaves the old or the new file, 50 times', async () => {
    const ws = await workspace();
    await runCli(['secret', 'set', 'victim', 'base'], { env: ws.env, input: 'base-value' });
    const path = join(ws.dir, 'secret-victim.yaml');
    const writer = (key: string): { exited: Promise<unknown>; kill: () => void } => {
      const child = spawn(BIN, ['secret', 'set', 'victim', key], { env: { ...process.env, ...ws.env }, stdio: ['pipe', 'ignore', 'ignore'] });
      child.stdin.end('x'.repeat(20_000));
      return { exited: new Promise((resolve) => child.on('exit', resolve)), kill: () => child.kill('SIGKILL') };
    };
    // Kill points sweep twice as long as a whole write takes on this machine right now
    // (timed with the same command), so early ones land before the rename and late ones after.
    const timed = Date.now();
    await writer('timing').exited;
    const span = 2 * (Date.now() - timed);
    const outcomes = { old: 0, new: 0 };
    let known = new Set(['base', 'timing']);
    for (let i = 0; i < 50; i++) {
      const child = writer(`k${i}`);
      await new Promise((resolve) => setTimeout(resolve, ((i + Math.random()) / 50) * span));
      child.kill();
      await child.exited;
      // The directory lock is a kernel lock: a writer killed while holding it leaves nothing to wait for.
      expect(isLocked(manifestLockFile(ws.dir))).toBe(false);
      const docs = parseAllDocuments(await readFile(path, 'utf8'));
      expect(Array.isArray(docs) && docs.every((d) => d.errors.length === 0)).toBe(true);
      const keys = new Set(Object.keys((parse(await readFile(path, 'utf8')) as { encryptedData: object }).encryptedData));
      const added = [...keys].filter((k) => !known.has(k));
      expect(added.length <= 1 && [...known].every((k) => keys.has(k))).toBe(true);
      outcomes[added.length === 1 ? 'new' : 'old']++;
      known = keys;
    }
    // Both outcomes must occur, or the kill points did not cover the write.
    expect(outcomes.old, JSON.stringify(outcomes)).toBeGreaterThan(0);
    expect(outcomes.new, JSON.stringify(outcomes)).toBeGreaterThan(0);
    // The next write sweeps the temp files that killed writers left behind.
    expect((await runCli(['secret', 'set', 'victim', 'final'], { env: ws.env, input: 'v' })).code).toBe(0);
    expect((await readdir(ws.dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 120_000);
});

describe.skipIf(!script.available)('secret set on a terminal', () => {
  it('prompts without echoing the value (driven through a pseudo-terminal)', async () => {
    const ws = await workspace();
    const env = { ...process.env, ...ws.env, NO_COLOR: '1' };
    const child = spawn('script', ['-qfec', `${BIN} secret set github token`, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await waitFor('the hidden-input prompt', () => output.includes('input hidden'), 10_000, { intervalMs: 50, observe: () => output });
    expect(output).toContain('Value for github/token (input hidden): ');
    child.stdin.write('tty-typed-valuX\u007fe\r');
    expect(await exited).toBe(0);
    expect(output).not.toContain('tty-typed');
    expect((await runCli(['secret', 'get', 'github', 'token'], { env: ws.env })).stdout).toBe('tty-typed-value\n');
  });
});

describe('secret set on an existing sealed secret', () => {
  it('adds or rotates one line and leaves every other byte of the document as written', async () => {
    const ws = await workspace();
    await runCli(['secret', 'set', 'github', 'token'], { env: ws.env, input: 'first' });
    const path = join(ws.dir, 'secret-github.yaml');
    const sealedLine = (await readFile(path, 'utf8')).split('\n').find((l) => l.includes('token:'))!;
    const original = `# team secret, do not edit by hand\napiVersion: apiary.dev/v1alpha1\nkind: Secret\nmetadata: { name: github }   # flow style\nencryptedData:\n${sealedLine}   # rotated quarterly\n`;
    await writeFile(path, original);
    await runCli(['secret', 'set', 'github', 'user'], { env: ws.env, input: 'octocat' });
    const added = await readFile(path, 'utf8');
    expect(added.startsWith(original)).toBe(true);
    expect(added.slice(original.length)).toMatch(/^ {2}user: apiary:v1:[0-9a-f]{8}:[A-Za-z0-9_-]+\n$/);
    await runCli(['secret', 'set', 'github', 'token'], { env: ws.env, input: 'second' });
    const rotated = await readFile(path, 'utf8');
    expect(rotated.split('\n').filter((l, i) => l !== added.split('\n')[i])).toHaveLength(1);
    expect(rotated).toContain('   # rotated quarterly\n');
    expect((await runCli(['secret', 'get', 'github'], { env: ws.env })).stdout).toBe('token=second\nuser=octocat\n');
  });
});

/** Is the kernel lock on `file` held by anyone (this process included)? */
function isLocked(file: string): boolean {
  const fd = openSync(file, 'a');
  try {
    if (!tryLock(fd)) return true;
    unlock(fd);
    return false;
  } finally {
    closeSync(fd);
  }
}
