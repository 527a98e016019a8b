/**
 * The tiny stdio server fixture's `--busy-call` flag, which the fairness
 * benchmark relies on: a tools/call of `noop` that reaches the server and is
 * answered there. Without the flag a tools/call stays "not found", as the
 * other tests expect.
 */
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterEach, describe, expect, it } from 'vitest';

const TINY = fileURLToPath(new URL('./fixtures/servers/tiny-server.mjs', import.meta.url));
const clients: Client[] = [];

async function connect(flags: string[]): Promise<Client> {
  const client = new Client({ name: 'tiny-test', version: '1' });
  clients.push(client);
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [TINY, ...flags], stderr: 'ignore' }));
  return client;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

describe('tiny-server --busy-call', () => {
  it('answers a tools/call of noop with empty content', async () => {
    const client = await connect(['--busy-call', '1']);
    expect(await client.callTool({ name: 'noop', arguments: {} })).toEqual({ content: [] });
  });

  it('still refuses a tools/call without the flag, and a tool other than noop with it', async () => {
    const plain = await connect([]);
    await expect(plain.callTool({ name: 'noop', arguments: {} })).rejects.toThrow(/not found/);
    const busy = await connect(['--busy-call', '1']);
    await expect(busy.callTool({ name: 'other', arguments: {} })).rejects.toThrow(/not found/);
  });
});
