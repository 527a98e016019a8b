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
  it('key export-public creates this machine\'s identity once (owner-only beside the key file) and prints its recipient', async () => {
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

  it('secret set seals to every recipient; the real age opens it and shows the bound secret name and key', async () => {
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
    expect(got.stderr).toBe(`error: secret "github" key "token" is sealed for 1 recipient, none of them this machine (${await recipientOf(stranger)})\n  Ask a member to add you to the recipients file and run \`apiary secret reseal\`.\n`);
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
