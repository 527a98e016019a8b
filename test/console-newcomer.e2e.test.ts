/// <reference lib="dom" />
/**
 * What a newcomer tripped on in the console (issue 25), in a real Chromium
 * against a real `apiary up`: the browser's own checks of the forms, the
 * dialogs saying what really happens, the page at a phone's width, and a
 * server's page showing what it runs with.
 */
import { createRequire } from 'node:module';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chromium, expectBadge, nav, SHOTS, signIn, up, useBrowser } from './helpers/console-browser.js';
import { harness, nodeServer, secretYaml, tinyServer } from './helpers/controller.js';

const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');

useBrowser();

describe.skipIf(!chromium.available)('the console for a newcomer, in Chromium', () => {
  it("the forms' patterns are checked by the browser: a bad name or key is refused before anything is sent", async () => {
    const h = await harness();
    await h.write('s.yaml', secretYaml('github', { token: 'x' }));
    const { loginUrl } = await up(h);
    const page = await signIn(loginUrl);
    const refused: string[] = [];
    page.on('request', (r) => (r.url().includes('/install/plan') ? refused.push(r.url()) : undefined));
    await nav(page, 'Install');
    const name = page.getByLabel('Name');
    await name.fill('Bad_Name');
    await page.getByLabel('Command').fill('node');
    expect(await name.evaluate((el: HTMLInputElement) => el.validity.patternMismatch)).toBe(true);
    await page.getByRole('button', { name: 'Add a secret variable' }).click();
    const variable = page.locator('fieldset').first().getByLabel('Variable', { exact: true });
    await variable.fill('1-NOT-A-VARIABLE');
    expect(await variable.evaluate((el: HTMLInputElement) => el.validity.patternMismatch)).toBe(true);
    await page.getByRole('button', { name: 'Review' }).click();
    // The browser stops the submit and says why at the field; no plan is asked for.
    expect(await name.evaluate((el: HTMLInputElement) => el.validationMessage)).not.toBe('');
    await name.fill('good-name');
    expect(await name.evaluate((el: HTMLInputElement) => el.validity.valid)).toBe(true);
    expect(refused).toEqual([]);

    // The secret form's name and key too; and updating a value leaves name and key as they are.
    await nav(page, 'Secrets');
    await page.getByRole('button', { name: 'Add secret' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name').fill('Not A Name');
    await dialog.getByLabel('Key').fill('a key');
    expect(await dialog.getByLabel('Name').evaluate((el: HTMLInputElement) => el.validity.patternMismatch)).toBe(true);
    expect(await dialog.getByLabel('Key').evaluate((el: HTMLInputElement) => el.validity.patternMismatch)).toBe(true);
    await dialog.getByLabel('Key').fill('api.key-2_b');
    expect(await dialog.getByLabel('Key').evaluate((el: HTMLInputElement) => el.validity.valid)).toBe(true);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('button', { name: 'Update github/token' }).click();
    expect(await dialog.getByLabel('Name').isEditable()).toBe(false);
    expect(await dialog.getByLabel('Key').isEditable()).toBe(false);
    expect(await dialog.getByLabel('Name').inputValue()).toBe('github');
    expect(await dialog.getByLabel('Key').inputValue()).toBe('token');
    expect(await dialog.getByLabel('New value').isEditable()).toBe(true);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    // A key added to github goes into github: the name is not the dialog's to change.
    await page.getByRole('button', { name: 'Add a key to github' }).click();
    expect(await dialog.getByLabel('Name').inputValue()).toBe('github');
    expect(await dialog.getByLabel('Name').isEditable()).toBe(false);
    expect(await dialog.getByLabel('Key').isEditable()).toBe(true);
    await page.context().close();
  }, 60_000);

  it('fits a 360 px window: the client buttons wrap instead of running off the side', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    const { loginUrl } = await up(h);
    const page = await signIn(loginUrl, { width: 360, height: 740 });
    await expectBadge(page, 'a', 'Running');
    const clients = page.locator('section.clients');
    await clients.waitFor();
    // Every button inside the section's box: a row that runs off the start (flex-end) is cut off as surely as one past the end.
    const boxes = await clients.evaluate((el) => {
      const section = el.getBoundingClientRect();
      return { section: { left: section.left, right: section.right }, scroll: el.scrollWidth, client: el.clientWidth, buttons: [...el.querySelectorAll('button')].map((b) => b.getBoundingClientRect()).map((r) => ({ left: r.left, right: r.right, height: r.height })) };
    });
    expect(boxes.scroll).toBeLessThanOrEqual(boxes.client);
    expect(boxes.buttons).toHaveLength(6);
    for (const b of boxes.buttons) {
      expect(b.left).toBeGreaterThanOrEqual(boxes.section.left);
      expect(b.right).toBeLessThanOrEqual(boxes.section.right);
    }
    // One line of text each: no button squeezed into a column of words.
    const heights = boxes.buttons.map((b) => Math.round(b.height));
    expect(Math.max(...heights)).toBeLessThan(2 * Math.min(...heights));
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
    await page.screenshot({ path: join(SHOTS, 'servers-360.png'), fullPage: true });
    await page.context().close();
  }, 60_000);

  it("a server's Environment lists its plain variables with their values and its secret ones by reference only", async () => {
    const h = await harness();
    const canary = 'CANARY-env-51c0';
    await h.write('s.yaml', secretYaml('github', { token: canary }));
    await h.write('a.yaml', tinyServer('a', h, { env: '    - name: LOG_LEVEL\n      value: debug\n    - name: GITHUB_TOKEN\n      valueFrom:\n        secretKeyRef: { name: github, key: token }\n' }));
    const { loginUrl } = await up(h);
    const page = await signIn(loginUrl);
    await expectBadge(page, 'a', 'Running');
    await page.goto(`${new URL(loginUrl).origin}/#/servers/a`);
    const env = page.getByTestId('environment');
    // The binding's state comes with the server's detail, after the row itself.
    await page.waitForFunction(() => document.querySelector('[data-testid=environment] tr[data-variable="GITHUB_TOKEN"]')?.textContent?.includes('present'));
    expect(await env.locator('tr[data-variable="LOG_LEVEL"]').textContent()).toBe('LOG_LEVELdebugplain');
    expect(await env.locator('tr[data-variable="SERVER_NAME"]').textContent()).toBe('SERVER_NAMEaplain');
    expect(await env.locator('tr[data-variable="GITHUB_TOKEN"]').textContent()).toBe('GITHUB_TOKENsecret github, key token✓ present');
    expect(await page.evaluate(() => document.documentElement.outerHTML)).not.toContain(canary);
    await page.context().close();
  }, 60_000);

  it('the restart dialog says what a restart does to this server: rolled, recreated, or nothing while Stuck', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    await h.write('b.yaml', tinyServer('b', h, { extra: '  strategy:\n    type: Recreate\n' }));
    await h.write('c.yaml', tinyServer('c', h, { env: '    - name: GITHUB_TOKEN\n      valueFrom:\n        secretKeyRef: { name: github, key: token }\n' }));
    const { loginUrl } = await up(h);
    const page = await signIn(loginUrl);
    await expectBadge(page, 'a', 'Running');
    await expectBadge(page, 'b', 'Running');
    await expectBadge(page, 'c', 'Stuck (SecretNotFound)');
    const said = async (server: string): Promise<string> => {
      await page.getByRole('button', { name: `Restart ${server}` }).click();
      const text = (await page.getByRole('dialog').getByTestId('action-effect').textContent()) ?? '';
      await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
      await page.getByRole('dialog').waitFor({ state: 'detached' });
      return text;
    };
    expect(await said('a')).toContain('Calls keep going to the old one until then: none is lost.');
    expect(await said('b')).toContain('the server is stopped, then started again. Calls in flight are lost, and calls fail until it is back.');
    expect(await said('c')).toBe('Nothing is running: it is Stuck (secret "github" not found (needed for env GITHUB_TOKEN)). A restart does nothing until github/token is back; then it starts by itself.');
    await page.context().close();
  }, 60_000);

  it("tries a tool from a server's page: a form from its input schema, called through the endpoint, the answer shown", async () => {
    const h = await harness();
    await h.write('everything.yaml', nodeServer('everything', [EVERYTHING, 'stdio']));
    const { loginUrl } = await up(h);
    const page = await signIn(loginUrl, { width: 1100, height: 900 });
    await expectBadge(page, 'everything', 'Running');
    await page.goto(`${new URL(loginUrl).origin}/#/servers/everything`);
    await page.getByRole('button', { name: 'Try echo' }).click();
    const panel = page.getByTestId('try-tool');
    await panel.locator('[data-argument="message"] input').fill('hello from the console');
    await panel.getByRole('button', { name: 'Call' }).click();
    const result = panel.getByTestId('tool-result');
    await result.locator('pre').waitFor();
    expect(await result.locator('pre').textContent()).toBe('Echo: hello from the console');
    expect(await result.locator('p').first().textContent()).toMatch(/^echo answered in \d+ ms:$/);
    // The panel with its heading and the tool list above it, for the README.
    const clip = await page.evaluate(() => {
      const top = document.getElementById('try-title')!.getBoundingClientRect().top + scrollY;
      const panelBox = document.querySelector('[data-testid=try-tool]')!.getBoundingClientRect();
      return { x: 0, y: top - 16, width: panelBox.right + 24, height: panelBox.bottom + scrollY - top + 32 };
    });
    await page.screenshot({ path: join(SHOTS, 'try-a-tool.png'), fullPage: true, clip });

    // An enum is a choice; structured content comes back as JSON.
    await panel.getByLabel('Tool').selectOption('get-structured-content');
    const location = panel.locator('[data-argument="location"] select');
    expect(await location.locator('option').allTextContents()).toEqual(['choose...', 'New York', 'Chicago', 'Los Angeles']);
    await location.selectOption('Chicago');
    await panel.getByRole('button', { name: 'Call' }).click();
    await panel.getByTestId('structured-content').waitFor();
    expect(JSON.parse((await panel.getByTestId('structured-content').textContent())!)).toEqual({ temperature: 36, conditions: 'Light rain / drizzle', humidity: 82 });

    // Numbers are numbers; the server's own refusal is shown as an error.
    await panel.getByLabel('Tool').selectOption('get-sum');
    await panel.locator('[data-argument="a"] input').fill('2');
    await panel.locator('[data-argument="b"] input').fill('40');
    await panel.getByRole('button', { name: 'Call' }).click();
    await page.waitForFunction(() => document.querySelector('[data-testid=tool-result] pre')?.textContent?.includes('42'));
    await page.context().close();
  }, 60_000);

  it('keeps showing the tools a server last listed while it is Stuck, marked as last known', async () => {
    const h = await harness();
    await h.write('s.yaml', secretYaml('github', { token: 'x' }));
    await h.write('a.yaml', tinyServer('a', h, { env: '    - name: T\n      valueFrom:\n        secretKeyRef: { name: github, key: token }\n' }));
    const { loginUrl } = await up(h);
    const page = await signIn(loginUrl);
    await expectBadge(page, 'a', 'Running');
    await h.waitFor('a listed its tools', async () => (await h.status('a'))?.tools === 1);
    await rm(join(h.dir, 's.yaml'));
    await page.getByRole('link', { name: 'Add secret github/token' }).waitFor();
    await page.getByRole('button', { name: 'Suspend a' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Suspend' }).click();
    await expectBadge(page, 'a', 'Suspended');
    await page.getByRole('button', { name: 'Resume a' }).click();
    await expectBadge(page, 'a', 'Stuck (SecretNotFound)');
    await page.goto(`${new URL(loginUrl).origin}/#/servers/a`);
    await page.getByTestId('tools-last-known').waitFor();
    expect(await page.getByTestId('tools-last-known').textContent()).toMatch(/^Last known: what the server listed when it last ran \(\d+s ago\)\. Nothing runs now to ask\.$/);
    expect(await page.getByTestId('tools').textContent()).toBe('noop');
    await page.context().close();
  }, 60_000);

  it('seals a secret held in plain stringData from the Secrets page, in its file', async () => {
    const h = await harness();
    const canary = 'CANARY-seal-e2e-77a0';
    await h.write('github.yaml', `# the bot's\n${secretYaml('github', { token: canary })}`);
    await h.write('a.yaml', tinyServer('a', h, { env: '    - name: T\n      valueFrom:\n        secretKeyRef: { name: github, key: token }\n' }));
    const { loginUrl } = await up(h);
    const page = await signIn(loginUrl);
    await expectBadge(page, 'a', 'Running');
    await nav(page, 'Secrets');
    const row = page.locator('tr[data-secret="github"]');
    await row.waitFor();
    expect(await row.locator('td').nth(2).textContent()).toBe('plain');
    await page.getByRole('button', { name: 'Seal github' }).click();
    expect(await page.getByTestId('seal-effect').textContent()).toContain('as apiary seal github.yaml does');
    await page.getByRole('dialog').getByRole('button', { name: 'Seal' }).click();
    await page.waitForFunction(() => document.querySelectorAll('tr[data-secret="github"] td')[2]?.textContent === 'sealed');
    expect(await page.getByRole('button', { name: 'Seal github' }).count()).toBe(0);
    const text = await readFile(join(h.dir, 'github.yaml'), 'utf8');
    expect(text).not.toContain(canary);
    expect(text).toContain("# the bot's");
    expect(text).toContain('encryptedData:');
    await page.context().close();
  }, 60_000);
});
