#!/usr/bin/env node
// A small stdio MCP server for apiary's bundled manifests. It reads a token
// from $HELLO_TOKEN (bound to a Secret) and never prints it: the `whoami`
// tool shows only a fingerprint, so you can see which value the server got.
import { createHash } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

const greeting = process.env.GREETING ?? 'Hello';
const token = process.env.HELLO_TOKEN;

const server = new McpServer({ name: 'apiary-hello', version: '0.1.0' });

server.registerTool(
  'greet',
  { description: 'Greet someone', inputSchema: { name: z.string().describe('who to greet') } },
  async ({ name }) => ({ content: [{ type: 'text', text: `${greeting}, ${name}!` }] }),
);

server.registerTool('whoami', { description: 'Show which token this server was given (fingerprint only)' }, async () => {
  const fingerprint = token ? createHash('sha256').update(token).digest('hex').slice(0, 12) : 'none';
  return { content: [{ type: 'text', text: `token fingerprint: ${fingerprint}` }] };
});

await server.connect(new StdioServerTransport());
console.error(`apiary-hello: ready (token ${token ? 'present' : 'missing'})`);
