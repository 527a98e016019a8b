/**
 * `apiary client add|remove|list` and the controller's rewrite of registered
 * clients, with the built CLI: two registered clients in different formats
 * (Zed's JSONC settings, Codex CLI's TOML) follow a server installed and one
 * deleted, whoever changed the manifests (here: files written by hand), and
 * keep every other byte and comment.
 */
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { runCli, spawnUp } from './helpers/cli.js';
import { harness, tinyServer } from './helpers/controller.js';
import { tempDir } from './helpers/tmp.js';
import { clientHome } from './helpers/client-home.js';
import { waitFor } from './helpers/wait.js';

const ZED = `// Zed settings
{
  "theme": "One Dark", // mine
  "context_servers": {
    "local": { "command": "my-server" }
  }
}
`;

const CODEX = `# Codex settings
model = "o4-mini" # the model

[mcp_servers.mine]
command = "npx"
args = ["-y", "my-server"]
`;

/** The endpoint URL a server got, once it has one. */
async function urlOf(env: NodeJS.ProcessEnv, name: string): Promise<string> {
  const ready = await runCli(['wait', `mcpserver/${name}`, '--for=condition=Ready', '--timeout', '30s'], { env });
  expect(ready.code, ready.stderr).toBe(0);
  const got = JSON.parse((await runCli(['get', 'mcpserver', name, '-o', 'json'], { env })).stdout) as { status: { url: string } };
  return got.status.url;
}

/** Waits for the controller to rewrite a file so that `probe` holds. */
function until(file: string, probe: (text: string) => boolean, what: string): Promise<string> {
  return waitFor(what, async () => {
    const text = await readFile(file, 'utf8').catch(() => '');
    return probe(text) && text;
  }, 30_000, { observe: () => readFile(file, 'utf8').catch(() => '(none)') });
}

describe('registered clients follow the servers', () => {
  it('install and delete with a JSONC client and a TOML client registered: both files follow, every other byte kept', async () => {
    const h = await harness();
    const files = await clientHome({ zed: ZED, codex: CODEX });
    const { zed, codex } = files;
    const env = { ...h.env, ...files.env };
    await h.write('a.yaml', tinyServer('a', h));

    // Registered before any controller runs: nothing written yet, and the output says when it will be.
    const added = await runCli(['client', 'add', '--client', 'zed'], { env });
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain('the entries are written when apiary up starts');
    expect(await readFile(zed, 'utf8')).toBe(ZED);
    const registry = join(h.stateDir, 'client-registry.json');
    expect((await stat(registry)).mode & 0o777).toBe(0o600);

    const up = spawnUp(['up', '--no-ui'], env);
    const a = await urlOf(env, 'a');
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    // client config prints each client's own format.
    const goose = await runCli(['client', 'config', '--client', 'goose'], { env });
    expect(goose.stdout).toBe(`extensions:\n  a:\n    enabled: true\n    name: a\n    type: streamable_http\n    uri: ${a}\n    headers:\n      Authorization: Bearer ${token}\n    timeout: 300\n`);
    expect((await runCli(['client', 'config', '--client', 'gemini'], { env })).stdout).toContain(`"httpUrl": "${a}"`);
    // The controller writes the registered client when it starts.
    await until(zed, (t) => t.includes(a), 'a in zed');
    // Registered while the controller runs: written at once.
    const codexAdded = await runCli(['client', 'add', '--client', 'codex'], { env });
    expect(codexAdded.code, codexAdded.stderr).toBe(0);
    expect(codexAdded.stdout).toContain('wrote a');
    const codexText = await readFile(codex, 'utf8');
    // The file as it was is kept beside it, owner-only, as for every client file apiary writes.
    expect(await readFile(`${codex}.apiary-backup`, 'utf8')).toBe(CODEX);
    expect((await stat(`${codex}.apiary-backup`)).mode & 0o777).toBe(0o600);
    expect(codexText).toBe(`${CODEX}\n[mcp_servers.a]\nurl = ${JSON.stringify(a)}\nhttp_headers = { Authorization = "Bearer ${token}" }\n`);

    // A server whose name the person's own entry in Zed already has: left alone, and the client shows as stale with why.
    const zedOwn = (await readFile(zed, 'utf8')).replace('"local": { "command": "my-server" }', '"local": { "command": "my-server" },\n    "b": { "command": "their-b" }');
    await writeFile(zed, zedOwn);
    // A server installed by hand: both files follow.
    await h.write('b.yaml', tinyServer('b', h));
    const b = await urlOf(env, 'b');
    await until(codex, (t) => t.includes(b), 'b in codex');
    // Zed comes before Codex in the registry: once Codex has b, the controller has been through Zed too.
    expect(await readFile(zed, 'utf8')).toBe(zedOwn);
    const taken = JSON.parse((await runCli(['client', 'list', '-o', 'json'], { env })).stdout) as { client: string; state: string; detail?: string }[];
    expect(taken.find((s) => s.client === 'zed')).toMatchObject({ state: 'stale', detail: 'b taken by an entry apiary did not write' });
    // The person takes theirs out: the next rewrite (the next change, or a resync) fills it in.
    await writeFile(zed, zedOwn.replace(',\n    "b": { "command": "their-b" }', ''));

    const list = await runCli(['client', 'list', '-o', 'json'], { env });
    const states = JSON.parse(list.stdout) as { client: string; registered: boolean; state: string; detail?: string; file: string }[];
    expect(states.filter((s) => s.registered).map((s) => [s.client, s.state, s.detail, s.file])).toEqual([
      ['zed', 'stale', 'add b', zed],
      ['codex', 'connected', undefined, codex],
    ]);

    // An entry of apiary's changed by hand: left alone, and the client shows as stale with why.
    const handEdited = (await readFile(codex, 'utf8')).replace(`url = ${JSON.stringify(b)}`, 'url = "http://example.invalid/mcp"');
    await writeFile(codex, handEdited);
    const stale = JSON.parse((await runCli(['client', 'list', '-o', 'json'], { env })).stdout) as { client: string; state: string; detail?: string }[];
    expect(stale.find((s) => s.client === 'codex')).toMatchObject({ state: 'stale', detail: 'b changed by hand' });
    await writeFile(codex, handEdited.replace('url = "http://example.invalid/mcp"', `url = ${JSON.stringify(b)}`));

    // A server deleted: its entries go from both; the rest stays as it was.
    await rm(join(h.dir, 'a.yaml'));
    const codexAfter = await until(codex, (t) => !t.includes(a), 'a gone from codex');
    const zedAfter = await until(zed, (t) => !t.includes(a) && t.includes(b), 'a gone from zed and b in');
    expect(zedAfter.startsWith('// Zed settings\n{\n  "theme": "One Dark", // mine\n  "context_servers": {\n    "local": { "command": "my-server" },\n    "b": {')).toBe(true);
    expect(codexAfter).toBe(`${CODEX}\n[mcp_servers.b]\nurl = ${JSON.stringify(b)}\nhttp_headers = { Authorization = "Bearer ${token}" }\n`);

    // client remove: apiary's entries out, the files as they were, and no more rewrites.
    for (const client of ['zed', 'codex']) {
      const removed = await runCli(['client', 'remove', '--client', client], { env });
      expect(removed.code, removed.stderr).toBe(0);
      expect(removed.stdout).toContain(`${client} unregistered`);
    }
    expect(await readFile(zed, 'utf8')).toBe(ZED);
    expect(await readFile(codex, 'utf8')).toBe(CODEX);
    const unregistered = JSON.parse((await runCli(['client', 'list', '-o', 'json'], { env })).stdout) as { client: string; registered: boolean; state: string }[];
    expect(unregistered.filter((s) => s.client === 'zed' || s.client === 'codex').map((s) => [s.client, s.registered, s.state])).toEqual([
      ['zed', false, 'not configured'],
      ['codex', false, 'not configured'],
    ]);
    up.child.kill('SIGTERM');
    expect(await up.exited).toBe(0);
  }, 120_000);

  it('a malformed client file is reported with its file and line, nothing is written, and the client is not registered', async () => {
    const h = await harness();
    const home = await tempDir('apiary-home-');
    const env = { ...h.env, HOME: home };
    const codex = join(home, '.codex', 'config.toml');
    await mkdir(join(home, '.codex'));
    const broken = 'model = "x"\n[mcp_servers.mine]\ncommand "npx"\n';
    await writeFile(codex, broken);
    await h.write('a.yaml', tinyServer('a', h));
    spawnUp(['up', '--no-ui'], env);
    await urlOf(env, 'a');
    const added = await runCli(['client', 'add', '--client', 'codex'], { env });
    expect(added.code).not.toBe(0);
    expect(added.stderr).toContain(`${codex}:3: not a TOML table header, key = value or comment; nothing was written`);
    expect(await readFile(codex, 'utf8')).toBe(broken);
    const list = JSON.parse((await runCli(['client', 'list', '-o', 'json'], { env })).stdout) as { client: string; registered: boolean; state: string; detail?: string }[];
    const row = list.find((s) => s.client === 'codex')!;
    expect([row.registered, row.state]).toEqual([false, 'unreadable']);
    expect(row.detail).toContain(`${codex}:3:`);

    // A registry that is not JSON is an error that names it, never taken as empty (which would stop every sync unseen).
    await writeFile(join(h.stateDir, 'client-registry.json'), '{ not json');
    const broken2 = await runCli(['client', 'list'], { env });
    expect(broken2.code).not.toBe(0);
    expect(broken2.stderr).toContain(`${join(h.stateDir, 'client-registry.json')} is not JSON`);
  }, 120_000);
});
