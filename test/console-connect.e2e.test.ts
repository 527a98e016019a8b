/**
 * The console's Connect for a hosted server that needs an OAuth login, in
 * Chromium against a real `apiary up`: oidc-provider as the authorization
 * server (its devInteractions login and consent pages), an MCP SDK server
 * that accepts only its tokens. The server is Stuck AuthorizationRequired
 * with a Connect button; a click opens the provider's login in a new tab;
 * once the login is back at apiary's loopback listener the row turns Running
 * live, with Disconnect, which on the server's page makes it Stuck again. No token reaches the
 * page. Screenshot: test-artifacts/screenshots/connect.png.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KeyStore } from '../src/crypto/keys.js';
import { StateLayout } from '../src/state/layout.js';
import { OAuthTokenStore } from '../src/state/oauth-tokens.js';
import { chromium, expectBadge, SHOTS, signIn, up, useBrowser } from './helpers/console-browser.js';
import { harness } from './helpers/controller.js';
import { logInOnPage, useHostedServer } from './helpers/oauth-as.js';

useBrowser();

describe.skipIf(!chromium.available)('Connect in the console', () => {
  const fixture = useHostedServer();

  it('logs a Stuck AuthorizationRequired server in from its row: the provider opens in a new tab, the row turns Running live; Disconnect on its page makes it Stuck again', async () => {
    const h = await harness();
    await h.write('hosted.yaml', `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: hosted\nspec:\n  remote:\n    url: ${fixture.hosted().url}\n    auth:\n      type: oauth\n`);
    const controller = await up(h);
    const page = await signIn(controller.loginUrl);
    const answers: string[] = [];
    page.on('response', (r) => {
      if (r.url().includes('/api/') && !r.url().includes('/watch')) void r.text().then((t) => answers.push(t), () => undefined);
    });
    await expectBadge(page, 'hosted', 'Stuck (AuthorizationRequired)', 30_000);
    const connectButton = page.locator('tr[data-server=hosted]').getByRole('button', { name: 'Connect hosted' });

    const [tab] = await Promise.all([page.context().waitForEvent('page'), connectButton.click()]);
    await page.getByTestId('login-waiting').waitFor();
    await tab.waitForURL((u) => u.href.startsWith(fixture.as().issuer));
    await page.screenshot({ path: join(SHOTS, 'connect.png'), fullPage: true });
    await logInOnPage(tab);
    await tab.waitForFunction(() => document.body.textContent?.includes('hosted is connected') === true);
    await expectBadge(page, 'hosted', 'Running', 30_000);
    await page.locator('tr[data-server=hosted]').getByRole('button', { name: 'Disconnect hosted' }).waitFor();
    await page.screenshot({ path: join(SHOTS, 'connect-running.png'), fullPage: true });
    expect(fixture.as().grants['authorization_code']).toBe(1);

    // The tokens are sealed in the state directory and in no answer the page got.
    const store = new OAuthTokenStore(new StateLayout(h.stateDir), () => new KeyStore({ env: { APIARY_KEY_FILE: h.keyFile } }).get());
    const grant = (await store.grant('hosted'))!;
    for (const canary of [grant.accessToken.reveal(), grant.refreshToken!.reveal()]) expect(answers.join('\n')).not.toContain(canary);

    // The server's page has them too: Disconnect there forgets the tokens and the page offers Connect again.
    await page.locator('tr[data-server=hosted] a[href="#/servers/hosted"]').click();
    const [disconnected] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/api/v1/mcpservers/hosted/disconnect')), page.locator('.page-head').getByRole('button', { name: 'Disconnect hosted' }).click()]);
    expect(await disconnected.json()).toEqual({ name: 'hosted', disconnected: true, message: 'disconnected hosted: tokens forgotten and revoked at the authorization server' });
    await page.locator('.page-head').getByRole('button', { name: 'Connect hosted' }).waitFor({ timeout: 30_000 });
    expect(await store.hasGrant('hosted')).toBe(false);
    await page.waitForFunction(() => document.querySelector('.page-head [data-testid=phase]')?.textContent === 'Stuck (AuthorizationRequired)', undefined, { timeout: 30_000, polling: 50 });
    expect(await page.locator('.page-head [data-testid=phase]').getAttribute('title')).toMatch(/needs a login: it (was disconnected|has no tokens yet)/);

    // A login refused at the provider (its Cancel): the page says why instead of waiting on.
    const [again] = await Promise.all([page.context().waitForEvent('page'), page.locator('.page-head').getByRole('button', { name: 'Connect hosted' }).click()]);
    await page.locator('.page-head').getByTestId('login-waiting').waitFor();
    await again.waitForURL((u) => u.href.startsWith(fixture.as().issuer));
    await again.getByText('[ Cancel ]').click();
    const alert = page.locator('.page-head [role=alert]');
    await alert.waitFor({ timeout: 30_000 });
    expect(await alert.textContent()).toBe('the login did not finish: the authorization server refused the login: access_denied (End-User aborted interaction)');
    expect(await page.locator('.page-head').getByTestId('login-waiting').count()).toBe(0);
  }, 120_000);
});
