/**
 * An SDK client on a server's endpoint as a test's controller serves it:
 * its status.url, with the endpoint token from the state directory.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { readEndpointToken } from '../../src/mcp/endpoint-token.js';
import { StateLayout } from '../../src/state/layout.js';
import type { Harness } from './controller.js';

export async function endpointClient(h: Pick<Harness, 'status' | 'stateDir'>, name: string, clientName: string): Promise<Client> {
  const url = (await h.status(name))!.url!;
  const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
  const client = new Client({ name: clientName, version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return client;
}
