/**
 * Pinned tools in the console, in Chromium against a real `apiary up`: the
 * drifting server of the pinning test locked, then restarted with another
 * description for echo and a new tool. Its row on the Servers page says its
 * tools drifted; its page shows each drifted tool with the diff `apiary
 * tools diff` prints; Approve on one tool takes that tool off the list as
 * the controller judges the server again (the feed), the lock's previous
 * file kept; Approve all ends the drift, and the row's note goes.
 * Screenshot: test-artifacts/screenshots/tools-drift.png.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { runCli } from './helpers/cli.js';
import { chromium, expectBadge, SHOTS, signIn, up, useBrowser } from './helpers/console-browser.js';
import { harness, type Harness } from './helpers/controller.js';
import { driftManifest, driftReady, RUG_PULL } from './helpers/drifting.js';

useBrowser();


const manifest = (env: Record<string, string> = {}): string => driftManifest(env);

const readyPid = (h: Harness, other?: number): Promise<number> => driftReady(h, other, 30_000);

/** The names of the tools the drift section lists, once it lists exactly `names`. */
async function driftedTools(page: Page, names: string[]): Promise<void> {
  await page.waitForFunction(
    (want) => [...document.querySelectorAll('[data-testid=drifted-tools] li')].map((li) => li.getAttribute('data-tool')).join(',') === want,
    names.join(','),
    { timeout: 30_000, polling: 50 },
  );
}

describe.skipIf(!chromium.available)('pinned tools in the console', () => {
  it('shows a drifted server, each drifted tool with its diff, and Approve (one, then all) ends the drift live', async () => {
    const h = await harness();
    await h.write('drift.yaml', manifest());
    const controller = await up(h);
    const first = await readyPid(h);
    await h.waitFor('the listed tools kept', () => readFile(join(h.stateDir, 'tools', 'drift.json'), 'utf8').catch(() => undefined));
    expect((await runCli(['--dir', h.dir, '--state-dir', h.stateDir, 'tools', 'lock'], { env: h.env })).code).toBe(0);
    const lockText = await readFile(join(h.dir, 'tools.lock.yaml'), 'utf8');
    await h.write('drift.yaml', manifest({ ECHO_DESCRIPTION: RUG_PULL, EXTRA_TOOL: '1' }));
    await readyPid(h, first);
    await h.waitFor('ToolsDrifted True', async () => findCondition((await h.status('drift'))?.conditions, 'ToolsDrifted')?.status === 'True');

    const page = await signIn(controller.loginUrl);
    await expectBadge(page, 'drift', 'Running', 30_000);
    const note = page.locator('tr[data-server="drift"] [data-testid=drift-note]');
    await note.waitFor();
    await note.click();

    // Each drifted tool, with the diff `apiary tools diff drift` prints.
    await driftedTools(page, ['echo', 'exfiltrate']);
    const echoDiff = (await page.getByTestId('diff-echo').textContent()) ?? '';
    expect(echoDiff).toContain('-Echoes its input\n');
    expect(echoDiff).toContain(`+${RUG_PULL}\n`);
    expect(await page.getByTestId('diff-exfiltrate').textContent()).toContain('+description:\n+Reads a file');
    const cli = await runCli(['--dir', h.dir, '--state-dir', h.stateDir, 'tools', 'diff', 'drift'], { env: h.env });
    expect(cli.stdout).toContain(echoDiff.trimEnd());
    expect(await page.getByTestId('tools-drift').textContent()).toContain('changed: echo; new: exfiltrate');
    await page.screenshot({ path: join(SHOTS, 'tools-drift.png') });
    // A phone's width: the diffs wrap, nothing scrolls sideways.
    await page.setViewportSize({ width: 360, height: 800 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
    await page.setViewportSize({ width: 1280, height: 800 });

    // Approve one: the lock follows echo (its previous file kept), and echo leaves the list as the condition changes.
    await page.getByRole('button', { name: 'Approve echo' }).click();
    await driftedTools(page, ['exfiltrate']);
    expect(await page.getByTestId('tools-drift').textContent()).toContain('new: exfiltrate');
    expect(await page.getByTestId('approved').textContent()).toContain('the previous file kept as');
    expect(await readFile(join(h.dir, 'tools.lock.yaml.apiary-backup'), 'utf8')).toBe(lockText);
    expect(await readFile(join(h.dir, 'tools.lock.yaml'), 'utf8')).toContain(`description: ${RUG_PULL}\n`);

    // Approve all: the drift ends, the section and the row's note go.
    await page.getByRole('button', { name: 'Approve every tool of drift' }).click();
    await page.getByTestId('drifted-tools').waitFor({ state: 'detached', timeout: 30_000 });
    // The page hears the condition from the controller's feed, which can be ahead of the status file the harness reads.
    await h.waitFor('ToolsDrifted False in the status file', async () => findCondition((await h.status('drift'))?.conditions, 'ToolsDrifted')?.status === 'False');
    await page.locator('header nav').getByRole('link', { name: 'Servers', exact: true }).click();
    await expectBadge(page, 'drift', 'Running');
    expect(await note.count()).toBe(0);
  }, 120_000);
});
