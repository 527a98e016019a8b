/**
 * Reading the servers a client's file declares, in each client's own shape:
 *
 * - Claude Code (`~/.claude.json` with `mcpServers`, and `projects.<dir>.mcpServers`
 *   for one project; a project's `.mcp.json`): `{type: stdio, command, args, env}`,
 *   `{type: http | sse, url, headers}` (docs.anthropic.com/en/docs/claude-code/mcp).
 * - Claude Desktop (`claude_desktop_config.json`, `mcpServers`): stdio only,
 *   `{command, args, env}` (modelcontextprotocol.io/quickstart/user).
 * - Cursor (`~/.cursor/mcp.json`, a project's `.cursor/mcp.json`, `mcpServers`):
 *   `{command, args, env}` or `{url, headers}`; the transport is found by
 *   Cursor itself, so an URL ending in /sse (or `type: sse`) is taken as SSE.
 * - VS Code (`mcp.json`, a project's `.vscode/mcp.json`, `servers`):
 *   `{type: stdio, command, args, env, cwd}`, `{type: http | sse, url, headers}`.
 * - Windsurf (`~/.codeium/windsurf/mcp_config.json`, `mcpServers`):
 *   `{command, args, env}` or `{serverUrl, headers}`
 *   (docs.windsurf.com/windsurf/cascade/mcp).
 *
 * Comments and trailing commas are accepted, as these clients accept them.
 */
import { findNodeAtLocation, getNodeValue, parseTree, type Node, type ParseError } from 'jsonc-parser';
import { ApiaryError } from '../errors.js';
import type { ClientEntry } from './import-plan.js';

const STDIO_KEYS = new Set(['type', 'command', 'args', 'env', 'cwd', 'disabled']);
const REMOTE_KEYS = new Set(['type', 'url', 'serverUrl', 'headers', 'disabled']);

/** The entries under `container` in a client's file, with the node of each (to tell apiary's own from a person's). */
export function readClientEntries(text: string, file: string, container: readonly string[]): { entries: ClientEntry[]; problems: { entry: string; why: string }[]; raw: Record<string, unknown> } {
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (root === undefined || root.type !== 'object' || errors.length > 0) {
    throw new ApiaryError('Usage', `${file} is not a JSON object apiary can read${errors[0] ? ` (a syntax error at offset ${errors[0].offset})` : ''}; nothing was imported`);
  }
  const node: Node | undefined = findNodeAtLocation(root, [...container]);
  const out = { entries: [] as ClientEntry[], problems: [] as { entry: string; why: string }[], raw: {} as Record<string, unknown> };
  if (node === undefined) return out;
  const servers = getNodeValue(node) as unknown;
  if (!isObject(servers)) throw new ApiaryError('Usage', `${file}: "${container.join('.')}" is not an object; nothing was imported`);
  for (const [name, value] of Object.entries(servers)) {
    out.raw[name] = value;
    const read = entryOf(name, value);
    if (typeof read === 'string') out.problems.push({ entry: name, why: read });
    else out.entries.push(read);
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function strings(value: unknown, what: string): Record<string, string> | string {
  if (value === undefined) return {};
  if (!isObject(value)) return `${what} is not an object`;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return `${what}.${k} is not a string`;
    out[k] = String(v);
  }
  return out;
}

/** One entry, or why it cannot be imported. */
function entryOf(name: string, value: unknown): ClientEntry | string {
  if (!isObject(value)) return 'not an object';
  const type = value['type'];
  const ignored = (known: Set<string>): string[] => Object.keys(value).filter((k) => !known.has(k));
  // Windsurf's (and Cline's) switch: a server kept in the file but not started.
  const disabled = value['disabled'] === true ? { disabled: true } : {};
  if (typeof value['command'] === 'string' && value['command'] !== '') {
    if (type !== undefined && type !== 'stdio') return `type "${String(type)}" with a command`;
    const args = value['args'] ?? [];
    if (!Array.isArray(args) || args.some((a) => typeof a !== 'string' && typeof a !== 'number')) return 'args is not a list of strings';
    const env = strings(value['env'], 'env');
    if (typeof env === 'string') return env;
    const cwd = value['cwd'];
    return { name, kind: 'stdio', command: value['command'], args: args.map(String), env, ...(typeof cwd === 'string' && cwd !== '' ? { cwd } : {}), ignored: ignored(STDIO_KEYS), ...disabled };
  }
  const url = typeof value['url'] === 'string' ? value['url'] : typeof value['serverUrl'] === 'string' ? value['serverUrl'] : undefined;
  if (url !== undefined) {
    if (!/^https?:\/\/\S+$/.test(url)) return `url "${url.replace(/[?#].*$/, '')}" is not an http:// or https:// URL`;
    if (type !== undefined && !['http', 'streamable-http', 'streamableHttp', 'sse'].includes(String(type))) return `type "${String(type)}" is not one apiary knows`;
    const headers = strings(value['headers'], 'headers');
    if (typeof headers === 'string') return headers;
    const sse = type === 'sse' || (type === undefined && /\/sse\/?$/.test(url.replace(/[?#].*$/, '')));
    return { name, kind: 'remote', url, transport: sse ? 'sse' : 'streamable-http', headers, ignored: ignored(REMOTE_KEYS), ...disabled };
  }
  return 'neither a command nor a url';
}
