/**
 * The one list of MCP clients whose files apiary knows: where each keeps its
 * user-level servers, in which format, under which key, and the entry it
 * needs to reach one of apiary's endpoints. Every location and shape is the
 * client's own documentation's (cited beside each).
 */
import { stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export const KNOWN_CLIENTS = ['claude', 'claude-desktop', 'cursor', 'vscode', 'windsurf', 'zed', 'codex', 'gemini', 'goose', 'cline'] as const;
export type KnownClient = (typeof KNOWN_CLIENTS)[number];

/** json also takes comments and trailing commas (JSONC), as these clients do; toml and yaml are edited as text, entry by entry. */
export type ClientFormat = 'json' | 'toml' | 'yaml';

/** How apiary starts itself for a client that reaches servers only as processes (Claude Desktop: `apiary proxy NAME`). */
export interface Launcher {
  command: string;
  args: string[];
  dir: string;
  stateDir: string;
}

export interface ClientInfo {
  id: KnownClient;
  title: string;
  format: ClientFormat;
  /** Where the servers sit in the file. */
  container: string[];
  /** The user-level file. */
  path(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): string;
  /** The entry for apiary's endpoint `url` of server `name` (with its token, when auth is on). */
  entry(name: string, url: string, token: string | undefined, launcher: Launcher): Record<string, unknown>;
}

const bearer = (token: string | undefined): Record<string, string> | undefined => (token !== undefined ? { Authorization: `Bearer ${token}` } : undefined);
const withHeaders = (key: string, token: string | undefined): Record<string, unknown> => (token !== undefined ? { [key]: bearer(token) } : {});
const home = (env: NodeJS.ProcessEnv): string => env['HOME'] ?? homedir();
const appData = (env: NodeJS.ProcessEnv): string => env['APPDATA'] ?? join(home(env), 'AppData', 'Roaming');
const xdgConfig = (env: NodeJS.ProcessEnv): string => env['XDG_CONFIG_HOME'] ?? join(home(env), '.config');

/** VS Code's user folder, where its mcp.json and its extensions' global storage live. */
function vscodeUser(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): string {
  if (platform === 'darwin') return join(home(env), 'Library', 'Application Support', 'Code', 'User');
  if (platform === 'win32') return join(appData(env), 'Code', 'User');
  return join(xdgConfig(env), 'Code', 'User');
}

const CLIENTS: Record<KnownClient, ClientInfo> = {
  // docs.anthropic.com/en/docs/claude-code/mcp: ~/.claude.json, mcpServers, {type: http, url, headers}.
  claude: {
    id: 'claude', title: 'Claude Code', format: 'json', container: ['mcpServers'],
    path: (env) => join(home(env), '.claude.json'),
    entry: (_n, url, token) => ({ type: 'http', url, ...withHeaders('headers', token) }),
  },
  // modelcontextprotocol.io/quickstart/user: claude_desktop_config.json, mcpServers, stdio only {command, args}:
  // it starts `apiary proxy NAME`, which holds no token in the file (the shim reads it from the state directory).
  'claude-desktop': {
    id: 'claude-desktop', title: 'Claude Desktop', format: 'json', container: ['mcpServers'],
    path: (env, platform) => {
      if (platform === 'darwin') return join(home(env), 'Library', 'Application Support', 'Claude', 'claude_desktop_config.json');
      if (platform === 'win32') return join(appData(env), 'Claude', 'claude_desktop_config.json');
      return join(xdgConfig(env), 'Claude', 'claude_desktop_config.json');
    },
    entry: (name, _url, _token, l) => ({ command: l.command, args: [...l.args, 'proxy', name, '--dir', l.dir, '--state-dir', l.stateDir] }),
  },
  // docs.cursor.com/context/model-context-protocol: ~/.cursor/mcp.json, mcpServers, {url, headers}.
  cursor: {
    id: 'cursor', title: 'Cursor', format: 'json', container: ['mcpServers'],
    path: (env) => join(home(env), '.cursor', 'mcp.json'),
    entry: (_n, url, token) => ({ url, ...withHeaders('headers', token) }),
  },
  // code.visualstudio.com/docs/copilot/customization/mcp-servers: mcp.json in the user folder, servers, {type: http, url, headers}.
  vscode: {
    id: 'vscode', title: 'VS Code', format: 'json', container: ['servers'],
    path: (env, platform) => join(vscodeUser(env, platform), 'mcp.json'),
    entry: (_n, url, token) => ({ type: 'http', url, ...withHeaders('headers', token) }),
  },
  // docs.windsurf.com/windsurf/cascade/mcp: ~/.codeium/windsurf/mcp_config.json, mcpServers, {serverUrl, headers}.
  windsurf: {
    id: 'windsurf', title: 'Windsurf', format: 'json', container: ['mcpServers'],
    path: (env) => join(home(env), '.codeium', 'windsurf', 'mcp_config.json'),
    entry: (_n, url, token) => ({ serverUrl: url, ...withHeaders('headers', token) }),
  },
  // zed.dev/docs/ai/mcp and zed.dev/docs/configuring-zed: settings.json (JSONC, comments kept), context_servers, {url, headers}.
  zed: {
    id: 'zed', title: 'Zed', format: 'json', container: ['context_servers'],
    path: (env, platform) => (platform === 'win32' ? join(appData(env), 'Zed', 'settings.json') : join(platform === 'darwin' ? join(home(env), '.config') : xdgConfig(env), 'zed', 'settings.json')),
    entry: (_n, url, token) => ({ url, ...withHeaders('headers', token) }),
  },
  // developers.openai.com/codex/mcp and github.com/openai/codex docs/config.md: $CODEX_HOME/config.toml (default ~/.codex),
  // [mcp_servers.NAME] with url and http_headers (an inline bearer_token is refused; a static header is not).
  codex: {
    id: 'codex', title: 'Codex CLI', format: 'toml', container: ['mcp_servers'],
    path: (env) => join(env['CODEX_HOME'] ?? join(home(env), '.codex'), 'config.toml'),
    entry: (_n, url, token) => ({ url, ...withHeaders('http_headers', token) }),
  },
  // geminicli.com/docs/tools/mcp-server: ~/.gemini/settings.json, mcpServers, {httpUrl, headers} (url alone means SSE there).
  gemini: {
    id: 'gemini', title: 'Gemini CLI', format: 'json', container: ['mcpServers'],
    path: (env) => join(home(env), '.gemini', 'settings.json'),
    entry: (_n, url, token) => ({ httpUrl: url, ...withHeaders('headers', token) }),
  },
  // block.github.io/goose/docs/guides/config-files: ~/.config/goose/config.yaml (%APPDATA%\Block\goose\config on Windows),
  // extensions.NAME {enabled, name, type: streamable_http, uri, headers, timeout}.
  goose: {
    id: 'goose', title: 'Goose', format: 'yaml', container: ['extensions'],
    path: (env, platform) => (platform === 'win32' ? join(appData(env), 'Block', 'goose', 'config', 'config.yaml') : join(xdgConfig(env), 'goose', 'config.yaml')),
    entry: (name, url, token) => ({ enabled: true, name, type: 'streamable_http', uri: url, ...withHeaders('headers', token), timeout: 300 }),
  },
  // docs.cline.bot/mcp/configuring-mcp-servers: cline_mcp_settings.json in VS Code's global storage of saoudrizwan.claude-dev,
  // mcpServers, {type: streamableHttp, url, headers, disabled}.
  cline: {
    id: 'cline', title: 'Cline', format: 'json', container: ['mcpServers'],
    path: (env, platform) => join(vscodeUser(env, platform), 'globalStorage', 'saoudrizwan.claude-dev', 'settings', 'cline_mcp_settings.json'),
    entry: (_n, url, token) => ({ type: 'streamableHttp', url, ...withHeaders('headers', token), disabled: false }),
  },
};

export function isKnownClient(name: string): name is KnownClient {
  return (KNOWN_CLIENTS as readonly string[]).includes(name);
}

export function clientInfo(id: KnownClient): ClientInfo {
  return CLIENTS[id];
}

/** The user-level file of a client. */
export function knownClientPath(id: KnownClient, env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  return CLIENTS[id].path(env, platform);
}

/** Whether the client is on this machine: its file, or the folder it keeps it in, exists (Claude Code's ~/.claude folder too). */
export async function clientFound(id: KnownClient, env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): Promise<boolean> {
  const file = knownClientPath(id, env, platform);
  const places = [file, id === 'claude' ? join(home(env), '.claude') : dirname(file)];
  for (const place of places) if ((await stat(place).catch(() => undefined)) !== undefined) return true;
  return false;
}

/** Every entry a client needs for the servers `servers` (name -> endpoint URL). */
export function clientEntries(id: KnownClient, servers: Record<string, string>, token: string | undefined, launcher: Launcher): Record<string, unknown> {
  return Object.fromEntries(Object.entries(servers).map(([name, url]) => [name, CLIENTS[id].entry(name, url, token, launcher)]));
}
