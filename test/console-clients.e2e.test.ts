/**
 * The console's Clients page in Chromium, against a real `apiary up` with a
 * temporary HOME holding Zed's settings (JSONC, comments) and Codex CLI's
 * config.toml: each client found with its state, a preview of the change
 * before writing, Add (the file written and kept in sync as servers come),
 * Remove (the file as it was). The endpoint token never reaches the page.
 * Screenshot: test-artifacts/screenshots/clients.png.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { chromium, expectBadge, SHOTS, signIn, up, useBrowser } from './helpers/console-browser.js';
import { harness, tinyServer } from './helpers/controller.js';
import { clientHome } from './helpers/client-home.js';

useBrowser();

const ZED = `// Zed settings
{
  "theme": "One Dark", // mine
  "context_servers": {}
}
`;
const CODEX = `# Codex settings
model = "o4-mini"
`;

describe.skipIf(!chromium.available)('the Clients page in Chromium', () => {
  it('shows each client found with its state, previews the change, adds and removes it, and keeps it in sync', async () => {
    const h = await harness();
    const { env, zed, codex } = await clientHome({ zed: ZED, codex: CODEX });
    await h.write('a.yaml', tinyServer('a', h));
    const controller = await up(h, env);
    const page = await signIn(controller.loginUrl);
    const seen: string[] = [];
    page.on('response', (r) => {
      if (r.url().includes('/api/') && !r.url().includes('/watch')) void r.text().then((t) => seen.push(t), () => undefined);
    });
    await expectBadge(page, 'a', 'Running');
    await page.locator('header nav').getByRole('link', { name: 'Clients', exact: true }).click();

    // Found here: Zed and Codex CLI (their folders exist), neither configured; nothing else is on this HOME.
    const row = (client: string) => page.locator(`tr[data-client="${client}"]`);
    await row('zed').waitFor();
    await expect.poll(() => page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-client')))).toEqual(['zed', 'codex']);
    expect(await row('zed').locator('.badge').textContent()).toBe('not configured');

    // Add Zed: the preview shows the entry going in, with the token redacted; nothing is written until confirmed.
    await row('zed').getByRole('button', { name: 'Add' }).click();
    const diff = page.getByTestId('client-diff');
    await diff.waitFor();
    const shown = (await diff.textContent()) ?? '';
    expect(shown).toContain('+    "a": {');
    expect(shown).toContain('Bearer <apiary token>');
    expect(await readFile(zed, 'utf8')).toBe(ZED);
    await page.getByRole('button', { name: 'Write and keep in sync' }).click();
    await expect.poll(() => row('zed').locator('.badge').textContent(), { timeout: 20_000 }).toBe('connected');
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    const written = await readFile(zed, 'utf8');
    expect(written.startsWith('// Zed settings\n{\n  "theme": "One Dark", // mine\n  "context_servers": {\n    "a": {')).toBe(true);
    expect(written).toContain(`Bearer ${token}`);

    // The preview of Codex's TOML, for the screenshot beside a connected Zed.
    await row('codex').getByRole('button', { name: 'Add' }).click();
    await diff.waitFor();
    expect(await diff.textContent()).toContain('+[mcp_servers.a]');
    await page.screenshot({ path: join(SHOTS, 'clients.png') });
    await page.getByRole('button', { name: 'Write and keep in sync' }).click();
    await expect.poll(() => row('codex').locator('.badge').textContent(), { timeout: 20_000 }).toBe('connected');

    // A server installed by hand: both registered clients follow.
    await h.write('b.yaml', tinyServer('b', h));
    await h.waitFor('b in both files', async () => (await readFile(zed, 'utf8')).includes('"b": {') && (await readFile(codex, 'utf8')).includes('[mcp_servers.b]'), 30_000);
    await expect.poll(() => row('zed').locator('.badge').textContent(), { timeout: 20_000 }).toBe('connected');

    // Remove Zed: the preview, then the file as it was.
    await row('zed').getByRole('button', { name: 'Remove' }).click();
    await diff.waitFor();
    expect(await diff.textContent()).toContain('-    "a": {');
    await page.getByRole('button', { name: 'Take apiary out' }).click();
    await expect.poll(() => row('zed').locator('.badge').textContent(), { timeout: 20_000 }).toBe('not configured');
    expect(await readFile(zed, 'utf8')).toBe(ZED);

    // The endpoint token never reached the page.
    expect(seen.length).toBeGreaterThan(3);
    for (const text of seen) expect(text).not.toContain(token);
    expect(await page.content()).not.toContain(token);
  }, 180_000);
});
