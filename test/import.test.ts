/**
 * `apiary import`: each client's real file (comments, unknown keys, tokens
 * in env, args and headers) brought into apiary. After it, no canary value
 * is anywhere in plain text (client file, manifests, state); the servers run
 * with the right values (the stdio test server reports hashes, the hosted
 * ones record what they were sent); the client reaches them through apiary;
 * everything of the file but its servers is byte-identical; --dry-run
 * writes nothing, a second import changes nothing, --undo gives the file
 * back byte for byte.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { applyEdits, findNodeAtLocation, getNodeValue, modify, parseTree } from 'jsonc-parser';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { findCondition } from '../src/api/status.js';
import { runCli } from './helpers/cli.js';
import { harness, TINY_SERVER, type Harness } from './helpers/controller.js';
import { filesUnder, tempDir } from './helpers/tmp.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const FIXTURES = new URL('./fixtures/clients/', import.meta.url);

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

function mcpServer(): McpServer {
  const server = new McpServer({ name: 'hosted', version: '1.0.0' });
  server.registerTool('shout', { description: 'Upper-cases a word', inputSchema: { word: z.string() } }, async ({ word }) => ({ content: [{ type: 'text', text: word.toUpperCase() }] }));
  return server;
}

async function listen(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

/** A hosted Streamable HTTP server that answers only its bearer key, recording a hash of every Authorization it got. */
async function hostedHttp(key: string): Promise<{ url: string; seen: Set<string> }> {
  const seen = new Set<string>();
  const port = await listen(
    createServer((req, res) => {
      seen.add(sha(String(req.headers.authorization ?? '')));
      if (req.headers.authorization !== `Bearer ${key}`) return void res.writeHead(401).end();
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      res.on('close', () => void transport.close());
      void mcpServer()
        .connect(transport)
        .then(() => transport.handleRequest(req, res));
    }),
  );
  return { url: `http://127.0.0.1:${port}/mcp`, seen };
}

/** A hosted server of the 2024 SSE transport that answers only its X-Api-Key, recording a hash of every key it got. */
async function hostedSse(key: string): Promise<{ url: string; seen: Set<string> }> {
  const seen = new Set<string>();
  const sessions = new Map<string, SSEServerTransport>();
  const port = await listen(
    createServer((req, res) => {
      seen.add(sha(String(req.headers['x-api-key'] ?? '')));
      if (req.headers['x-api-key'] !== key) return void res.writeHead(401).end();
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'GET' && url.pathname === '/sse') {
        const transport = new SSEServerTransport('/messages', res);
        sessions.set(transport.sessionId, transport);
        void mcpServer().connect(transport);
        return;
      }
      const transport = sessions.get(url.searchParams.get('sessionId') ?? '');
      if (req.method === 'POST' && transport !== undefined) return void transport.handlePostMessage(req, res);
      res.writeHead(404).end();
    }),
  );
  return { url: `http://127.0.0.1:${port}/sse`, seen };
}

type Kind = 'claude' | 'cursor' | 'vscode' | 'windsurf';
const PLACES: Record<Kind, { path: string[]; container: string[] }> = {
  claude: { path: ['.claude.json'], container: ['mcpServers'] },
  cursor: { path: ['.cursor', 'mcp.json'], container: ['mcpServers'] },
  vscode: { path: ['.config', 'Code', 'User', 'mcp.json'], container: ['servers'] },
  windsurf: { path: ['.codeium', 'windsurf', 'mcp_config.json'], container: ['mcpServers'] },
};

interface Setup {
  h: Harness;
  home: string;
  env: NodeJS.ProcessEnv;
  file: string;
  original: string;
  http: Awaited<ReturnType<typeof hostedHttp>>;
  sse: Awaited<ReturnType<typeof hostedSse>>;
}

async function setup(kind: Kind): Promise<Setup> {
  const h = await harness();
  const home = await tempDir('apiary-home-');
  const http = await hostedHttp(`canary-hdr-${kind}`);
  const sse = await hostedSse(`canary-sse-${kind}`);
  const original = (await readFile(new URL(`${kind}.json`, FIXTURES), 'utf8'))
    .replaceAll('@TINY_SERVER@', TINY_SERVER)
    .replaceAll('@REPORTS@', h.reports)
    .replaceAll('@HTTP_URL@', http.url)
    .replaceAll('@SSE_URL@', sse.url);
  const file = join(home, ...PLACES[kind].path);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, original);
  await chmod(file, 0o644);
  return { h, home, env: { ...h.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config') }, file, original, http, sse };
}

/** Every file under the home, the manifest directory and the state directory, with its text. */
async function snapshot(s: Setup): Promise<Map<string, string>> {
  const files = [...(await filesUnder(s.home)), ...(await filesUnder(s.h.dir).catch(() => [])), ...(await filesUnder(s.h.stateDir).catch(() => []))];
  // A running controller writes its status through temp files, which may be gone by the time they are read.
  const read = await Promise.all(files.sort().map(async (f) => [f, await readFile(f, 'utf8').catch(() => undefined)] as const));
  return new Map(read.filter((e): e is readonly [string, string] => e[1] !== undefined));
}

/** The text of a JSON(C) file outside the object at `container`: what import must leave byte for byte. */
function outside(text: string, container: string[]): [string, string] {
  const node = findNodeAtLocation(parseTree(text, [], { allowTrailingComma: true })!, container)!;
  return [text.slice(0, node.offset), text.slice(node.offset + node.length)];
}

describe('apiary import', () => {
  it.each(['claude', 'cursor', 'vscode', 'windsurf'] as const)('%s: credentials sealed, servers run with them, the client reaches apiary, --undo gives the file back', async (kind) => {
    const s = await setup(kind);
    const { h, env } = s;
    const container = PLACES[kind].container;

    // --dry-run: manifests and the diff, every credential redacted, nothing written.
    const before = await snapshot(s);
    const dry = await runCli(['import', '--client', kind, '--dry-run'], { env });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('mcpserver/github would be created from GitHub');
    expect(dry.stdout).toContain('kind: Secret');
    expect(dry.stdout).toMatch(/^-.*\[redacted\]/m);
    expect(dry.stdout + dry.stderr).not.toContain('canary');
    expect(await snapshot(s)).toEqual(before);

    const imported = await runCli(['import', '--client', kind], { env });
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toContain('env GITHUB_TOKEN -> secret/github-token key GITHUB_TOKEN (sealed)');
    expect(imported.stdout).toMatch(/args\[\d\] -> \$\(GITHUB_API_KEY\), secret\/github-api-key key GITHUB_API_KEY \(sealed\)/);
    expect(imported.stdout).toContain('header Authorization -> $(LINEAR_AUTHORIZATION), secret/linear-authorization key LINEAR_AUTHORIZATION (sealed)');
    expect(imported.stderr).toContain('warning: mcpserver/github: a secret goes into its command line');
    expect(imported.stdout + imported.stderr).not.toContain('canary');

    // No plaintext left: not in the client file, its sealed copy, the manifests or the state directory.
    const after = await snapshot(s);
    for (const [path, text] of after) expect(text.includes('canary'), path).toBe(false);
    expect([...after.keys()]).toContain(`${s.file}.apiary-import.sealed`);
    expect((await stat(`${s.file}.apiary-import.sealed`)).mode & 0o777).toBe(0o600);
    // Everything of the file but its servers is as it was, byte for byte.
    const text = await readFile(s.file, 'utf8');
    expect(outside(text, container)).toEqual(outside(s.original, container));
    expect((await stat(s.file)).mode & 0o777).toBe(0o600);
    const entries = findValue(text, container) as Record<string, Record<string, unknown>>;
    expect(Object.keys(entries)).toEqual(['GitHub', 'linear', 'legacy']);

    // The servers run with the values the client had.
    await h.start();
    const pid = await h.waitFor('github running', async () => (await h.status('github'))?.pid, 30_000);
    const report = await h.report('github', pid);
    expect(report.hashes['GITHUB_TOKEN']).toBe(sha(`canary-env-${kind}`));
    expect(report.args).toContain(sha(`canary-arg-${kind}`));
    for (const name of ['linear', 'legacy']) {
      await h.waitFor(`${name} Ready`, async () => findCondition((await h.status(name))?.conditions, 'Ready')?.status === 'True', 30_000);
    }
    expect(s.http.seen.has(sha(`Bearer canary-hdr-${kind}`))).toBe(true);
    expect(s.sse.seen.has(sha(`canary-sse-${kind}`))).toBe(true);
    // And the client, with what its file now says, reaches a server through apiary.
    const linear = entries['linear']!;
    const url = String(linear['url'] ?? linear['serverUrl']);
    const client = new Client({ name: 'import-test', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: linear['headers'] as Record<string, string> } }));
    expect((await client.callTool({ name: 'shout', arguments: { word: 'hi' } })).content).toEqual([{ type: 'text', text: 'HI' }]);
    await client.close();

    // A second import changes nothing.
    const settled = await snapshot(s);
    const again = await runCli(['import', '--client', kind], { env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('nothing to import');
    const now = await snapshot(s);
    for (const path of [s.file, ...[...settled.keys()].filter((p) => p.startsWith(h.dir))]) expect(now.get(path), path).toBe(settled.get(path));

    // --undo: the file as it was, byte for byte, with its mode; the sealed copy is gone.
    const undone = await runCli(['import', '--client', kind, '--undo'], { env });
    expect(undone.code, undone.stderr).toBe(0);
    expect(await readFile(s.file, 'utf8')).toBe(s.original);
    expect((await stat(s.file)).mode & 0o777).toBe(0o644);
    await expect(stat(`${s.file}.apiary-import.sealed`)).rejects.toThrow();
    const twice = await runCli(['import', '--client', kind, '--undo'], { env });
    expect([twice.code, twice.stderr]).toEqual([1, expect.stringContaining('nothing of an import from')]);

    // Imported again after --undo: the servers are there already, and the entries point at them again, as before.
    const back = await runCli(['import', '--client', kind], { env });
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toContain('mcpserver/github was imported from GitHub before; the entry points at it again');
    expect(await readFile(s.file, 'utf8')).toBe(text);
    for (const [path, content] of await snapshot(s)) expect(content.includes('canary'), path).toBe(false);

    // The client changes its own file after the import (Claude Code does at every start): --undo gives back the imported entries only, the rest stays as it is now.
    const later = (t: string): string => applyEdits(t, modify(t, ['addedLater'], true, { formattingOptions: { insertSpaces: true, tabSize: 2 } }));
    await writeFile(s.file, later(text));
    const entriesBack = await runCli(['import', '--client', kind, '--undo'], { env });
    expect(entriesBack.code, entriesBack.stderr).toBe(0);
    expect(entriesBack.stdout).toMatch(/changed since the import, so only the imported entries were given back \((GitHub|linear|legacy)(, (GitHub|linear|legacy)){2}\)/);
    expect(await readFile(s.file, 'utf8')).toBe(later(s.original));
  }, 120_000);
});

function findValue(text: string, container: string[]): unknown {
  const node = findNodeAtLocation(parseTree(text, [], { allowTrailingComma: true })!, container)!;
  return getNodeValue(node);
}

describe('apiary import --project, clashes and --rename', () => {
  it("Claude Code's project servers (the project's .mcp.json and its entry in ~/.claude.json) come in with --project; a clash is skipped unless --rename", async () => {
    const h = await harness();
    const home = await tempDir('apiary-home-');
    const project = await tempDir('apiary-project-');
    const env = { ...h.env, HOME: home };
    const entry = (token: string): Record<string, unknown> => ({ command: 'node', args: [TINY_SERVER], env: { TOKEN: token } });
    const user = `${JSON.stringify({ mcpServers: { global: entry('canary-global') }, projects: { [project]: { allowedTools: ['x'], mcpServers: { local: entry('canary-local') } }, '/other': { mcpServers: { other: entry('canary-other') } } } }, null, 2)}\n`;
    const shared = `{\n  "mcpServers": {\n    "shared": ${JSON.stringify(entry('canary-shared'))}\n  }\n}\n`;
    await writeFile(join(home, '.claude.json'), user);
    await writeFile(join(project, '.mcp.json'), shared);
    await mkdir(h.dir, { recursive: true });
    await writeFile(join(h.dir, 'shared.yaml'), 'apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: shared\nspec:\n  command: node\n');

    const first = await runCli(['import', '--client', 'claude', '--project', project], { env });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('shared: mcpserver/shared already exists; skipped (--rename imports it under another name)');
    expect(first.stdout).toContain('mcpserver/local created');
    // Only the project's servers: the user's own and another project's stay as they are.
    const after = JSON.parse(await readFile(join(home, '.claude.json'), 'utf8')) as { mcpServers: Record<string, unknown>; projects: Record<string, { allowedTools?: string[]; mcpServers: Record<string, { url?: string }> }> };
    expect(after.mcpServers['global']).toEqual(entry('canary-global'));
    expect(after.projects['/other']).toEqual({ mcpServers: { other: entry('canary-other') } });
    expect(after.projects[project]!.allowedTools).toEqual(['x']);
    expect(after.projects[project]!.mcpServers['local']!.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    expect(await readFile(join(project, '.mcp.json'), 'utf8')).toBe(shared);

    const none = await runCli(['import', '--client', 'claude', '--project', project, '--only', 'nosuch'], { env });
    expect([none.code, none.stderr]).toEqual([0, expect.stringContaining('warning: --only names "nosuch", which no claude file here has (it has: shared, local)')]);
    const renamed = await runCli(['import', '--client', 'claude', '--project', project, '--rename'], { env });
    expect(renamed.code, renamed.stderr).toBe(0);
    expect(renamed.stdout).toContain('mcpserver/shared-claude created');
    expect(renamed.stdout).toContain('local already points at apiary; left as it is');
    for (const file of [...(await filesUnder(h.dir)), join(home, '.claude.json'), join(project, '.mcp.json')]) {
      expect((await readFile(file, 'utf8')).includes('canary-local') || (await readFile(file, 'utf8')).includes('canary-shared'), file).toBe(false);
    }

    const undone = await runCli(['import', '--client', 'claude', '--project', project, '--undo'], { env });
    expect(undone.code, undone.stderr).toBe(0);
    expect(await readFile(join(home, '.claude.json'), 'utf8')).toBe(user);
    expect(await readFile(join(project, '.mcp.json'), 'utf8')).toBe(shared);
  }, 60_000);
});

describe('apiary import --client claude-desktop', () => {
  it('points Claude Desktop, which only starts processes, at apiary proxy NAME: a stdio client reaches the server through it', async () => {
    const h = await harness();
    const home = await tempDir('apiary-home-');
    const file = join(home, '.config', 'Claude', 'claude_desktop_config.json');
    const original = (await readFile(new URL('claude-desktop.json', FIXTURES), 'utf8')).replaceAll('@TINY_SERVER@', TINY_SERVER).replaceAll('@REPORTS@', h.reports);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, original);
    const env = { ...h.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config') };

    const imported = await runCli(['import', '--client', 'claude-desktop'], { env });
    expect(imported.code, imported.stderr).toBe(0);
    // The flag's name is taken by the entry's own GITHUB_TOKEN (another value): the argument gets a variable of its own.
    expect(imported.stdout).toContain('args[1] -> $(GITHUB_TOKEN_2), secret/github-token-2 key GITHUB_TOKEN_2 (sealed)');
    for (const path of [...(await filesUnder(home)), ...(await filesUnder(h.dir)), ...(await filesUnder(h.stateDir))]) expect((await readFile(path, 'utf8')).includes('canary'), path).toBe(false);
    const text = await readFile(file, 'utf8');
    expect(outside(text, ['mcpServers'])).toEqual(outside(original, ['mcpServers']));
    const entry = (findValue(text, ['mcpServers']) as Record<string, { command: string; args: string[] }>)['GitHub']!;
    expect(entry.args.slice(-6)).toEqual(['proxy', 'github', '--dir', h.dir, '--state-dir', h.stateDir]);

    await h.start();
    const pid = await h.waitFor('github running', async () => (await h.status('github'))?.pid, 30_000);
    const report = await h.report('github', pid);
    expect(report.hashes['GITHUB_TOKEN']).toBe(sha('canary-env-claude-desktop'));
    expect(report.args).toEqual([sha('--token=canary-arg-claude-desktop')]);
    await h.waitFor('github Ready', async () => findCondition((await h.status('github'))?.conditions, 'Ready')?.status === 'True', 30_000);
    // As Claude Desktop does: start the entry's command, speak MCP on its stdio.
    const client = new Client({ name: 'desktop-test', version: '1' });
    await client.connect(new StdioClientTransport({ command: entry.command, args: entry.args, env: { PATH: process.env['PATH'] ?? '', HOME: home }, stderr: 'pipe' }));
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['noop']);
    await client.close();
    // With apiary down, the shim answers at once with an error naming the endpoint; the client is not left waiting.
    await h.controller!.stop();
    const orphan = new Client({ name: 'desktop-test', version: '1' });
    await expect(orphan.connect(new StdioClientTransport({ command: entry.command, args: entry.args, env: { PATH: process.env['PATH'] ?? '', HOME: home }, stderr: 'pipe' }))).rejects.toThrow(/apiary's endpoint at http:\/\/127\.0\.0\.1:\d+\/mcp did not take the request/);
    await orphan.close();

    // An imported entry changed since by the person: nothing is given back unless --force (their change would be lost).
    const edited = text.replace('"command"', '"note": "mine",\n      "command"');
    await writeFile(file, edited);
    const refused = await runCli(['import', '--client', 'claude-desktop', '--undo'], { env });
    expect([refused.code, refused.stderr]).toEqual([2, expect.stringContaining('was changed since apiary imported from it; nothing was given back')]);
    expect(await readFile(file, 'utf8')).toBe(edited);
    const undone = await runCli(['import', '--client', 'claude-desktop', '--undo', '--force'], { env });
    expect(undone.code, undone.stderr).toBe(0);
    expect(await readFile(file, 'utf8')).toBe(original);
  }, 90_000);
});
