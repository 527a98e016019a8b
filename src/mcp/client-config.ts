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
