/**
 * The aggregate endpoint: two real servers (server-everything and
 * server-memory) behind one URL and one token, through the official SDK client.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { runCli } from './helpers/cli.js';
import { harness, type Harness } from './helpers/controller.js';

const require_ = createRequire(import.meta.url);
const EVERYTHING = require_.resolve('@modelcontextprotocol/server-everything/dist/index.js');
const MEMORY = require_.resolve('@modelcontextprotocol/server-memory/dist/index.js');

function server(name: string, args: string[], extra = ''): string {
  return `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: ${name}\nspec:\n  command: node\n  args: ${JSON.stringify(args)}\n${extra}`;
}

async function bothReady(h: Harness): Promise<void> {
  for (const name of ['everything', 'memory']) {
    await h.waitFor(`${name} Ready`, async () => findCondition((await h.status(name))?.conditions, 'Ready')?.status === 'True', 20_000);
  }
}

describe('the aggregate endpoint (every Ready server at one URL)', () => {
  it('lists and calls the tools of two real servers as <server>__<tool>, follows spec.tools, and drops a suspended server with list_changed', async () => {
    const h = await harness();
    await h.write('everything.yaml', server('everything', [EVERYTHING, 'stdio'], '  tools:\n    deny: [get-env]\n'));
    await h.write('memory.yaml', server('memory', [MEMORY], `  env:\n    - name: MEMORY_FILE_PATH\n      value: ${JSON.stringify(join(h.reports, 'memory.jsonl'))}\n`));
    const controller = await h.start();
    await bothReady(h);
    const url = controller.aggregateUrl!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;

    const anonymous = new Client({ name: 'anonymous', version: '1' });
    await expect(anonymous.connect(new StreamableHTTPClientTransport(new URL(url)))).rejects.toThrow();

    const client = new Client({ name: 'aggregate-test', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    expect(client.getServerVersion()?.name).toBe('apiary');
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('everything__echo');
    expect(names).toContain('memory__read_graph');
    expect(names).not.toContain('everything__get-env'); // spec.tools holds here too
    expect(names.every((n) => n.startsWith('everything__') || n.startsWith('memory__'))).toBe(true);

    const echo = await client.callTool({ name: 'everything__echo', arguments: { message: 'one url' } });
    expect(echo.content).toEqual([{ type: 'text', text: 'Echo: one url' }]);
    await client.callTool({ name: 'memory__create_entities', arguments: { entities: [{ name: 'apiary', entityType: 'tool', observations: ['runs MCP servers'] }] } });
    const graph = await client.callTool({ name: 'memory__read_graph', arguments: {} });
    expect(JSON.stringify(graph.content)).toContain('runs MCP servers');
    await expect(client.callTool({ name: 'everything__get-env', arguments: {} })).rejects.toThrow(/spec\.tools/);
    await expect(client.callTool({ name: 'nowhere__x', arguments: {} })).rejects.toThrow(/server "nowhere" is not Ready/);
    await expect(client.callTool({ name: 'echo', arguments: {} })).rejects.toThrow(/names no server/);

    // client config offers it as one entry, with the token.
    const config = JSON.parse((await runCli(['client', 'config', '--aggregate'], { env: h.env })).stdout) as unknown;
    expect(config).toEqual({ mcpServers: { apiary: { type: 'http', url, headers: { Authorization: `Bearer ${token}` } } } });

    // A server that goes: clients are told, and its tools are gone.
    let changed = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changed += 1;
    });
    await h.write('memory.yaml', server('memory', [MEMORY], '  suspend: true\n'));
    await h.waitFor('list_changed', async () => changed > 0);
    const after = (await client.listTools()).tools.map((t) => t.name);
    expect(after.some((n) => n.startsWith('memory__'))).toBe(false);
    expect(after).toContain('everything__echo');
    await client.close();
  }, 60_000);
});

describe('the aggregate endpoint and HTTP servers', () => {
  it('serves an HTTP server (streamable-http) beside a stdio one, with its spec.tools', async () => {
    const h = await harness();
    await h.write('web.yaml', server('web', [EVERYTHING, 'streamableHttp'], '  transport: streamable-http\n  tools:\n    deny: [get-env, "trigger-*"]\n'));
    await h.write('memory.yaml', server('memory', [MEMORY], `  env:\n    - name: MEMORY_FILE_PATH\n      value: ${JSON.stringify(join(h.reports, 'memory.jsonl'))}\n`));
    const controller = await h.start();
    for (const name of ['web', 'memory']) {
      await h.waitFor(`${name} Ready`, async () => findCondition((await h.status(name))?.conditions, 'Ready')?.status === 'True', 20_000);
    }
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    const client = new Client({ name: 'aggregate-http', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(controller.aggregateUrl!), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('web__echo');
    expect(names).toContain('memory__read_graph');
    expect(names.filter((n) => n.startsWith('web__trigger-') || n === 'web__get-env')).toEqual([]);
    const echo = await client.callTool({ name: 'web__echo', arguments: { message: 'over http' } });
    expect(echo.content).toEqual([{ type: 'text', text: 'Echo: over http' }]);
    await expect(client.callTool({ name: 'web__get-env', arguments: {} })).rejects.toThrow(/spec\.tools/);
    // What the server itself answers comes back as it said it (this one reports an unknown tool as a tool error).
    const unknown = await client.callTool({ name: 'web__no-such-tool', arguments: {} });
    expect(unknown.isError).toBe(true);
    expect(JSON.stringify(unknown.content)).toContain('no-such-tool');
    await client.close();
  }, 60_000);
});
