/// <reference lib="dom" />
/**
 * The console in a real Chromium against a real `apiary up`: the controller
 * started as a user starts it (and stopped after each test), the page signed
 * in from the link it prints, and the few moves every browser test makes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { CHROMIUM, hasChromium, launchChromium } from './browser.js';
import { BIN, ROOT } from './cli.js';
import type { Harness } from './controller.js';
import { INSTALL, requireTool } from './tools.js';

export const SHOTS = join(ROOT, 'test-artifacts', 'screenshots');

/** Debian's Chromium drives the page (skipped without it, saying how to install it; a failure in CI). */
export const chromium = requireTool(CHROMIUM, INSTALL.chromium, hasChromium);

let browser: Browser | undefined;
const controllers: ChildProcess[] = [];

/** The browser the file's tests share, launched once per file; every `up` is stopped after each test. */
export function useBrowser(): () => Browser {
  beforeAll(async () => {
    if (!chromium.available) return;
    browser = await launchChromium();
    await mkdir(SHOTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
  });
  afterEach(stopControllers);
  return () => browser!;
}

/** Stopped and waited for: a controller still writing status while the temp folders are removed fails the removal. */
async function stopControllers(): Promise<void> {
  await Promise.all(
    controllers.splice(0).map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const done = await Promise.race([exited.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), 15_000))]);
      // Not stopped in time: a second signal kills every server at once, as a person's second Ctrl-C does; none is left behind.
      if (!done) {
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      }
    }),
  );
}

/** `apiary up` as a user runs it; resolves with the login URL it prints. */
export async function up(h: Harness, extraEnv: NodeJS.ProcessEnv = {}, args: string[] = []): Promise<{ child: ChildProcess; loginUrl: string; output: () => string }> {
  const child = spawn(BIN, ['up', ...args], { env: { ...process.env, ...h.env, ...extraEnv, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  controllers.push(child);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const loginUrl = await h.waitFor('the login URL', async () => /apiary console: (\S+)/.exec(output)?.[1], 20_000);
  return { child, loginUrl, output: () => output };
}

export async function signIn(loginUrl: string, viewport = { width: 1280, height: 800 }): Promise<Page> {
  const context = await browser!.newContext({ viewport });
  const page = await context.newPage();
  await page.goto(loginUrl);
  await page.waitForSelector('header nav');
  return page;
}

export function nav(page: Page, to: 'Servers' | 'Secrets' | 'Install' | 'Catalog' | 'Clients' | 'Access' | 'Audit'): Promise<void> {
  return page.locator('header nav').getByRole('link', { name: to, exact: true }).click();
}

export function badge(page: Page, server: string) {
  return page.locator(`tr[data-server="${server}"] [data-testid=phase]`);
}

export async function expectBadge(page: Page, server: string, text: string, timeout = 20_000): Promise<void> {
  await page.waitForFunction(
    ([s, t]) => document.querySelector(`tr[data-server="${s}"] [data-testid=phase]`)?.textContent === t,
    [server, text] as const,
    { timeout, polling: 50 },
  );
}
