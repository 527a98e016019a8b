/** The JSON each MCP client reads to reach servers over HTTP (`client config`, the console's snippets). */
export const CLIENT_KINDS = ['claude', 'cursor', 'vscode'] as const;
export type ClientKind = (typeof CLIENT_KINDS)[number];

export function clientConfig(kind: ClientKind, servers: Record<string, string>): Record<string, unknown> {
  const entries = Object.entries(servers);
  switch (kind) {
    case 'claude': // Claude Code's .mcp.json
      return { mcpServers: Object.fromEntries(entries.map(([name, url]) => [name, { type: 'http', url }])) };
    case 'cursor': // .cursor/mcp.json
      return { mcpServers: Object.fromEntries(entries.map(([name, url]) => [name, { url }])) };
    case 'vscode': // .vscode/mcp.json
      return { servers: Object.fromEntries(entries.map(([name, url]) => [name, { type: 'http', url }])) };
  }
}
