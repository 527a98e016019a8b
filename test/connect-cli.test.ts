/**
 * `apiary connect NAME --no-open` and `apiary disconnect NAME`, the built CLI
 * against a real authorization server and hosted MCP server, the login done
 * in Chromium from the URL the CLI prints.
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyStore } from '../src/crypto/keys.js';
import { StateLayout } from '../src/state/layout.js';
import { OAuthTokenStore } from '../src/state/oauth-tokens.js';
import { hasChromium, launchChromium } from './helpers/browser.js';
import { BIN, runCli } from './helpers/cli.js';
import { logInAndConsent, startAuthServer, startProtectedServer, type AuthServer, type ProtectedServer } from './helpers/oauth-as.js';
import { workspace } from './helpers/tmp.js';
import { INSTALL, requireTool } from './helpers/tools.js';
import { waitFor } from './helpers/wait.js';

const chromium = requireTool('chromium', INSTALL.chromium, hasChromium);

async function allFiles(dir: string): Promise<{ path: string; text: string }[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return Promise.all(entries.filter((e) => e.isFile()).map(async (e) => ({ path: join(e.parentPath, e.name), text: await readFile(join(e.parentPath, e.name), 'utf8') })));
}

describe.skipIf(!chromium.available)('apiary connect / disconnect', () => {
  let as: AuthServer;
  let hosted: ProtectedServer;
  beforeAll(async () => {
    as = await startAuthServer({ accessTokenTtl: 60 });
    hosted = await startProtectedServer(as.issuer);
  });
  afterAll(async () => {
    await hosted?.close();
    await as?.close();
  });

  it('connect prints the login URL, finishes when the browser comes back, and leaves the tokens only sealed; disconnect revokes and forgets them', async () => {
    const ws = await workspace();
    await mkdir(ws.dir, { recursive: true });
    await writeFile(join(ws.dir, 'hosted.yaml'), `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: hosted\nspec:\n  remote:\n    url: ${hosted.url}\n    auth:\n      type: oauth\n`);
    const child = spawn(BIN, ['connect', 'hosted', '--no-open', '--timeout', '60'], { env: { ...process.env, NO_COLOR: '1', ...ws.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const url = await waitFor('the login URL printed', () => /^ {2}(http\S+)$/m.exec(stdout)?.[1], 20_000, { observe: () => ({ stdout, stderr }) });
    expect(stdout).toMatch(/^Log in to connect hosted:\n/);
    const browser = await launchChromium();
    try {
      await logInAndConsent(await browser.newPage(), url);
      expect(await exited).toBe(0);
    } finally {
      await browser.close();
    }
    const layout = new StateLayout(ws.stateDir);
    expect(stdout).toContain(`connected hosted (authorization server ${as.issuer}, the access token expires at `);
    expect(stdout).toContain(`the tokens are sealed in ${layout.oauthTokensFile('hosted')}`);

    const store = new OAuthTokenStore(layout, () => new KeyStore({ env: ws.env }).get());
    const grant = (await store.grant('hosted'))!;
    const canaries = [grant.accessToken.reveal(), grant.refreshToken!.reveal()];
    for (const file of [...(await allFiles(ws.root)), { path: 'stdout', text: stdout }, { path: 'stderr', text: stderr }]) {
      for (const canary of canaries) expect(file.text, file.path).not.toContain(canary);
    }

    const held = as.refreshTokens();
    const out = await runCli(['disconnect', 'hosted'], { env: ws.env });
    expect(out.stdout).toBe('disconnected hosted: tokens forgotten and revoked at the authorization server\n');
    expect(as.refreshTokens()).toBeLessThan(held);
    expect(await store.grant('hosted')).toBeUndefined();
    expect((await runCli(['disconnect', 'hosted'], { env: ws.env })).stdout).toBe('hosted has no tokens: nothing to forget\n');
  });

  it('connect refuses a server without spec.remote.auth, and one it cannot find, saying why', async () => {
    const ws = await workspace();
    await mkdir(ws.dir, { recursive: true });
    await writeFile(join(ws.dir, 'plain.yaml'), `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: plain\nspec:\n  remote:\n    url: ${hosted.url}\n`);
    const plain = await runCli(['connect', 'plain', '--no-open'], { env: ws.env });
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain('mcpserver "plain" does not log in with OAuth: its manifest has no spec.remote.auth');
    const absent = await runCli(['connect', 'absent', '--no-open'], { env: ws.env });
    expect(absent.code).toBe(1);
    expect(absent.stderr).toContain('mcpserver "absent" not found in');
  });
});
