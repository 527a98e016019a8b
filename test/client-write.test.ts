/**
 * `client config --write` into each client's own file, in a temporary HOME:
 * other entries and the file's formatting kept, a backup made, and
 * `--remove` leaving the file byte-identical to what it was.
 */
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { runCli } from './helpers/cli.js';
import { harness, tinyServer, type Harness } from './helpers/controller.js';
import { tempDir } from './helpers/tmp.js';

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
        expect((await stat(c.file)).mode & 0o777).toBe(0o644);
      }
      if (c.client === 'cursor') expect(text).toContain('\t"mcpServers": {\n\t\t"a": {\n\t\t\t"url"');
      // Writing again changes nothing.
      expect((await runCli(['client', 'config', '--client', c.client, '--write'], { env })).stdout).toContain('already up to date');

      const removed = await runCli(['client', 'config', '--client', c.client, '--remove'], { env });
      expect(removed.code, removed.stderr).toBe(0);
      expect(await readFile(c.file, 'utf8').catch(() => undefined)).toBe(c.before);
      await expect(stat(`${c.file}.apiary-backup`)).rejects.toThrow();
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
    expect(refused.stderr).toContain('already has an entry "a" that apiary did not write; left as it is (--force replaces it)');
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
});
