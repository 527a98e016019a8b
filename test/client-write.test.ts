/**
 * `client config --write` into each client's own file, in a temporary HOME:
 * other entries and the file's formatting kept, a backup made, and
 * `--remove` leaving the file byte-identical to what it was.
 */
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { runCli } from './helpers/cli.js';
import { harness, tinyServer, type Harness } from './helpers/controller.js';
import { tempDir } from './helpers/tmp.js';
import { updateClientFile } from '../src/clients/config-file.js';

/** One writer as the CLI writes (its --write calls this). */
async function writeEntries(file: string, entries: Record<string, unknown>, layout: StateLayout): Promise<void> {
  await updateClientFile('cursor', file, entries, layout);
}

async function readyServer(): Promise<{ h: Harness; url: string; token: string }> {
  const h = await harness();
  await h.write('a.yaml', tinyServer('a', h));
  await h.start();
  const status = await h.waitFor('a Ready', async () => {
    const s = await h.status('a');
    return findCondition(s?.conditions, 'Ready')?.status === 'True' && s;
  });
  return { h, url: status.url!, token: (await readEndpointToken(new StateLayout(h.stateDir)))! };
}

const CLAUDE_BEFORE = '{\n  "numStartups": 12,\n  "theme": "dark",\n  "mcpServers": {\n    "other": { "type": "stdio", "command": "other-server" }\n  },\n  "projects": {}\n}\n';
const CURSOR_BEFORE = '{\n\t"mcpServers": {}\n}';

describe('client config --write', () => {
  it('merges into each client\'s own file, keeps everything else, and --remove leaves it byte-identical', async () => {
    const { h, url, token } = await readyServer();
    const home = await tempDir('apiary-home-');
    const env = { ...h.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config') };
    await writeFile(join(home, '.claude.json'), CLAUDE_BEFORE);
    await chmod(join(home, '.claude.json'), 0o644);
    await mkdir(join(home, '.cursor'));
    await writeFile(join(home, '.cursor', 'mcp.json'), CURSOR_BEFORE);

    const cases = [
      { client: 'claude', file: join(home, '.claude.json'), key: 'mcpServers', entry: { type: 'http', url, headers: { Authorization: `Bearer ${token}` } }, before: CLAUDE_BEFORE },
      { client: 'cursor', file: join(home, '.cursor', 'mcp.json'), key: 'mcpServers', entry: { url, headers: { Authorization: `Bearer ${token}` } }, before: CURSOR_BEFORE },
      { client: 'vscode', file: join(home, '.config', 'Code', 'User', 'mcp.json'), key: 'servers', entry: { type: 'http', url, headers: { Authorization: `Bearer ${token}` } }, before: undefined },
    ];
    for (const c of cases) {
      const dry = await runCli(['client', 'config', '--client', c.client, '--write', '--dry-run'], { env });
      expect(dry.stdout).toContain('+');
      expect(await readFile(c.file, 'utf8').catch(() => undefined)).toBe(c.before);

      const written = await runCli(['client', 'config', '--client', c.client, '--write'], { env });
      expect(written.code, written.stderr).toBe(0);
      expect(written.stdout).toContain(': added a');
      const text = await readFile(c.file, 'utf8');
      const parsed = JSON.parse(text) as Record<string, Record<string, unknown>>;
      expect(parsed[c.key]!['a']).toEqual(c.entry);
      if (c.before !== undefined) {
        // Everything else as it was, down to the indentation, and the previous file kept.
        expect(await readFile(`${c.file}.apiary-backup`, 'utf8')).toBe(c.before);
        const original = JSON.parse(c.before) as Record<string, unknown>;
        for (const [k, v] of Object.entries(original)) if (k !== c.key) expect(parsed[k]).toEqual(v);
      }
      if (c.client === 'claude') {
        expect(text).toContain('    "other": { "type": "stdio", "command": "other-server" },\n    "a": {\n      "type": "http",');
        // The endpoint token went in: the file is the owner's alone now, and the output says so.
        expect((await stat(c.file)).mode & 0o777).toBe(0o600);
        expect(written.stdout).toContain('mode 644 -> 600');
        // A backup of a file without credentials needs no warning.
        expect(written.stderr).not.toContain('plaintext');
      }
      if (c.client === 'cursor') expect(text).toContain('\t"mcpServers": {\n\t\t"a": {\n\t\t\t"url"');
      // Writing again changes nothing.
      expect((await runCli(['client', 'config', '--client', c.client, '--write'], { env })).stdout).toContain('already up to date');

      const removed = await runCli(['client', 'config', '--client', c.client, '--remove'], { env });
      expect(removed.code, removed.stderr).toBe(0);
      expect(await readFile(c.file, 'utf8').catch(() => undefined)).toBe(c.before);
      await expect(stat(`${c.file}.apiary-backup`)).rejects.toThrow();
      // Back as it was, its mode too.
      if (c.client === 'claude') expect((await stat(c.file)).mode & 0o777).toBe(0o644);
    }
  });

  it('when the file was changed since, --remove takes out only apiary\'s entries; a same-named entry apiary did not write is left alone', async () => {
    const { h } = await readyServer();
    const home = await tempDir('apiary-home-');
    const env = { ...h.env, HOME: home };
    const file = join(home, '.claude.json');
    await writeFile(file, CLAUDE_BEFORE);
    await runCli(['client', 'config', '--write'], { env });
    // The person adds a key of their own after apiary wrote.
    const edited = (await readFile(file, 'utf8')).replace('"theme": "dark"', '"theme": "light"');
    await writeFile(file, edited);
    const removed = await runCli(['client', 'config', '--remove'], { env });
    expect(removed.stdout).toContain("apiary's entries taken out; everything else left as it is");
    const after = JSON.parse(await readFile(file, 'utf8')) as { theme: string; mcpServers: Record<string, unknown> };
    expect(after.theme).toBe('light');
    expect(Object.keys(after.mcpServers)).toEqual(['other']);

    // An entry named like the server, written by someone else, is not replaced without --force.
    await writeFile(file, '{\n  "mcpServers": {\n    "a": { "command": "mine" }\n  }\n}\n');
    const refused = await runCli(['client', 'config', '--write'], { env });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('already has an entry "a" that apiary did not write');
    expect(refused.stderr).toContain('--force replaces');
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ mcpServers: { a: { command: 'mine' } } });
    const forced = await runCli(['client', 'config', '--write', '--force'], { env });
    expect(forced.stdout).toContain('updated a');
  });

  it('an entry that was already there, identical, is not apiary\'s: --remove leaves it', async () => {
    const { h, url, token } = await readyServer();
    const home = await tempDir('apiary-home-');
    const env = { ...h.env, HOME: home };
    const file = join(home, '.claude.json');
    const mine = `${JSON.stringify({ mcpServers: { a: { type: 'http', url, headers: { Authorization: `Bearer ${token}` } } } }, null, 2)}\n`;
    await writeFile(file, mine);
    expect((await runCli(['client', 'config', '--write'], { env })).stdout).toContain('already up to date');
    expect((await runCli(['client', 'config', '--remove'], { env })).stdout).toContain("nothing of apiary's to remove");
    expect(await readFile(file, 'utf8')).toBe(mine);
  });

  it("a new user's story: a clash-only write takes nothing over and fails; --force keeps a real backup; --remove brings the user's entries back", async () => {
    const { h, token } = await readyServer();
    const home = await tempDir('apiary-home-');
    const env = { ...h.env, HOME: home };
    const file = join(home, '.claude.json');
    const mine = '{\n  "mcpServers": {\n    "a": { "command": "mine", "env": { "MY_TOKEN": "user-secret-123" } }\n  }\n}\n';
    await writeFile(file, mine);
    await chmod(file, 0o644);

    // Every entry clashes: nothing written, nothing recorded as apiary's, and a failure that says how to go on.
    const clash = await runCli(['client', 'config', '--write'], { env });
    expect(clash.code, clash.stdout).not.toBe(0);
    expect(clash.stderr).toContain('already has an entry "a" that apiary did not write');
    expect(clash.stderr).toContain('--force replaces');
    expect(clash.stdout).not.toContain('already up to date');
    expect(await readFile(file, 'utf8')).toBe(mine);
    const record = JSON.parse(await readFile(new StateLayout(h.stateDir).clientsFile, 'utf8').catch(() => '{}')) as Record<string, unknown>;
    expect(record[file]).toBeUndefined();

    // --force: the user's file is kept in a backup that exists, at the path printed; a warning says it holds their token.
    const forced = await runCli(['client', 'config', '--write', '--force'], { env });
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toContain('updated a');
    const backup = /the previous file is kept as (\S+)\)/.exec(forced.stdout)?.[1];
    expect(backup, forced.stdout).toBeDefined();
    expect(backup).toBe(`${file}.apiary-backup`);
    expect(await readFile(backup!, 'utf8')).toBe(mine);
    expect((await stat(backup!)).mode & 0o777).toBe(0o600);
    expect(forced.stderr).toContain(`${backup!} holds plaintext credentials`);
    expect(forced.stderr + forced.stdout).not.toContain('user-secret-123');
    expect(forced.stderr + forced.stdout).not.toContain(token);
    expect((await stat(file)).mode & 0o777).toBe(0o600);

    // --remove: the user's own entries come back.
    const removed = await runCli(['client', 'config', '--remove'], { env });
    expect(removed.code, removed.stderr).toBe(0);
    expect(await readFile(file, 'utf8')).toBe(mine);
    expect((await stat(file)).mode & 0o777).toBe(0o644);
  });

  it('a file changed by hand after a --force keeps the replaced entry in the backup, and --remove puts it back', async () => {
    const { h } = await readyServer();
    const home = await tempDir('apiary-home-');
    const env = { ...h.env, HOME: home };
    const file = join(home, '.claude.json');
    await writeFile(file, '{\n  "mcpServers": {\n    "a": { "command": "mine" }\n  }\n}\n');
    expect((await runCli(['client', 'config', '--write', '--force'], { env })).code).toBe(0);
    // The person adds an entry of their own: the file is no longer as apiary left it.
    const edited = JSON.parse(await readFile(file, 'utf8')) as { mcpServers: Record<string, unknown> };
    edited.mcpServers['b'] = { command: 'also-mine' };
    await writeFile(file, `${JSON.stringify(edited, null, 2)}\n`);
    const removed = await runCli(['client', 'config', '--remove'], { env });
    expect(removed.code, removed.stderr).toBe(0);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ mcpServers: { a: { command: 'mine' }, b: { command: 'also-mine' } } });
    expect(removed.stdout).toContain('a put back as it was before --force');
  });

  it('--force over an entry changed by hand since apiary wrote it keeps the file as it is now in a backup of its own, and --remove puts the entry back', async () => {
    const { h } = await readyServer();
    const home = await tempDir('apiary-home-');
    const env = { ...h.env, HOME: home };
    const file = join(home, '.claude.json');
    await writeFile(file, CLAUDE_BEFORE);
    expect((await runCli(['client', 'config', '--write'], { env })).code).toBe(0);
    // The person rewrites apiary's entry as their own: it is theirs now.
    const edited = JSON.parse(await readFile(file, 'utf8')) as { mcpServers: Record<string, unknown> };
    edited.mcpServers['a'] = { command: 'my-own-a' };
    const theirs = `${JSON.stringify(edited, null, 2)}\n`;
    await writeFile(file, theirs);
    const refused = await runCli(['client', 'config', '--write'], { env });
    expect(refused.code).not.toBe(0);
    expect(await readFile(file, 'utf8')).toBe(theirs);
    const forced = await runCli(['client', 'config', '--write', '--force'], { env });
    expect(forced.code, forced.stderr).toBe(0);
    const extra = /the previous file is kept as (\S+)\)/.exec(forced.stdout)?.[1];
    expect(extra, forced.stdout).toMatch(/\.claude\.json\.apiary-backup-\d{8}T\d{6}Z$/);
    expect(await readFile(extra!, 'utf8')).toBe(theirs);
    // The original is kept as well.
    expect(await readFile(`${file}.apiary-backup`, 'utf8')).toBe(CLAUDE_BEFORE);
    const removed = await runCli(['client', 'config', '--remove'], { env });
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain('a put back as it was before --force');
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(edited);
    await expect(stat(extra!)).rejects.toThrow();
    await expect(stat(`${file}.apiary-backup`)).rejects.toThrow();
  });

  it('ten writers at once, each with an entry of its own, all end up in the file', async () => {
    const home = await tempDir('apiary-home-');
    const file = join(home, '.cursor', 'mcp.json');
    await mkdir(join(home, '.cursor'));
    await writeFile(file, '{\n  "mcpServers": {\n    "mine": { "command": "mine" }\n  }\n}\n');
    const writers = await Promise.all(Array.from({ length: 10 }, async (_, i) => ({ i, layout: new StateLayout(await tempDir('apiary-state-')) })));
    await Promise.all(writers.map(({ i, layout }) => writeEntries(file, { [`s${i}`]: { url: `http://127.0.0.1:${9000 + i}/mcp` } }, layout)));
    const after = JSON.parse(await readFile(file, 'utf8')) as { mcpServers: Record<string, unknown> };
    expect(Object.keys(after.mcpServers).sort()).toEqual(['mine', ...writers.map(({ i }) => `s${i}`)].sort());
    // No lock file left beside the user's file.
    expect((await readdir(join(home, '.cursor'))).filter((f) => f.includes('lock'))).toEqual([]);
  });
});
