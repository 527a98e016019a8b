/// <reference lib="dom" />
/**
 * The web console in Chromium with 500 servers: page load to a rendered
 * table, a manifest edit to the updated badge (p50/p99), the bundle size.
 * The controller is the real `apiary up`; each server is a one-line awk MCP
 * responder (about 1 MiB each), so 500 of them fit on a small machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { fmtMs, percentile, type Row } from './stats.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'apiary');
const SERVERS = 500;
const EDITS = 40;
const LOADS = 5;
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Answers every request with an empty result: enough for initialize and ping. */
const AWK_SERVER =
  '{ if (match($0, /"id":[0-9]+/)) { id = substr($0, RSTART + 5, RLENGTH - 5); ' +
  'if ($0 ~ /"method":"initialize"/) print "{\\"jsonrpc\\":\\"2.0\\",\\"id\\":" id ",\\"result\\":{\\"protocolVersion\\":\\"2025-06-18\\",\\"capabilities\\":{},\\"serverInfo\\":{\\"name\\":\\"awk\\",\\"version\\":\\"1\\"}}}"; ' +
  'else print "{\\"jsonrpc\\":\\"2.0\\",\\"id\\":" id ",\\"result\\":{}}"; fflush() } }';

function manifest(name: string, suspend: boolean): string {
  return `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: ${name}\nspec:\n  command: awk\n  args: ["-W", "interactive", ${JSON.stringify(AWK_SERVER)}]\n${suspend ? '  suspend: true\n' : ''}`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(100);
  }
}

export async function benchConsole(): Promise<Row[]> {
  const root = await mkdtemp(join(tmpdir(), 'apiary-bench-console-'));
  const dir = join(root, 'manifests');
  const stateDir = join(root, 'state');
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < SERVERS; i++) await writeFile(join(dir, `s${String(i).padStart(3, '0')}.yaml`), manifest(`s${String(i).padStart(3, '0')}`, false));
  const env = { ...process.env, APIARY_DIR: dir, APIARY_STATE_DIR: stateDir, APIARY_KEY_FILE: join(root, 'key'), NO_COLOR: '1' };
  let controller: ChildProcess | undefined;
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, headless: true });
  try {
    controller = spawn(BIN, ['up', '--resync', '300'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    controller.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    controller.stderr!.on('data', () => undefined);
    const loginUrl = await waitFor('the login URL', async () => /apiary console: (\S+)/.exec(output)?.[1], 30_000);
    const record = JSON.parse(await readFile(join(stateDir, 'console.json'), 'utf8')) as { url: string; apiToken: string };
    const api = async <T>(path: string): Promise<T> => (await (await fetch(`${record.url}${path}`, { headers: { Authorization: `Bearer ${record.apiToken}` } })).json()) as T;
    const started = Date.now();
    await waitFor(`${SERVERS} servers Running`, async () => {
      const list = await api<{ items: { status?: { phase?: string } }[] }>('/api/v1/mcpservers');
      return list.items.filter((o) => o.status?.phase === 'Running').length === SERVERS ? true : undefined;
    }, 180_000);
    const allRunningMs = Date.now() - started;

    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    // Marks when the table first holds every row, in the page's own clock (from navigation start).
    await context.addInitScript(`
      new MutationObserver((_, observer) => {
        if (document.querySelectorAll('tr[data-server]').length >= ${SERVERS}) { window.tableAt = performance.now(); observer.disconnect(); }
      }).observe(document, { childList: true, subtree: true });
    `);
    const page = await context.newPage();
    await page.goto(loginUrl);
    const loads: number[] = [];
    for (let i = 0; i < LOADS; i++) {
      await page.goto(`${record.url}/`);
      await page.waitForFunction(() => (window as unknown as { tableAt?: number }).tableAt !== undefined, undefined, { timeout: 30_000 });
      loads.push(await page.evaluate(() => (window as unknown as { tableAt: number }).tableAt));
    }

    const edits = await editToBadge(page, dir);
    const size = JSON.parse(await readFile(join(ROOT, 'dist', 'console', 'size.json'), 'utf8')) as { gzipBytes: number };
    const watchBytes = (await (await fetch(`${record.url}/api/v1/mcpservers`, { headers: { Authorization: `Bearer ${record.apiToken}` } })).text()).length;
    await context.close();
    return [
      { measure: `page load to a rendered table of ${SERVERS} servers`, result: `p50 ${fmtMs(percentile(loads, 50))} (max ${fmtMs(Math.max(...loads))})`, target: '<= 300 ms', note: `${LOADS} loads, from navigation start, in the page's clock; ${SERVERS} servers Running after ${(allRunningMs / 1000).toFixed(1)} s` },
      { measure: 'manifest edit -> updated badge in the page', result: `p50 ${fmtMs(percentile(edits, 50))} / p99 ${fmtMs(percentile(edits, 99))}`, target: 'p50 <= 150 ms', note: `${edits.length} edits (suspend, resume) of one server among ${SERVERS}; file write to the badge's text changing` },
      { measure: 'bundle (page, script, styles), gzipped', result: `${(size.gzipBytes / 1024).toFixed(1)} KiB`, target: '<= 40 KB', note: 'Preact bundled in; no CDN' },
      { measure: `GET /api/v1/mcpservers (${SERVERS} objects)`, result: `${(watchBytes / 1024).toFixed(0)} KiB`, note: 'the same List get -o json prints' },
    ];
  } finally {
    await browser.close();
    if (controller && controller.exitCode === null) {
      controller.kill('SIGTERM');
      await new Promise((resolve) => controller!.once('exit', resolve));
    }
    await rm(root, { recursive: true, force: true });
  }
}

/** Suspends and resumes one server by editing its file; each sample is file write -> the badge's text changing in the page. */
async function editToBadge(page: Page, dir: string): Promise<number[]> {
  const name = 's250';
  await page.evaluate((server) => {
    const w = window as unknown as { badgeChanges: { text: string; at: number }[] };
    w.badgeChanges = [];
    let last = document.querySelector(`tr[data-server="${server}"] [data-testid=phase]`)?.textContent ?? '';
    new MutationObserver(() => {
      const text = document.querySelector(`tr[data-server="${server}"] [data-testid=phase]`)?.textContent ?? '';
      if (text !== last) {
        last = text;
        w.badgeChanges.push({ text, at: Date.now() });
      }
    }).observe(document.querySelector('tbody')!, { childList: true, subtree: true, characterData: true });
  }, name);
  const samples: number[] = [];
  for (let i = 0; i < EDITS; i++) {
    const suspend = i % 2 === 0;
    const seen = await page.evaluate(() => (window as unknown as { badgeChanges: unknown[] }).badgeChanges.length);
    const wrote = Date.now();
    await writeFile(join(dir, `${name}.yaml`), manifest(name, suspend));
    const change = await waitFor('the badge to change', async () => {
      const changes = await page.evaluate(() => (window as unknown as { badgeChanges: { text: string; at: number }[] }).badgeChanges);
      return changes.slice(seen).find((c) => (suspend ? c.text === 'Suspended' : c.text !== 'Suspended'));
    }, 15_000);
    samples.push(change.at - wrote);
    // Let the server settle (Running again) before the next edit.
    if (!suspend) await waitFor('Running', async () => ((await page.locator(`tr[data-server="${name}"] [data-testid=phase]`).textContent()) === 'Running' ? true : undefined), 15_000);
    await sleep(150);
  }
  return samples;
}
