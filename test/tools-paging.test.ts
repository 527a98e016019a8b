/**
 * Pinned tools of a server that pages its tools/list (issue 28 item 1): a
 * real controller, the SDK v2 paging fixture (two tools a page; `delta`, on
 * page 2, changes while it runs once its file is written), the built CLI's
 * `tools lock`, and SDK clients walking the pages at the server's endpoint,
 * over stdio and over HTTP, in both protocol revisions.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { runCli } from './helpers/cli.js';
import { harness, nodeServer, type Harness } from './helpers/controller.js';
import { RUG_PULL, toolsDrifted } from './helpers/drifting.js';
import { versionedClient } from './helpers/leaks.js';

const PAGING = fileURLToPath(new URL('./fixtures/servers/paging-server.mjs', import.meta.url));
const WITHHELD = /tool "delta" is withheld: mcpserver\/pages's tools differ from tools\.lock\.yaml \(changed: delta\)/;

const TRANSPORTS = {
  stdio: [],
  // 2025 clients served by apiary's own sessions with the server; 2026-07-28 ones through its modern front.
  http: ['--http'],
  // A 2025 server: the proxy passes its clients' requests through and reads the answers as they pass.
  'http (a 2025 server, passed through)': ['--http', '--legacy'],
} as const;
type Transport = keyof typeof TRANSPORTS;

function manifest(transport: Transport, deltaFile: string): string {
  const env = `  env:\n    - name: DELTA_FILE\n      value: ${JSON.stringify(deltaFile)}\n`;
  return nodeServer('pages', [PAGING, ...TRANSPORTS[transport]], `${transport === 'stdio' ? '' : '  transport: streamable-http\n'}${env}`);
}

async function ready(h: Harness): Promise<string> {
  return h.waitFor('pages Ready', async () => {
    const s = await h.status('pages');
    return findCondition(s?.conditions, 'Ready')?.status === 'True' && s?.tools !== undefined ? s.url : undefined;
  }, 20_000);
}

const cli = (h: Harness, ...args: string[]) => runCli(['--dir', h.dir, '--state-dir', h.stateDir, 'tools', ...args], { env: h.env });

/** A 2025 client (the SDK v1's, which gives each page as the server sent it): both pages' names, and page 1's cursor. */
async function walkPages(url: string, token: string): Promise<{ pages: string[][]; client: V1Client }> {
  const c = new V1Client({ name: 'paging-test', version: '1' });
  await c.connect(new V1Transport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  const one = await c.listTools();
  expect(one.nextCursor).toBe('page-2');
  const two = await c.listTools({ cursor: one.nextCursor! });
  expect(two.nextCursor).toBeUndefined();
  expect(JSON.stringify(two)).not.toContain('id_rsa');
  return { pages: [one.tools.map((t) => t.name), two.tools.map((t) => t.name)], client: c };
}

describe('pinned tools of a server that pages its tools/list', () => {
  it.each(Object.keys(TRANSPORTS) as Transport[])('over %s: every page is pinned; a tool changed on page 2 is withheld from that page, a call to it refused, and ToolsDrifted names it', async (transport) => {
    const h = await harness();
    const deltaFile = join(h.reports, 'delta-description.txt');
    await h.write('pages.yaml', manifest(transport, deltaFile));
    const controller = await h.start();
    const url = await ready(h);
    await h.waitFor('the listed tools kept', () => readFile(join(h.stateDir, 'tools', 'pages.json'), 'utf8').catch(() => undefined));
    const locked = await cli(h, 'lock', 'pages');
    expect(locked.stderr).toBe('');
    // Every page is pinned, not only the first.
    expect(locked.stdout).toContain('4 tool(s) pinned');
    await h.waitFor('ToolsDrifted False', async () => findCondition((await h.status('pages'))?.conditions, 'ToolsDrifted')?.status === 'False');
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    expect((await walkPages(url, token)).pages).toEqual([['alpha', 'beta'], ['delta', 'gamma']]);

    // The rug pull on page 2, without a restart or list_changed: only a client's walk of the pages meets it.
    await writeFile(deltaFile, RUG_PULL);
    const { pages, client } = await walkPages(url, token);
    expect(pages).toEqual([['alpha', 'beta'], ['gamma']]);
    await expect(client.callTool({ name: 'delta', arguments: { text: 'hi' } })).rejects.toThrow(WITHHELD);
    expect((await client.callTool({ name: 'gamma', arguments: { text: 'hi' } })).content).toEqual([{ type: 'text', text: 'gamma: hi' }]);
    await client.close();
    // A 2026-07-28 client (the SDK v2's walks the pages itself) is refused it too.
    const modern = await versionedClient(url, token, '2026-07-28');
    expect((await modern.listTools()).tools.map((t) => t.name)).toEqual(['alpha', 'beta', 'gamma']);
    const refused = await modern.callTool({ name: 'delta', arguments: { text: 'hi' } }).then(JSON.stringify, (err: Error) => err.message);
    expect(refused).toMatch(WITHHELD);
    await modern.close();
    // The aggregate walks every page of its members: page 2's tools are there, its changed one withheld.
    const all = await versionedClient(controller.aggregateUrl!, token, '2025-11-25');
    expect((await all.listTools()).tools.map((t) => t.name)).toEqual(['pages__alpha', 'pages__beta', 'pages__gamma']);
    expect(await all.callTool({ name: 'pages__delta', arguments: { text: 'hi' } }).then(JSON.stringify, (err: Error) => err.message)).toMatch(/withheld/);
    await all.close();

    const drifted = await toolsDrifted(h, 'pages');
    expect(drifted.message).toContain('changed: delta');
    expect(drifted.message).toContain('withheld');
  }, 90_000);
});
