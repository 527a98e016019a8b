/**
 * Each known client's file, written and taken out again as config-file.ts
 * does for every format: JSONC (Zed) and TOML (Codex CLI) and YAML (Goose)
 * keep their comments and every other byte; a malformed file is reported
 * with its file and line, and nothing is written.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { updateClientFile } from '../src/clients/config-file.js';
import { clientEntries, KNOWN_CLIENTS, knownClientPath, type KnownClient } from '../src/clients/known.js';
import { StateLayout } from '../src/state/layout.js';
import { tempDir } from './helpers/tmp.js';

const launcher = { command: '/usr/bin/node', args: ['/opt/apiary/bin.js'], dir: '/m', stateDir: '/s' };
const entries = (client: KnownClient, names: string[]): Record<string, unknown> => clientEntries(client, Object.fromEntries(names.map((n, i) => [n, `http://127.0.0.1:${4100 + i}/mcp`])), 'tok-123', launcher);

async function setup(client: KnownClient, before: string | undefined): Promise<{ file: string; layout: StateLayout }> {
  const home = await tempDir('apiary-formats-');
  const file = knownClientPath(client, { HOME: home, XDG_CONFIG_HOME: join(home, '.config') }, 'linux');
  await mkdir(join(file, '..'), { recursive: true });
  if (before !== undefined) await writeFile(file, before);
  return { file, layout: new StateLayout(join(home, 'state')) };
}

const ZED = `// Zed settings
//
// For information on how to configure Zed, see the Zed documentation.
{
  "theme": "One Dark", // my theme
  "context_servers": {
    // mine, started by Zed
    "local": { "command": "my-server", "args": [] },
  },
  "vim_mode": true,
}
`;

const CODEX = `# Codex settings
model = "o4-mini" # the model

[mcp_servers.mine]
command = "npx"
args = ["-y", "my-server"]

# comments before the next table stay with it
[mcp_servers.mine.env]
API_KEY = "abc"

[profiles.fast]
model = """
multi
[line]
"""
`;

const GOOSE = `# goose config
GOOSE_PROVIDER: anthropic
extensions:
  developer:
    enabled: true
    name: developer
    type: builtin # the built-in one
    timeout: 300
GOOSE_MODEL: claude-sonnet
`;

describe('client files in each format', () => {
  it('writes, updates and takes out entries, keeping every other byte (JSONC, TOML, YAML)', async () => {
    for (const [client, before] of [['zed', ZED], ['codex', CODEX], ['goose', GOOSE]] as const) {
      const { file, layout } = await setup(client, before);
      await updateClientFile(client, file, entries(client, ['a', 'b']), layout);
      const written = await readFile(file, 'utf8');
      // Every line of the person's file is still there, in order, comments and all.
      const lines = before.split('\n').filter((l) => l.trim() !== '');
      let at = 0;
      for (const line of lines) {
        const found = written.indexOf(line, at);
        expect(found, `${client}: ${line}`).toBeGreaterThanOrEqual(0);
        at = found + line.length;
      }
      expect(written).toContain('tok-123');
      // A second write changes nothing; a removal of one entry (a deleted server) takes out that one only.
      expect((await updateClientFile(client, file, entries(client, ['a', 'b']), layout)).edit.after).toBe(written);
      const one = await updateClientFile(client, file, undefined, layout, { only: ['a'] });
      expect(one.edit.removed).toEqual(['a']);
      // Writing a and b, then taking a out, leaves the file as writing b alone would have.
      const alone = await setup(client, before);
      await updateClientFile(client, alone.file, { b: entries(client, ['a', 'b'])['b'] }, alone.layout);
      expect(await readFile(file, 'utf8'), client).toBe(await readFile(alone.file, 'utf8'));
      // Everything out: the file as it was, byte for byte.
      await updateClientFile(client, file, undefined, layout);
      expect(await readFile(file, 'utf8'), client).toBe(before);
    }
  });

  it('a file changed since is taken apart entry by entry: the person\'s edits stay, apiary\'s blocks go', async () => {
    const cases = [
      ['codex', CODEX, ['model = "o4-mini"', 'model = "o3"']],
      ['goose', GOOSE, ['GOOSE_MODEL: claude-sonnet', 'GOOSE_MODEL: other']],
      ['zed', ZED, ['"vim_mode": true', '"vim_mode": false']],
    ] as const;
    for (const [client, before, edit] of cases) {
      const { file, layout } = await setup(client, before);
      await updateClientFile(client, file, entries(client, ['a']), layout);
      await writeFile(file, (await readFile(file, 'utf8')).replace(edit[0], edit[1]));
      const removed = await updateClientFile(client, file, undefined, layout);
      expect(removed.edit.restored).toBeUndefined();
      expect(await readFile(file, 'utf8'), client).toBe(before.replace(edit[0], edit[1]));
    }
  });

  it('an entry of the same name apiary did not write is left alone', async () => {
    const { file, layout } = await setup('codex', CODEX);
    const result = await updateClientFile('codex', file, entries('codex', ['mine']), layout, { skipClashes: true });
    expect(result.edit.skipped.map((s) => s.name)).toEqual(['mine']);
    expect(await readFile(file, 'utf8')).toBe(CODEX);
  });

  it('--force over a person\'s TOML entry keeps it in a backup, and --remove puts it back even after other edits', async () => {
    const { file, layout } = await setup('codex', CODEX);
    const forced = await updateClientFile('codex', file, entries('codex', ['mine']), layout, { force: true });
    expect(forced.edit.replacing).toEqual(['mine']);
    await writeFile(file, (await readFile(file, 'utf8')).replace('model = "o4-mini"', 'model = "o3"'));
    const removed = await updateClientFile('codex', file, undefined, layout);
    expect(removed.edit.putBack).toEqual(['mine']);
    expect(await readFile(file, 'utf8')).toBe(CODEX.replace('model = "o4-mini"', 'model = "o3"'));
  });

  it('a Codex server declared with keys rather than a table of its own is the person\'s: left alone, never a second definition', async () => {
    const text = 'mcp_servers.other = { command = "x" }\n\n[mcp_servers]\nmine.command = "npx"\nmine.args = [\n  "-y",\n]\n';
    const { file, layout } = await setup('codex', text);
    const result = await updateClientFile('codex', file, entries('codex', ['mine', 'other']), layout, { skipClashes: true });
    expect(result.edit.skipped.map((s) => s.name)).toEqual(['mine', 'other']);
    expect(await readFile(file, 'utf8')).toBe(text);
  });

  it('a malformed file is reported with its file and line, and nothing is written', async () => {
    const cases: [KnownClient, string, RegExp][] = [
      ['codex', 'model = "x"\n[mcp_servers.a]\nthis is not toml\n', /config\.toml:3: not a TOML/],
      ['codex', '[mcp_servers.a]\nurl = "x"\n[mcp_servers.a]\n', /config\.toml:3: table \[mcp_servers\.a\] defined twice/],
      ['goose', 'extensions:\n  a: [1, 2\nGOOSE_MODEL: x\n', /config\.yaml:\d+:\d+: /],
      ['gemini', '{\n  "mcpServers": {\n    "a": { "command": "x" \n  }\n', /settings\.json:\d+:\d+: not a JSON object/],
      ['zed', '{\n  "theme": "x",\n  "context_servers": nope\n}\n', /settings\.json:3:\d+: not a JSON object/],
    ];
    for (const [client, text, error] of cases) {
      const { file, layout } = await setup(client, text);
      await expect(updateClientFile(client, file, entries(client, ['a']), layout)).rejects.toThrow(error);
      expect(await readFile(file, 'utf8')).toBe(text);
    }
  });

  it('every known client gets an entry in its own shape, into a new file', async () => {
    const shapes: Record<KnownClient, string> = {
      claude: '"type": "http"',
      'claude-desktop': '"proxy",',
      cursor: '"url": "http://127.0.0.1:4100/mcp"',
      vscode: '"servers"',
      windsurf: '"serverUrl"',
      zed: '"context_servers"',
      codex: '[mcp_servers.a]\nurl = "http://127.0.0.1:4100/mcp"\nhttp_headers = { Authorization = "Bearer tok-123" }\n',
      gemini: '"httpUrl"',
      goose: 'extensions:\n  a:\n    enabled: true\n    name: a\n    type: streamable_http\n    uri: http://127.0.0.1:4100/mcp\n',
      cline: '"type": "streamableHttp"',
    };
    expect(KNOWN_CLIENTS).toHaveLength(10);
    for (const client of KNOWN_CLIENTS) {
      const { file, layout } = await setup(client, undefined);
      await updateClientFile(client, file, entries(client, ['a']), layout);
      expect(await readFile(file, 'utf8'), client).toContain(shapes[client]);
      // Claude Desktop starts a process: no token in its file.
      if (client === 'claude-desktop') expect(await readFile(file, 'utf8')).not.toContain('tok-123');
    }
  });

  it("finds each client's user-level file where its documentation puts it, on Linux, macOS and Windows", () => {
    const env = { HOME: '/h', APPDATA: 'C:/AppData' };
    const where = (platform: NodeJS.Platform) => Object.fromEntries(KNOWN_CLIENTS.map((c) => [c, knownClientPath(c, env, platform).replace(/\\/g, '/')]));
    expect(where('linux')).toEqual({
      claude: '/h/.claude.json',
      'claude-desktop': '/h/.config/Claude/claude_desktop_config.json',
      cursor: '/h/.cursor/mcp.json',
      vscode: '/h/.config/Code/User/mcp.json',
      windsurf: '/h/.codeium/windsurf/mcp_config.json',
      zed: '/h/.config/zed/settings.json',
      codex: '/h/.codex/config.toml',
      gemini: '/h/.gemini/settings.json',
      goose: '/h/.config/goose/config.yaml',
      cline: '/h/.config/Code/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json',
    });
    const mac = where('darwin');
    expect([mac['claude-desktop'], mac.vscode, mac.zed, mac.goose]).toEqual([
      '/h/Library/Application Support/Claude/claude_desktop_config.json',
      '/h/Library/Application Support/Code/User/mcp.json',
      '/h/.config/zed/settings.json',
      '/h/.config/goose/config.yaml',
    ]);
    const win = where('win32');
    expect([win['claude-desktop'], win.vscode, win.zed, win.goose]).toEqual(['C:/AppData/Claude/claude_desktop_config.json', 'C:/AppData/Code/User/mcp.json', 'C:/AppData/Zed/settings.json', 'C:/AppData/Block/goose/config/config.yaml']);
    // CODEX_HOME moves Codex's folder, as Codex documents.
    expect(knownClientPath('codex', { ...env, CODEX_HOME: '/c' }, 'linux')).toBe('/c/config.toml');
  });
});
