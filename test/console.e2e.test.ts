/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The console in a real Chromium (Debian's, through playwright-core) against
 * a real `apiary up` on a temporary directory: the seed's flows from the page
 * alone, without a reload, and the security rules as a browser meets them.
 * Screenshots of each page go to test-artifacts/screenshots.
 */
import { createServer } from 'node:http';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readConsoleRecord } from '../src/console/auth.js';
import { loadDirectory } from '../src/manifests/loader.js';
import { ROOT, runCli } from './helpers/cli.js';
import { badge, chromium, expectBadge, nav, SHOTS, signIn, up, useBrowser } from './helpers/console-browser.js';
import { readEvents } from './helpers/console.js';
import { filesUnder } from './helpers/tmp.js';
import { gitRepositoryYaml, testRepo } from './helpers/git.js';
import { StateLayout } from '../src/state/layout.js';
import { requestReconcile } from '../src/state/requests.js';
import { harness, isAlive, secretYaml, TINY_SERVER, tinyServer } from './helpers/controller.js';
import { needsGit } from './helpers/tools.js';

const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');
const MODERN = join(ROOT, 'test', 'fixtures', 'servers', 'modern-server.mjs');
const CANARY = 'CANARY-e2e-7d41b0';

const getBrowser = useBrowser();
const git = needsGit();

async function apiGet<T>(port: number, token: string, path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  return (await res.json()) as T;
}

describe.skipIf(!chromium.available)('the web console in Chromium', () => {
  it("does the seed's flows from the page alone, live, and never shows a value", async () => {
    const h = await harness();
    await h.write('shared.yaml', secretYaml('shared', { API_KEY: 'shared-plain-value' }));
    await h.write(
      'everything.yaml',
      `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: everything\nspec:\n  command: node\n  args: [${JSON.stringify(EVERYTHING)}, stdio]\n`,
    );
    const controller = await up(h);
    const record = (await readConsoleRecord(h.stateDir))!;
    // Everything the API streams during the test, read beside the page.
    const stopStream = new AbortController();
    const stream = readEvents(record.port, record.apiToken, '/api/v1/watch', () => false, 170_000, stopStream.signal);
    const responses: string[] = [];

    const page = await signIn(controller.loginUrl);
    page.on('response', (r) => {
      if (r.url().includes('/api/') && !r.url().includes('/watch') && !r.url().includes('follow=true')) void r.text().then((t) => responses.push(t), () => undefined);
    });
    // The token is spent and gone from the address bar.
    expect(page.url()).toBe(`${record.url}/`);
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    await expectBadge(page, 'everything', 'Running');

    // 1. Add a secret.
    await nav(page, 'Secrets');
    await page.getByRole('button', { name: 'Add secret' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name').fill('github');
    await dialog.getByLabel('Key').fill('token');
    await dialog.getByLabel('Value', { exact: true }).fill(`${CANARY}-1`);
    await page.getByRole('dialog').getByRole('button', { name: 'Add secret' }).click();
    await page.locator('tr[data-secret="github"]').waitFor();

    // 2. Install a server with one new secret and one existing.
    await nav(page, 'Install');
    await page.getByLabel('Name').fill('gh');
    await page.getByLabel('Command').fill('node');
    await page.getByLabel('Arguments, one per line').fill(TINY_SERVER);
    await page.getByRole('button', { name: 'Add a secret variable' }).click();
    await page.getByRole('button', { name: 'Add a secret variable' }).click();
    const vars = page.locator('fieldset').first().locator('.var');
    await vars.nth(0).getByLabel('Variable', { exact: true }).fill('GITHUB_TOKEN');
    await vars.nth(0).getByLabel('Value', { exact: true }).fill(`${CANARY}-2`);
    await vars.nth(1).getByLabel('Variable', { exact: true }).fill('API_KEY');
    await vars.nth(1).getByLabel('Value from').selectOption('shared/API_KEY');
    await page.getByRole('button', { name: 'Review' }).click();
    const planYaml = page.getByTestId('plan-yaml');
    await planYaml.waitFor();
    expect(await planYaml.textContent()).toContain('name: github-token');
    expect(await page.getByTestId('plan-command').textContent()).toBe(`apiary add gh --secret GITHUB_TOKEN --secret API_KEY=shared/API_KEY -- node ${TINY_SERVER}`);
    await page.screenshot({ path: join(SHOTS, 'install.png'), fullPage: true });
    await page.getByRole('button', { name: 'Install', exact: true }).click();
    await page.waitForURL(/#\/servers\/gh$/);
    await nav(page, 'Servers');
    await expectBadge(page, 'gh', 'Running');
    const first = await apiGet<{ status: { pid: number } }>(record.port, record.apiToken, '/api/v1/mcpservers/gh');

    // 3. Update a value: the server rolls to a new process.
    await nav(page, 'Secrets');
    await page.getByRole('button', { name: 'Update github-token/GITHUB_TOKEN' }).click();
    expect(await dialog.getByLabel('New value').inputValue()).toBe(''); // values never come to the page
    await dialog.getByLabel('New value').fill(`${CANARY}-3`);
    await page.getByRole('button', { name: 'Update value' }).click();
    const rolled = await h.waitFor('gh rolled', async () => {
      const o = await apiGet<{ status: { pid?: number; phase: string } }>(record.port, record.apiToken, '/api/v1/mcpservers/gh');
      return o.status.phase === 'Running' && o.status.pid !== undefined && o.status.pid !== first.status.pid ? o.status.pid : undefined;
    }, 20_000);

    // 4. Delete the in-use secret: the warning names the server; it keeps running.
    await page.getByRole('button', { name: 'Delete github-token' }).click();
    const warning = page.getByTestId('delete-warning');
    expect(await warning.textContent()).toContain('Used by gh (GITHUB_TOKEN)');
    expect(await warning.textContent()).toContain('Running servers keep running');
    await page.screenshot({ path: join(SHOTS, 'secrets-delete.png') });
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await page.locator('tr[data-secret="github-token"]').waitFor({ state: 'detached' });
    await nav(page, 'Servers');
    await page.getByRole('link', { name: 'Add secret github-token/GITHUB_TOKEN' }).waitFor();
    expect(await badge(page, 'gh').textContent()).toBe('Running');
    expect(isAlive(rolled)).toBe(true);

    // 5. A restart is refused while the secret is missing (it could not start again), and the dialog says so.
    await page.getByRole('button', { name: 'Restart gh' }).click();
    expect(await page.getByRole('dialog').textContent()).toContain('apiary keeps it running');
    await page.getByRole('button', { name: 'Cancel' }).click();
    // Stop it: it cannot start again, and the badge says why, live.
    await page.getByRole('button', { name: 'Suspend gh' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Suspend' }).click();
    await expectBadge(page, 'gh', 'Suspended');
    expect(isAlive(rolled)).toBe(false);
    await page.getByRole('button', { name: 'Resume gh' }).click();
    await expectBadge(page, 'gh', 'Stuck (SecretNotFound)');
    expect(await badge(page, 'gh').getAttribute('title')).toBe('secret "github-token" not found (needed for env GITHUB_TOKEN)');
    await page.screenshot({ path: join(SHOTS, 'servers-stuck.png') });

    // 6. Add it back from the link: the row turns Running, without a reload.
    await page.getByRole('link', { name: 'Add secret github-token/GITHUB_TOKEN' }).click();
    expect(await dialog.getByLabel('Name').inputValue()).toBe('github-token');
    expect(await dialog.getByLabel('Key').inputValue()).toBe('GITHUB_TOKEN');
    await dialog.getByLabel('Value', { exact: true }).fill(`${CANARY}-4`);
    await page.getByRole('dialog').getByRole('button', { name: 'Add secret' }).click();
    await nav(page, 'Servers');
    await expectBadge(page, 'gh', 'Running');
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    await page.screenshot({ path: join(SHOTS, 'servers.png') });

    // The other pages, for the record.
    await nav(page, 'Secrets');
    await page.locator('tr[data-secret="github-token"]').waitFor();
    await page.screenshot({ path: join(SHOTS, 'secrets.png') });
    await page.goto(`${record.url}/#/servers/everything`);
    await page.locator('.tools li').first().waitFor({ timeout: 20_000 });
    await page.screenshot({ path: join(SHOTS, 'server-detail.png'), fullPage: true });

    // No value anywhere: the DOM, every API answer, the event stream, the controller's output, the state directory.
    const dom = await page.evaluate(() => document.documentElement.outerHTML);
    stopStream.abort();
    const streamed = (await stream).raw;
    const texts = [dom, streamed, controller.output(), ...responses];
    for (const file of await filesUnder(h.stateDir)) texts.push(await readFile(file, 'utf8'));
    for (const text of texts) expect(text).not.toContain(CANARY);
    expect(responses.length).toBeGreaterThan(10);
    expect(streamed).toContain('"MODIFIED"');
    await page.context().close();
  }, 180_000);

  it('installs from the Catalog: search, the entry with every variable, the form with required marks, choices and a sealed secret', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    const home = join(h.reports, 'home');
    await mkdir(home);
    const fixtures = join(ROOT, 'test', 'fixtures', 'catalog');
    const { loginUrl } = await up(h, { HOME: home }, ['--catalog', fixtures]);
    const page = await signIn(loginUrl);
    await nav(page, 'Catalog');
    await page.locator('[data-entry="io.github.modelcontextprotocol/server-memory"]').waitFor();
    await page.screenshot({ path: join(SHOTS, 'catalog.png') });
    await page.getByLabel('Search').fill('forecast');
    await page.waitForFunction(() => document.querySelectorAll('.cards li').length === 1);
    expect(await page.locator('.cards li').textContent()).toContain('io.example/weather 2.0.0');
    // The broken fixture files are listed as skipped, with file and field.
    expect(await page.locator('details.problems').textContent()).toContain('broken.json: packages[0].transport.type');
    await page.getByRole('link', { name: 'io.example/weather' }).click();
    await page.getByRole('heading', { name: 'io.example/weather' }).waitFor();
    const rows = page.locator('table tbody tr');
    expect(await rows.count()).toBe(3);
    expect(await rows.nth(0).textContent()).toContain('WEATHER_API_KEYyesyes');
    await page.getByRole('button', { name: 'Install' }).click();
    await page.getByRole('heading', { name: 'Install io.example/weather 2.0.0' }).waitFor();
    // Required marks on what is required; the choices offered; the secret as pick-or-type.
    expect(await page.locator('[data-variable="REGION"] .required').count()).toBe(1);
    expect(await page.locator('[data-variable="REGION"] option').allTextContents()).toEqual(['choose...', 'eu', 'us']);
    await page.getByLabel('Name').fill('forecast');
    await page.getByLabel('REGION', { exact: true }).selectOption('eu');
    await page.getByLabel('CACHE_DIR', { exact: true }).fill('/var/cache/forecast');
    await page.getByLabel('WEATHER_API_KEY value').fill(`${CANARY}-catalog`);
    await page.getByRole('button', { name: 'Review' }).click();
    const planYaml = page.getByTestId('plan-yaml');
    await planYaml.waitFor();
    expect(await planYaml.textContent()).toContain('apiary.dev/catalog-name: io.example/weather');
    expect(await planYaml.textContent()).toContain('name: weather-api-key');
    expect(await planYaml.textContent()).not.toContain(CANARY);
    expect(await page.getByTestId('plan-command').textContent()).toBe('apiary install io.example/weather --version 2.0.0 --name forecast --env REGION=eu --env CACHE_DIR=/var/cache/forecast');
    await page.screenshot({ path: join(SHOTS, 'catalog-install.png'), fullPage: true });
    await page.getByRole('button', { name: 'Install', exact: true }).click();
    await page.waitForURL(/#\/servers\/forecast$/);
    const loaded = await loadDirectory(h.dir);
    const server = loaded.resources.find((r) => r.kind === 'MCPServer' && r.name === 'forecast');
    expect(server?.kind === 'MCPServer' && server.manifest.spec.env?.find((e) => e.name === 'WEATHER_API_KEY')?.valueFrom?.secretKeyRef).toEqual({ name: 'weather-api-key', key: 'WEATHER_API_KEY' });
    expect(loaded.resources.some((r) => r.kind === 'Secret' && r.name === 'weather-api-key')).toBe(true);
    for (const file of await filesUnder(h.dir)) expect(await readFile(file, 'utf8'), file).not.toContain(CANARY);

    // The Servers page writes every Ready server into a client's own file, as client config --write does.
    await nav(page, 'Servers');
    await expectBadge(page, 'a', 'Running');
    await page.getByRole('button', { name: 'Add to Cursor' }).click();
    await page.getByTestId('client-result').waitFor();
    expect(await page.getByTestId('client-result').textContent()).toBe(`${join(home, '.cursor', 'mcp.json')}: added a`);
    const cursor = JSON.parse(await readFile(join(home, '.cursor', 'mcp.json'), 'utf8')) as { mcpServers: Record<string, { url: string; headers: Record<string, string> }> };
    expect(cursor.mcpServers['a']?.headers['Authorization']).toMatch(/^Bearer /);
    await page.getByRole('button', { name: 'Remove from Cursor' }).click();
    await page.waitForFunction(() => document.querySelector('[data-testid=client-result]')?.textContent?.endsWith('removed a'));
    await expect(readFile(join(home, '.cursor', 'mcp.json'))).rejects.toThrow();
  });

  it('refuses a cross-site write from a page on another port, which finds no credential to replay', async () => {
    const h = await harness();
    const controller = await up(h);
    const record = (await readConsoleRecord(h.stateDir))!;
    const page = await signIn(controller.loginUrl);
    // The session is in this origin's sessionStorage, not in a cookie every port on 127.0.0.1 would receive.
    expect(await page.context().cookies()).toEqual([]);
    expect(await page.evaluate(() => sessionStorage.getItem('apiary.session'))).toMatch(/^[\w-]{32}$/);
    // Another origin on the same host: the same "site", and it received every cookie of the console's port.
    const evil = createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(`<script>
        window.sent = ${JSON.stringify(JSON.stringify(req.headers))};
        window.stolen = sessionStorage.getItem('apiary.session');
        const body = JSON.stringify({ name: 'evil', key: 'k', value: 'v' });
        window.results = Promise.all([
          fetch('${record.url}/api/v1/secrets', { method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json' }, body }).then((r) => r.status, (e) => 'blocked: ' + e.message),
          fetch('${record.url}/api/v1/secrets', { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'Content-Type': 'text/plain' }, body }).then((r) => r.type, (e) => 'blocked: ' + e.message),
          fetch('${record.url}/api/v1/mcpservers', { credentials: 'include' }).then((r) => r.status, (e) => 'blocked: ' + e.message),
        ]);
      </script>`);
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    try {
      const port = (evil.address() as { port: number }).port;
      await page.goto(`http://127.0.0.1:${port}/`);
      const results = await page.evaluate(() => (window as unknown as { results: Promise<unknown[]> }).results);
      // Nothing of the session reached the other port, or its page.
      expect(await page.evaluate(() => (window as unknown as { stolen: unknown }).stolen)).toBeNull();
      expect(JSON.parse(await page.evaluate(() => (window as unknown as { sent: string }).sent))).not.toHaveProperty('cookie');
      expect(String(results[0])).toMatch(/^blocked/); // the preflight is refused: no CORS headers
      // A no-cors text/plain POST is sent (with no credential: there is none to send) and refused by the server;
      // Chromium's opaque-response blocking may also turn the refusal into a network error.
      expect(String(results[1])).toMatch(/^(opaque|blocked)/);
      expect(String(results[2])).toMatch(/^blocked/); // and nothing can be read back
      expect((await loadDirectory(h.dir)).resources).toEqual([]);
    } finally {
      evil.close();
      await page.context().close();
    }
  }, 60_000);

  it('shows keyring trouble on its own screen with the reason and the way out', async () => {
    const h = await harness();
    await chmod(h.keyFile, 0o644);
    const controller = await up(h);
    const page = await signIn(controller.loginUrl);
    await nav(page, 'Secrets');
    const screen = page.getByRole('heading', { name: 'The master key cannot be used' });
    await screen.waitFor();
    const text = await page.locator('section.keyring').textContent();
    expect(text).toContain('can be read by group or others (mode 0644)');
    expect(text).toContain(`chmod 600 ${h.keyFile}`);
    await page.screenshot({ path: join(SHOTS, 'keyring.png') });
    // Signing out ends the session: the page asks for a new link, and the old token opens nothing.
    const token = await page.evaluate(() => sessionStorage.getItem('apiary.session'));
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('For a new one, run:').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('apiary.session'))).toBeNull();
    const record = (await readConsoleRecord(h.stateDir))!;
    const res = await fetch(`${record.url}/api/v1/mcpservers`, { headers: { Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(401);
    await page.context().close();
  }, 60_000);

  it('shows a disconnected banner while the controller is away, and picks up the changes when it is back', async () => {
    const h = await harness();
    const server = (suspend: boolean) => `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: a\nspec:\n  command: node\n  args: [${JSON.stringify(TINY_SERVER)}]\n${suspend ? '  suspend: true\n' : ''}`;
    await h.write('a.yaml', server(false));
    const first = await up(h);
    const page = await signIn(first.loginUrl);
    await expectBadge(page, 'a', 'Running');
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    expect(await page.getByTestId('disconnected').count()).toBe(0);
    const firstExited = new Promise((resolve) => first.child.once('exit', resolve));
    first.child.kill('SIGTERM');
    await page.getByTestId('disconnected').waitFor({ timeout: 15_000 });
    await firstExited; // its lock is released: the next up may start
    // Changed while nobody watches.
    await h.write('a.yaml', server(true));
    const second = await up(h);
    expect(new URL(second.loginUrl).port).toBe(new URL(first.loginUrl).port); // the remembered port: the open page's URL still works
    await page.getByTestId('disconnected').waitFor({ state: 'detached', timeout: 15_000 });
    await expectBadge(page, 'a', 'Suspended');
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    await page.context().close();
  }, 60_000);

  it('signs in from the link fragment past a junk cookie another local page planted; each link from apiary ui signs in once', async () => {
    const h = await harness();
    const controller = await up(h);
    const origin = new URL(controller.loginUrl).origin;
    const context = await getBrowser().newContext();
    // What any page on another 127.0.0.1 port can set for this one (cookies do not keep to a port); a longer path is sent first.
    await context.addCookies([{ name: 'apiary_session', value: 'junk', domain: '127.0.0.1', path: '/api' }]);
    const page = await context.newPage();
    await page.goto(controller.loginUrl);
    await page.waitForSelector('header nav');
    expect(page.url()).toBe(`${origin}/`);
    // The same link again, in another tab: spent.
    const again = await context.newPage();
    await again.goto(controller.loginUrl);
    await again.getByText('That login link was already used or has expired').waitFor();
    // A fresh one from apiary ui signs that tab in.
    const ui = await runCli(['ui', '--no-open'], { env: h.env });
    expect(ui.code, ui.stderr).toBe(0);
    await again.goto(ui.stdout.trim());
    await again.waitForSelector('header nav');
    await context.close();
  }, 60_000);

  it('is usable on a narrow window and in dark mode', async () => {
    const h = await harness();
    await h.write('a.yaml', `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: a\nspec:\n  command: node\n  args: [${JSON.stringify(TINY_SERVER)}]\n`);
    const controller = await up(h);
    const context = await getBrowser().newContext({ viewport: { width: 390, height: 800 }, colorScheme: 'dark' });
    const page = await context.newPage();
    await page.goto(controller.loginUrl);
    await expectBadge(page, 'a', 'Running');
    // Nothing wider than the window.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(background).toBe('rgb(22, 24, 28)');
    // Every control has a name a screen reader can say.
    const unnamed = await page.evaluate(() =>
      [...document.querySelectorAll('button, input, select, textarea, a')].filter((el) => !(el.getAttribute('aria-label') || el.textContent?.trim() || (el as HTMLInputElement).labels?.length)).map((el) => el.outerHTML),
    );
    expect(unnamed).toEqual([]);
    // Keyboard: a focused action opens its dialog with Enter, and Escape closes it.
    await page.getByRole('button', { name: 'Suspend a' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    await page.screenshot({ path: join(SHOTS, 'servers-narrow-dark.png') });
    await writeFile(join(SHOTS, '.gitkeep'), '');
    await context.close();
  }, 60_000);

  it("a server's detail says which protocol apiary speaks to it", async () => {
    const h = await harness();
    await h.write('modern.yaml', `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: modern\nspec:\n  command: node\n  args: [${JSON.stringify(MODERN)}]\n`);
    const { loginUrl } = await up(h);
    const page = await signIn(loginUrl);
    await expectBadge(page, 'modern', 'Running');
    await page.goto(`${new URL(loginUrl).origin}/#/servers/modern`);
    const protocol = page.getByTestId('protocol');
    await protocol.waitFor();
    expect(await protocol.textContent()).toBe('2026-07-28');
    await page.context().close();
  }, 60_000);

  it.skipIf(!git.available)('following git: the servers page names the repository and revision, a server its revision, and a bad commit shows why it is not applied', async () => {
    const h = await harness();
    const repo = await testRepo();
    const first = await repo.commit({ 'servers/tools.yaml': tinyServer('tools', h), 'servers/notes.yaml': tinyServer('notes', h) });
    await h.write('source.yaml', gitRepositoryYaml(repo.url, { path: 'servers', interval: '1h' }));
    const { loginUrl } = await up(h);
    const page = await signIn(loginUrl);
    await expectBadge(page, 'tools', 'Running');
    const line = page.getByTestId('source-line');
    await line.waitFor();
    expect(await line.textContent()).toContain(`Following ${repo.url} at main@sha1:${first}`);
    // Changes are commits: no suspend, delete or install from the page; restart stays.
    expect(await page.getByRole('button', { name: 'Suspend tools' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Restart tools' }).count()).toBe(1);
    expect(await page.getByRole('link', { name: 'Install a server' }).count()).toBe(0);

    const bad = await repo.commit({ 'servers/broken.yaml': 'apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: broken\nspec:\n  command: node\n  port: nope\n' });
    await requestReconcile(new StateLayout(h.stateDir));
    await page.waitForFunction(() => document.querySelector('[data-testid=source-line]')?.classList.contains('warn') === true, undefined, { timeout: 15_000 });
    const text = await line.textContent();
    expect(text).toContain(`revision main@sha1:${bad} is not applied: servers/broken.yaml:7:9: spec.port`);
    expect(text).toContain(`Following ${repo.url} at main@sha1:${first}`);
    await page.screenshot({ path: join(SHOTS, 'servers-git.png') });

    await page.goto(`${new URL(loginUrl).origin}/#/servers/tools`);
    const revision = page.getByTestId('revision');
    await revision.waitFor();
    expect(await revision.textContent()).toBe(`main@sha1:${first}`);
    await page.context().close();
  }, 60_000);
});
