/**
 * Against the real OS keyring. .ci/run starts a private D-Bus session with an
 * unlocked gnome-keyring; in CI these tests must run, elsewhere they are
 * skipped when no Secret Service answers, saying how to get one.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { osKeyring } from '../src/crypto/keyring.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { INSTALL, requireTool } from './helpers/tools.js';

async function keyringWorks(): Promise<boolean> {
  try {
    await osKeyring.set('apiary-probe', 'probe', 'x');
    return (await osKeyring.get('apiary-probe', 'probe')) === 'x';
  } catch {
    return false;
  }
}

const works = await keyringWorks();
const { available } = requireTool('a Secret Service (gnome-keyring)', INSTALL.secretService, () => works);

describe.skipIf(!available)('the real OS keyring', () => {
  it('a key created in one process is read back by another', async () => {
    const env = { APIARY_KEYRING_ACCOUNT: `test-${randomBytes(4).toString('hex')}`, APIARY_KEY_FILE: '' };
    const dir = await tempDir();
    const init = await runCli(['key', 'init', '--dir', dir], { env });
    expect(init.code).toBe(0);
    const id = /created key ([0-9a-f]{8}) in the OS keyring/.exec(init.stdout)?.[1];
    expect(id).toMatch(/^[0-9a-f]{8}$/);

    const status = await runCli(['key', 'status', '-o', 'json', '--dir', dir], { env });
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ backend: 'keyring', keyId: id, service: 'apiary', account: env.APIARY_KEYRING_ACCOUNT });

    const again = await runCli(['key', 'init', '--dir', dir], { env });
    expect(again.stdout).toContain(`key ${id} already exists`);
  });

  it('secret set seals with the keyring key and secret get reads it in a new process', async () => {
    const env = { APIARY_KEYRING_ACCOUNT: `test-${randomBytes(4).toString('hex')}`, APIARY_KEY_FILE: '' };
    const dir = await tempDir();
    const set = await runCli(['secret', 'set', 'github', 'token', '--dir', dir], { env, input: 'ghp_from_keyring\n' });
    expect(set.code, set.stderr).toBe(0);
    const get = await runCli(['secret', 'get', 'github', 'token', '--dir', dir], { env });
    expect(get.stdout).toBe('ghp_from_keyring\n');
  });

  it('this machine\'s age identity lives in the keyring too; a rotation there stages the new one beside it and promotes it', async () => {
    const env = { APIARY_KEYRING_ACCOUNT: `test-${randomBytes(4).toString('hex')}`, APIARY_KEY_FILE: '' };
    const dir = await tempDir();
    const exported = await runCli(['key', 'export-public', '--dir', dir], { env });
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stderr).toContain(`created this machine's age identity in the OS keyring, service "apiary", account "${env.APIARY_KEYRING_ACCOUNT}-age-identity"`);
    const me = exported.stdout.trim();
    expect((await runCli(['recipients', 'add', me, '--dir', dir], { env })).code).toBe(0);
    expect((await runCli(['secret', 'set', 'api', 'token', '--dir', dir], { env, input: 'through-the-keyring' })).code).toBe(0);
    const rotated = await runCli(['key', 'rotate', '--dir', dir], { env });
    expect(rotated.code, rotated.stderr).toBe(0);
    const now = (await runCli(['key', 'export-public', '--dir', dir], { env })).stdout.trim();
    expect(now).not.toBe(me);
    expect(rotated.stdout).toContain(`this machine is now ${now} (was ${me})`);
    expect((await runCli(['secret', 'get', 'api', 'token', '--dir', dir], { env })).stdout).toBe('through-the-keyring\n');
    // Nothing left staged in the keyring.
    expect(await osKeyring.get('apiary', `${env.APIARY_KEYRING_ACCOUNT}-age-identity-next`)).toBe('');
  });
});
