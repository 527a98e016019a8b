/**
 * The Access and Audit pages in Chromium, against a real `apiary up` on a
 * directory with a Gateway (oidc), two policies, server-everything and a
 * tiny server, and an audit log written by the real AuditLog: the Gateway
 * and each policy shown, alice (group dev) allowed echo where bob is denied
 * it by the contractors rule, the denied row in the audit table, the chain
 * verified, a record appended shown by the live tail, both pages usable at
 * 360 px, and what each says when there is nothing to show. No secret value,
 * argument value or token reaches the page.
 * Screenshots: test-artifacts/screenshots/access.png, audit.png.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { alice, ARGUMENT_CANARY, bob, OIDC_GATEWAY, SECRET_CANARY, twoPolicies, writeAudit, type Call } from './helpers/access-fixture.js';
import { chromium, expectBadge, nav, SHOTS, signIn, up, useBrowser } from './helpers/console-browser.js';
import { harness, nodeServer, secretYaml, tinyServer } from './helpers/controller.js';

useBrowser();

const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');

const CALLS: Call[] = [
  { subject: alice, server: 'everything', name: 'echo', decision: 'allow', rule: 'devs (access.yaml:9)', outcome: 'ok', at: 1 },
  { subject: bob, server: 'everything', name: 'echo', decision: 'deny', rule: 'contractors (access.yaml:23)', outcome: 'denied', code: 403, at: 2 },
  { subject: alice, server: 'everything', name: 'get-sum', decision: 'allow', rule: 'devs (access.yaml:9)', outcome: 'ok', at: 3 },
  { subject: bob, server: 'notes', name: 'noop', decision: 'allow', rule: 'devs (access.yaml:12)', outcome: 'tool_error', at: 4, client: 'cursor 1.7' },
  { subject: { kind: 'unauthenticated' }, server: '*', method: 'initialize', decision: 'deny', outcome: 'unauthenticated', code: 401, at: 5, client: 'unknown' },
  { subject: { kind: 'user', user: 'carol', groups: [] }, server: 'notes', name: 'noop', decision: 'deny', outcome: 'denied', code: 403, at: 6 },
];

/** The decision and its reason for `tool` of `server`, as the effective view shows them. */
async function decision(page: Page, server: string, tool: string): Promise<string> {
  const row = page.locator(`[data-server-access="${server}"] tr[data-tool="${tool}"]`);
  await row.waitFor({ timeout: 30_000 });
  return `${await row.getByTestId('decision').textContent()} ${await row.getByTestId('why').textContent()}`;
}

async function askFor(page: Page, user: string, groups: string): Promise<void> {
  const form = page.getByTestId('caller-form');
  await form.locator('input[name=user]').fill(user);
  await form.locator('input[name=groups]').fill(groups);
  await form.getByRole('button', { name: 'Show' }).click();
  await page.waitForFunction((u) => document.querySelector('[data-testid=caller]')?.textContent?.startsWith(u) === true, user, { polling: 50 });
}

async function fits(page: Page, width: number): Promise<void> {
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(width);
}

describe.skipIf(!chromium.available)('the Access and Audit pages in Chromium', () => {
  it('show the Gateway, the policies, who may call what and by which rule, and the audit log with its denials', async () => {
    const h = await harness();
    await h.write('everything.yaml', nodeServer('everything', [EVERYTHING, 'stdio'], '  tools:\n    deny: [get-env]\n'));
    await h.write('notes.yaml', tinyServer('notes', h, { env: '    - name: TOKEN\n      valueFrom:\n        secretKeyRef: { name: notes-token, key: token }\n' }));
    await h.write('secret.yaml', secretYaml('notes-token', { token: SECRET_CANARY }));
    await h.write('gateway.yaml', OIDC_GATEWAY);
    await h.write('access.yaml', twoPolicies('everything', ['echo', 'get-*'], 'notes', 'echo'));
    await writeAudit(h.stateDir, CALLS);
    const controller = await up(h);
    const page = await signIn(controller.loginUrl);
    const answers: string[] = [];
    page.on('response', (r) => {
      if (r.url().includes('/api/') && !r.url().includes('/watch') && !r.url().includes('/follow')) void r.text().then((t) => answers.push(t), () => undefined);
    });
    await expectBadge(page, 'everything', 'Running', 30_000);

    // The Gateway and the two policies, each rule with the line to edit.
    await nav(page, 'Access');
    expect(await page.getByTestId('auth-mode').textContent()).toBe('oidc');
    expect(await page.getByTestId('issuer').textContent()).toBe('http://127.0.0.1:9/realms/team');
    const devs = page.locator('li[data-policy=devs]');
    expect(await devs.textContent()).toContain('group dev');
    expect(await devs.textContent()).toContain('access.yaml:9');
    expect(await page.locator('li[data-policy=contractors]').textContent()).toContain('Deny on *: tools echo access.yaml:23');

    // alice (group dev) may call echo; bob, also in dev, is denied it by the contractors rule, plainly; carol by the default.
    await askFor(page, 'alice', 'dev');
    expect(await decision(page, 'everything', 'echo')).toBe('Allowed by devs (access.yaml:9)');
    expect(await decision(page, 'everything', 'get-sum')).toBe('Allowed by devs (access.yaml:9)');
    expect(await decision(page, 'everything', 'trigger-long-running-operation')).toBe('Denied no rule allows it (default deny)');
    await askFor(page, 'bob', 'dev');
    expect(await decision(page, 'everything', 'echo')).toBe('Denied by contractors (access.yaml:23)');
    expect(await decision(page, 'everything', 'get-sum')).toBe('Allowed by devs (access.yaml:9)');
    expect(await decision(page, 'notes', 'noop')).toBe('Allowed by devs (access.yaml:12)');
    // What spec.tools keeps from every client is said to be so, whatever the policies say.
    expect(await decision(page, 'everything', 'get-env')).toBe('hidden kept from every client by spec.tools');
    expect(page.url()).toContain('#/access?user=bob&group=dev');
    expect(await page.locator('table.matrix tr[data-subject="user=bob"]').textContent()).toContain('none');
    await page.screenshot({ path: join(SHOTS, 'access.png'), fullPage: true });

    // The audit log: newest first, the denial in its own colour, the chain verified.
    await nav(page, 'Audit');
    await page.locator('tr[data-seq="6"]').waitFor();
    expect(await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-seq')))).toEqual(['6', '5', '4', '3', '2', '1']);
    const denied = page.locator('tr[data-seq="2"]');
    expect(await denied.getAttribute('class')).toBe('denied');
    expect((await denied.locator('td').allTextContents()).slice(1)).toEqual(['bob dev', 'claude-code 2.1', 'everything', 'tools/call', 'echo', 'deny', 'contractors (access.yaml:23)', 'denied 403', '2.25 ms']);
    // The page shows the records first and the verify badge when verify answers (Verifying... meanwhile).
    await page.getByTestId('verify').filter({ hasText: /^Verified/ }).waitFor();
    expect(await page.getByTestId('verify').textContent()).toBe('Verified: 6 records');

    // Filters, kept in the address.
    await page.locator('select[name=server]').selectOption('notes');
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 2, undefined, { polling: 50 });
    await page.locator('input[name=user]').fill('bob');
    await page.locator('input[name=user]').press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1, undefined, { polling: 50 });
    expect(page.url()).toContain('#/audit?server=notes&user=bob');
    await page.locator('select[name=server]').selectOption('');
    await page.locator('input[name=user]').fill('');
    await page.locator('input[name=user]').press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 6, undefined, { polling: 50 });

    // The live tail: a record written now appears on top, and the badge counts it.
    await page.locator('input[name=live]').check();
    await writeAudit(h.stateDir, [{ subject: bob, server: 'everything', name: 'echo', decision: 'deny', rule: 'contractors (access.yaml:23)', outcome: 'denied', code: 403, at: 7 }]);
    await page.locator('tbody tr[data-seq="7"].denied').waitFor({ timeout: 15_000 });
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.waitForFunction(() => document.querySelector('[data-testid=verify]')?.textContent === 'Verified: 7 records', undefined, { polling: 50, timeout: 15_000 });
    await page.screenshot({ path: join(SHOTS, 'audit.png'), fullPage: true });

    // 360 px: both pages fit, the records as cards.
    await page.setViewportSize({ width: 360, height: 740 });
    await page.evaluate(() => (location.hash = '#/access?user=bob&group=dev'));
    await page.locator('[data-server-access="everything"] tr[data-tool="echo"]').waitFor({ timeout: 30_000 });
    await fits(page, 360);
    await page.screenshot({ path: join(SHOTS, 'access-360.png'), fullPage: true });
    await nav(page, 'Audit');
    await page.locator('tr[data-seq="7"]').waitFor();
    await fits(page, 360);
    await page.screenshot({ path: join(SHOTS, 'audit-360.png'), fullPage: true });

    // No secret value, argument value or token in any answer or on the page.
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    expect(answers.length).toBeGreaterThan(5);
    for (const text of [...answers, await page.content()]) {
      for (const canary of [SECRET_CANARY, ARGUMENT_CANARY, token]) expect(text).not.toContain(canary);
    }

    // Every control has a name a screen reader can say.
    const unnamed = await page.evaluate(() =>
      [...document.querySelectorAll('button, input, select, a')].filter((el) => !(el.getAttribute('aria-label') || el.textContent?.trim() || (el as HTMLInputElement).labels?.length)).map((el) => el.outerHTML),
    );
    expect(unnamed).toEqual([]);

    // A record edited on disk: Refresh, and the badge names the record, as `apiary audit verify` does.
    const layout = new StateLayout(h.stateDir);
    await writeFile(layout.auditFile, (await readFile(layout.auditFile, 'utf8')).replace('"outcome":"denied"', '"outcome":"ok"'));
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.waitForFunction(() => document.querySelector('[data-testid=verify]')?.textContent === 'Broken at record 2', undefined, { polling: 50 });
    expect(await page.getByTestId('verify-message').textContent()).toContain('record 2 was changed');
  }, 180_000);

  it('say what to do when there is no Gateway and no audit log', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    const controller = await up(h);
    const page = await signIn(controller.loginUrl);
    await expectBadge(page, 'a', 'Running');
    await nav(page, 'Access');
    const none = page.getByTestId('no-gateway');
    await none.waitFor();
    expect(await none.textContent()).toContain('No Gateway: apiary asks every client for its bearer token');
    expect(await page.getByTestId('no-policies').textContent()).toContain('Every caller with the token may use everything, as without a Gateway.');
    await nav(page, 'Audit');
    const empty = page.getByTestId('no-audit');
    await empty.waitFor();
    expect(await empty.textContent()).toMatch(/^No audit log yet: it is written when a Gateway exists/);
    await page.getByTestId('verify').filter({ hasText: /^Verified/ }).waitFor();
    expect(await page.getByTestId('verify').textContent()).toBe('Verified: no records yet');
  }, 120_000);
});
