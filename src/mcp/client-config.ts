import { findCondition, type MCPServerStatus } from '../api/status.js';
import type { StateView } from '../state/view.js';

/** The JSON each MCP client reads to reach servers over HTTP (`client config`, the console's snippets). */
export const CLIENT_KINDS = ['claude', 'cursor', 'vscode'] as const;
export type ClientKind = (typeof CLIENT_KINDS)[number];

/** With a token, each entry carries the header apiary's endpoints require (all three clients read `headers`). */
export function clientConfig(kind: ClientKind, servers: Record<string, string>, token?: string): Record<string, unknown> {
  const headers = token !== undefined ? { headers: { Authorization: `Bearer ${token}` } } : {};
  const entries = Object.entries(servers);
  switch (kind) {
    case 'claude': // Claude Code's .mcp.json
      return { mcpServers: Object.fromEntries(entries.map(([name, url]) => [name, { type: 'http', url, ...headers }])) };
    case 'cursor': // .cursor/mcp.json
      return { mcpServers: Object.fromEntries(entries.map(([name, url]) => [name, { url, ...headers }])) };
    case 'vscode': // .vscode/mcp.json
      return { servers: Object.fromEntries(entries.map(([name, url]) => [name, { type: 'http', url, ...headers }])) };
  }
}

/**
 * The servers a client can reach now: each Ready server's URL, as status says
 * (status counts only when a controller runs); the rest by name, for saying
 * who was left out.
 */
export function readyServerUrls(view: Pick<StateView, 'objects' | 'controller'>): { servers: Record<string, string>; notReady: string[] } {
  const servers: Record<string, string> = {};
  const notReady: string[] = [];
  for (const o of view.objects) {
    if (o.kind !== 'MCPServer') continue;
    const status = o.object.status as MCPServerStatus | undefined;
    if (view.controller !== undefined && status?.url && findCondition(status.conditions, 'Ready')?.status === 'True') servers[o.name] = status.url;
    else notReady.push(o.name);
  }
  return { servers, notReady };
}
