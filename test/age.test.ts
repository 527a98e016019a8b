/**
 * Values sealed for a team (issue 14): age recipients from the manifest
 * directory's `recipients` file, each machine's identity its own, the
 * secret's name and key bound inside what is encrypted. Interoperability is
 * checked with the real `age` command (Debian's, installed by .ci/run).
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { findCondition, type SecretStatus } from '../src/api/status.js';
import { generateIdentity, parseRecipients, recipientCount, recipientOf } from '../src/crypto/age.js';
import { runCli } from './helpers/cli.js';
import { harness, tinyServer } from './helpers/controller.js';
import { workspace } from './helpers/tmp.js';
import { needsAge } from './helpers/tools.js';

/** The real age and age-keygen check what apiary writes (skipped without them, saying how to install them). */
const age = needsAge();

const run = promisify(execFile);

/** A workspace whose machine has an identity, listed (with others) in the recipients file. */
async function team(others: string[] = []): Promise<{ ws: Awaited<ReturnType<typeof workspace>>; me: string }> {
  const ws = await workspace();
  await mkdir(ws.dir, { recursive: true });
  const exported = await runCli(['key', 'export-public'], { env: ws.env });
  expect(exported.code, exported.stderr).toBe(0);
  const me = exported.stdout.trim();
  await writeFile(join(ws.dir, 'recipients'), `# who may open these values\n${me}  # this machine\n${others.map((r) => `${r}\n`).join('')}`);
  return { ws, me };
}

function sealedToken(text: string, key: string): string {
  const token = new RegExp(`${key}: (apiary:v[12]:\\S+)`).exec(text)?.[1];
  if (token === undefined) throw new Error(`no sealed ${key} in ${text}`);
  return token;
}

describe('values sealed to age recipients', () => {
  it.skipIf(!age.available)('key export-public creates this machine\'s identity once (owner-only beside the key file) and prints its recipient', async () => {
    const ws = await workspace();
    const first = await runCli(['key', 'export-public'], { env: ws.env });
    expect(first.stdout).toMatch(/^age1[02-9ac-hj-np-z]{58}\n$/);
    expect(first.stderr).toContain(`created this machine's age identity in the ${ws.keyFile}.age`);
    expect((await stat(`${ws.keyFile}.age`)).mode & 0o777).toBe(0o600);
    const again = await runCli(['key', 'export-public'], { env: ws.env });
    expect(again.stdout).toBe(first.stdout);
    expect(again.stderr).toBe('');
    // The real age reads the identity file apiary wrote, and agrees on the recipient.
    const { stdout } = await run('age-keygen', ['-y', `${ws.keyFile}.age`]);
    expect(stdout).toBe(first.stdout);
  });

  it.skipIf(!age.available)('secret set seals to every recipient; the real age opens it and shows the bound secret name and key', async () => {
    const theirs = await generateIdentity();
    const { ws } = await team([await recipientOf(theirs)]);
    const set = await runCli(['secret', 'set', 'github', 'token'], { env: ws.env, input: 'ghp-team-value' });
    expect(set.code, set.stderr).toBe(0);
    const token = sealedToken(await readFile(join(ws.dir, 'secret-github.yaml'), 'utf8'), 'token');
    expect(token.startsWith('apiary:v2:')).toBe(true);
    expect(recipientCount(token)).toBe(2);
    const file = join(ws.root, 'value.age');
    await writeFile(file, Buffer.from(token.slice('apiary:v2:'.length), 'base64url'));
    const { stdout } = await run('age', ['-d', '-i', `${ws.keyFile}.age`, file]);
    expect(stdout).toBe('apiary.dev/sealed-value: v2\nsecret: github\nkey: token\n\nghp-team-value');
    // The other member opens it with their own identity (from the environment, as a CI pipeline would).
    const got = await runCli(['secret', 'get', 'github', 'token'], { env: { ...ws.env, APIARY_AGE_IDENTITY: theirs } });
    expect(got.stdout).toBe('ghp-team-value\n');
    expect((await runCli(['secret', 'get', 'github', 'token'], { env: ws.env })).stdout).toBe('ghp-team-value\n');
  });

  it('a value not sealed for this machine says for how many it is, who this machine is, and the way out', async () => {
    const { ws } = await team();
    await runCli(['secret', 'set', 'github', 'token'], { env: ws.env, input: 'v' });
    const stranger = await generateIdentity();
    const got = await runCli(['secret', 'get', 'github', 'token'], { env: { ...ws.env, APIARY_AGE_IDENTITY: stranger } });
    expect(got.code).toBe(1);
    const them = await recipientOf(stranger);
    expect(got.stderr).toBe(`error: secret "github" key "token" is sealed for 1 recipient, none of them this machine (${them})\n  Ask a member to add you: apiary recipients add ${them} (it reseals every value for you too).\n`);
  });

  it('a value moved to another secret or key is refused', async () => {
    const { ws } = await team();
    await runCli(['secret', 'set', 'github', 'token'], { env: ws.env, input: 'v1' });
    await runCli(['secret', 'set', 'github', 'other'], { env: ws.env, input: 'v2' });
    const path = join(ws.dir, 'secret-github.yaml');
    const text = await readFile(path, 'utf8');
    const [token, other] = [sealedToken(text, 'token'), sealedToken(text, 'other')];
    await writeFile(path, text.replace(token, 'SWAP').replace(other, token).replace('SWAP', other));
    const got = await runCli(['secret', 'get', 'github', 'token'], { env: ws.env });
    expect(got.code).toBe(1);
    expect(got.stderr).toContain('error: secret "github" key "token" holds a value sealed for secret "github" key "other"; a value cannot be moved to another secret or key');
  });

  it('apiary:v1 values keep opening beside apiary:v2 ones in the same secret', async () => {
    const ws = await workspace();
    await mkdir(ws.dir, { recursive: true });
    await runCli(['secret', 'set', 'mixed', 'old'], { env: ws.env, input: 'from-v1' });
    expect(await readFile(join(ws.dir, 'secret-mixed.yaml'), 'utf8')).toContain('old: apiary:v1:');
    const me = (await runCli(['key', 'export-public'], { env: ws.env })).stdout.trim();
    await writeFile(join(ws.dir, 'recipients'), `${me}\n`);
    await runCli(['secret', 'set', 'mixed', 'new'], { env: ws.env, input: 'from-v2' });
    expect(await readFile(join(ws.dir, 'secret-mixed.yaml'), 'utf8')).toContain('new: apiary:v2:');
    expect((await runCli(['secret', 'get', 'mixed'], { env: ws.env })).stdout).toBe('new=from-v2\nold=from-v1\n');
  });

  it('a server whose secret is not sealed for this machine is Stuck with SecretDecryptFailed, saying why', async () => {
    const h = await harness();
    await mkdir(h.dir, { recursive: true });
    const other = await recipientOf(await generateIdentity());
    await writeFile(join(h.dir, 'recipients'), `${other}\n`);
    expect((await runCli(['secret', 'set', 'api', 'token'], { env: h.env, input: 'v' })).code).toBe(0);
    await h.write('a.yaml', tinyServer('a', h, { env: '    - name: TOKEN\n      valueFrom:\n        secretKeyRef: { name: api, key: token }\n' }));
    await runCli(['key', 'export-public'], { env: h.env });
    await h.start();
    const stuck = await h.waitFor('Stuck', async () => {
      const s = await h.status('a');
      return s?.phase === 'Stuck' && s;
    });
    expect(findCondition(stuck.conditions, 'Ready')?.reason).toBe('SecretDecryptFailed');
    expect(stuck.message).toContain('is sealed for 1 recipient, none of them this machine (age1');
    const secret = (await h.view()).objects.find((o) => o.kind === 'Secret' && o.name === 'api')?.object.status as SecretStatus;
    expect(findCondition(secret.conditions, 'Ready')?.reason).toBe('SecretDecryptFailed');
  });

  it('the recipients file: comments and blank lines allowed; a bad line is named by file and line; a private identity is refused with a warning', async () => {
    const a = await recipientOf(await generateIdentity());
    expect(parseRecipients(`# team\n\n${a} # alice\n${a}\n`, 'recipients')).toEqual([a]);
    expect(() => parseRecipients(`${a}\nage1nope\n`, 'manifests/recipients')).toThrow('manifests/recipients:2:1: not an age recipient (age1...)');
    const identity = await generateIdentity();
    expect(() => parseRecipients(`${identity}\n`, 'recipients')).toThrow('this is a private identity: never put it in recipients');
    expect(() => parseRecipients('# nobody\n', 'recipients')).toThrow('lists no recipient');
  });
});

describe('reseal and rotate: every file or none, nothing lost', () => {
  it('a member removed and the directory resealed cannot open the new values; the others can; comments stay; apiary:v1 values are upgraded', async () => {
    const [b, c] = [await generateIdentity(), await generateIdentity()];
    const { ws, me } = await team([await recipientOf(b), `${await recipientOf(c)} # carol, leaving`]);
    await runCli(['secret', 'set', 'api', 'token'], { env: ws.env, input: 'team-value' });
    await writeFile(join(ws.dir, 'legacy.yaml'), '# an old secret, sealed before the team had recipients\napiVersion: apiary.dev/v1alpha1\nkind: Secret\nmetadata:\n  name: legacy\nencryptedData:\n  k: PLACEHOLDER # inline comment\n');
    const { KeyStore } = await import('../src/crypto/keys.js');
    const { seal } = await import('../src/crypto/seal.js');
    const master = await new KeyStore({ env: ws.env }).get();
    await writeFile(join(ws.dir, 'legacy.yaml'), (await readFile(join(ws.dir, 'legacy.yaml'), 'utf8')).replace('PLACEHOLDER', seal(master, 'legacy', 'k', 'legacy-value')));
    expect((await runCli(['secret', 'get', 'api', 'token'], { env: { ...ws.env, APIARY_AGE_IDENTITY: c } })).stdout).toBe('team-value\n');

    await writeFile(join(ws.dir, 'recipients'), `${me}\n${await recipientOf(b)}\n`);
    const resealed = await runCli(['secret', 'reseal'], { env: ws.env });
    expect(resealed.code, resealed.stderr).toBe(0);
    expect(resealed.stdout).toMatch(/legacy\.yaml: 1 value\(s\) resealed for 2 recipient\(s\) \(1 upgraded from apiary:v1\)\n/);
    expect(resealed.stdout).toMatch(/secret-api\.yaml: 1 value\(s\) resealed for 2 recipient\(s\)\n/);
    const legacy = await readFile(join(ws.dir, 'legacy.yaml'), 'utf8');
    expect(legacy.startsWith('# an old secret, sealed before the team had recipients\n')).toBe(true);
    expect(legacy).toMatch(/ {2}k: apiary:v2:\S+ # inline comment\n$/);
    const carol = await runCli(['secret', 'get', 'api', 'token'], { env: { ...ws.env, APIARY_AGE_IDENTITY: c } });
    expect(carol.code).toBe(1);
    expect(carol.stderr).toContain('is sealed for 2 recipients, none of them this machine');
    expect((await runCli(['secret', 'get', 'api', 'token'], { env: { ...ws.env, APIARY_AGE_IDENTITY: b } })).stdout).toBe('team-value\n');
    expect((await runCli(['secret', 'get', 'legacy', 'k'], { env: { ...ws.env, APIARY_AGE_IDENTITY: b } })).stdout).toBe('legacy-value\n');
  });

  it('a value that cannot be opened here stops the reseal before any file is written', async () => {
    const { ws } = await team();
    await runCli(['secret', 'set', 'mine', 'k'], { env: ws.env, input: 'mine' });
    const before = await readFile(join(ws.dir, 'secret-mine.yaml'), 'utf8');
    const stranger = await recipientOf(await generateIdentity());
    await writeFile(join(ws.dir, 'recipients'), `${stranger}\n`);
    await runCli(['secret', 'set', 'theirs', 'k'], { env: ws.env, input: 'theirs' });
    await writeFile(join(ws.dir, 'recipients'), `${stranger}\n${(await runCli(['key', 'export-public'], { env: ws.env })).stdout}`);
    const resealed = await runCli(['secret', 'reseal'], { env: ws.env });
    expect(resealed.code).toBe(1);
    expect(resealed.stderr).toContain('none of them this machine');
    expect(resealed.stderr).toContain('nothing was resealed');
    expect(await readFile(join(ws.dir, 'secret-mine.yaml'), 'utf8')).toBe(before);
  });

  it('a committed rewrite that was interrupted blocks other writers until a reseal finishes it', async () => {
    const { ws } = await team();
    await runCli(['secret', 'set', 'api', 'k'], { env: ws.env, input: 'one' });
    const path = join(ws.dir, 'secret-api.yaml');
    const staged = join(ws.dir, '.secret-api.yaml.0badcafe.apiary-staged');
    await writeFile(staged, (await readFile(path, 'utf8')).replace('# Created', '# Staged by an interrupted run. Created'), { mode: 0o600 });
    await writeFile(join(ws.dir, '.apiary-transaction.json'), JSON.stringify({ operation: 'reseal', files: [{ target: 'secret-api.yaml', staged: '.secret-api.yaml.0badcafe.apiary-staged' }] }));
    const blocked = await runCli(['secret', 'set', 'api', 'other'], { env: ws.env, input: 'two' });
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toContain(`error: an interrupted reseal of ${ws.dir} is not finished; nothing was written`);
    const finished = await runCli(['secret', 'reseal'], { env: ws.env });
    expect(finished.stdout).toBe(`finished an interrupted reseal of ${ws.dir} (1 file(s) put in place); nothing else was done\n`);
    expect(await readFile(path, 'utf8')).toContain('# Staged by an interrupted run.');
    expect((await runCli(['secret', 'set', 'api', 'other'], { env: ws.env, input: 'two' })).code).toBe(0);
  });

  it('key rotate killed with SIGKILL at random points over 50 secrets, then run again: every value opens, none lost', async () => {
    const { ws } = await team();
    const values = new Map<string, string>();
    for (let i = 0; i < 50; i++) {
      const name = `s${String(i).padStart(2, '0')}`;
      values.set(name, `value-${i}-${Math.random().toString(36).slice(2)}`);
      await writeFile(join(ws.dir, `${name}.yaml`), `# secret ${i}\napiVersion: apiary.dev/v1alpha1\nkind: Secret\nmetadata:\n  name: ${name}\nstringData:\n  v: ${JSON.stringify(values.get(name))}\n`);
    }
    expect((await runCli(['seal', ...[...values.keys()].map((n) => join(ws.dir, `${n}.yaml`))], { env: ws.env })).code).toBe(0);
    const { KeyStore } = await import('../src/crypto/keys.js');
    const { loadDirectory } = await import('../src/manifests/loader.js');
    const { openSecret } = await import('../src/crypto/secret-data.js');
    /** Every value, opened with what this machine has now (its identity, and one a rotation staged). */
    const openAll = async (): Promise<Map<string, string>> => {
      const keys = new KeyStore({ env: ws.env });
      const opened = new Map<string, string>();
      for (const r of (await loadDirectory(ws.dir)).resources) {
        if (r.kind !== 'Secret') continue;
        const entry = (await openSecret(r, keys)).get('v')!;
        if (entry.value === undefined) throw new Error(`${r.name}: ${entry.error?.message}`);
        opened.set(r.name, entry.value.reveal());
      }
      return opened;
    };
    const outcomes: string[] = [];
    const { spawn } = await import('node:child_process');
    const { BIN } = await import('./helpers/cli.js');
    // Each step of the rewrite (50 staged files, the commit, 51 renames) pauses 5 ms, so that kills spread
    // over the whole run land inside it; one full run first, to know how long that is here.
    const slow = { ...process.env, ...ws.env, NO_COLOR: '1', APIARY_TEST_STEP_PAUSE_MS: '5' };
    const started = Date.now();
    const full = spawn(BIN, ['key', 'rotate'], { env: slow, stdio: 'ignore' });
    expect(await new Promise<number | null>((resolve) => full.on('exit', (code) => resolve(code)))).toBe(0);
    const runMs = Date.now() - started;
    for (let round = 0; round < 12; round++) {
      const child = spawn(BIN, ['key', 'rotate'], { env: slow, stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      await new Promise((r) => setTimeout(r, runMs * (0.3 + Math.random() * 0.75)));
      child.kill('SIGKILL');
      const code = await exited;
      // Between the kill and the next run: every value still opens here (old files with the old identity, new ones with the staged).
      expect(await openAll()).toEqual(values);
      const again = await runCli(['key', 'rotate'], { env: ws.env, timeoutMs: 60_000 });
      expect(again.code, again.stderr).toBe(0);
      outcomes.push(code === 0 ? 'completed before the kill' : again.stdout.startsWith('finished an interrupted') ? 'killed after commit: finished' : again.stderr.includes('dropped') ? 'killed before commit: dropped, rotated anew' : 'killed before staging: rotated anew');
      expect(await openAll()).toEqual(values);
      // No identity is left staged once a run has ended.
      const { stat: statFile } = await import('node:fs/promises');
      expect(await statFile(`${ws.keyFile}.age.next`).then(() => true, () => false)).toBe(false);
    }
    console.info(`rotation kills (a full run: ${runMs} ms): ${outcomes.join('; ')}`);
    // This machine's current recipient is the only one in the file, and the one the values are sealed for.
    const me = (await runCli(['key', 'export-public'], { env: ws.env })).stdout.trim();
    expect((await readFile(join(ws.dir, 'recipients'), 'utf8')).split('\n').filter((l) => l.startsWith('age1'))[0]).toContain(me);
  }, 180_000);
});

describe('a team: two machines run one directory, a third is added and removed with one command each', () => {
  it.skipIf(!age.available)('recipients add / remove reseal in the same step; validate --decrypt tells each machine (and a pipeline) whether every value opens', async () => {
    // Machine A: this workspace. Machine B: its own identity file. Machine C: an identity given by the environment (a pipeline).
    const ws = await workspace();
    await mkdir(ws.dir, { recursive: true });
    const a = (await runCli(['key', 'export-public'], { env: ws.env })).stdout.trim();
    expect((await runCli(['recipients', 'add', a, '--comment', 'machine a'], { env: ws.env })).code).toBe(0);
    const bFile = join(ws.root, 'b.identity');
    await run('age-keygen', ['-o', bFile]);
    const b = (await run('age-keygen', ['-y', bFile])).stdout.trim();
    const added = await runCli(['recipients', 'add', b, '--comment', 'machine b'], { env: ws.env });
    expect(added.code, added.stderr).toBe(0);
    await runCli(['secret', 'set', 'api', 'token'], { env: ws.env, input: 'shared-value' });
    const envB = { ...ws.env, APIARY_AGE_IDENTITY_FILE: bFile };
    for (const env of [ws.env, envB]) expect((await runCli(['validate', '--decrypt'], { env })).stderr).toContain('every sealed value opens here');

    const c = await generateIdentity();
    const envC = { ...ws.env, APIARY_AGE_IDENTITY: c };
    const closed = await runCli(['validate', '--decrypt'], { env: envC });
    expect(closed.code).toBe(1);
    expect(closed.stdout).toMatch(/secret-api\.yaml:\d+:1: secret "api" key "token" is sealed for 2 recipients, none of them this machine/);

    const joined = await runCli(['recipients', 'add', await recipientOf(c), '--comment', 'ci'], { env: envB });
    expect(joined.code, joined.stderr).toBe(0);
    expect(joined.stdout).toMatch(/secret-api\.yaml: 1 value\(s\) resealed for 3 recipient\(s\)\n/);
    expect((await runCli(['secret', 'get', 'api', 'token'], { env: envC })).stdout).toBe('shared-value\n');
    expect((await runCli(['recipients', 'list'], { env: envC })).stdout).toBe(`${a}\n${b}\n${await recipientOf(c)}  (this machine)\n`);

    const left = await runCli(['recipients', 'remove', 'ci'], { env: ws.env });
    expect(left.code, left.stderr).toBe(0);
    expect((await runCli(['validate', '--decrypt'], { env: envC })).code).toBe(1);
    for (const env of [ws.env, envB]) expect((await runCli(['secret', 'get', 'api', 'token'], { env })).stdout).toBe('shared-value\n');
    expect(await readFile(join(ws.dir, 'recipients'), 'utf8')).toBe(`# Who may open the values sealed in this directory: one age recipient per line.\n${a}  # machine a\n${b}  # machine b\n`);
  });

  it('a controller on the second machine runs a server with the value sealed on the first', async () => {
    const h = await harness();
    await mkdir(h.dir, { recursive: true });
    const a = (await runCli(['key', 'export-public'], { env: h.env })).stdout.trim();
    await runCli(['recipients', 'add', a], { env: h.env });
    const b = await generateIdentity();
    await runCli(['recipients', 'add', await recipientOf(b), '--comment', 'machine b'], { env: h.env });
    await runCli(['secret', 'set', 'api', 'token'], { env: h.env, input: 'sealed-on-a' });
    await h.write('s.yaml', tinyServer('s', h, { hash: ['TOKEN'], env: '    - name: TOKEN\n      valueFrom:\n        secretKeyRef: { name: api, key: token }\n' }));
    // Machine b: no master key file of its own, its identity from the environment (as a pipeline gives it).
    const { KeyStore } = await import('../src/crypto/keys.js');
    await h.start({}, { keys: new KeyStore({ env: { APIARY_KEY_FILE: join(h.dir, '..', 'b-has-no-key-file'), APIARY_AGE_IDENTITY: b } }) });
    const pid = await h.waitFor('s running', async () => {
      const s = await h.status('s');
      return s?.phase === 'Running' && s.pid;
    });
    const { createHash } = await import('node:crypto');
    expect((await h.report('s', pid)).hashes['TOKEN']).toBe(createHash('sha256').update('sealed-on-a').digest('hex'));
  });

  it('the first recipient must be this machine; the last one cannot be removed', async () => {
    const ws = await workspace();
    await mkdir(ws.dir, { recursive: true });
    const other = await recipientOf(await generateIdentity());
    const first = await runCli(['recipients', 'add', other], { env: ws.env });
    expect(first.code).toBe(2);
    expect(first.stderr).toContain('the directory has no recipients file yet, and');
    const me = (await runCli(['key', 'export-public'], { env: ws.env })).stdout.trim();
    await runCli(['recipients', 'add', me], { env: ws.env });
    const last = await runCli(['recipients', 'remove', me], { env: ws.env });
    expect(last.code).toBe(2);
    expect(last.stderr).toContain('would leave no one to open the values');
  });
});
