/**
 * A client that floods one MCP endpoint: N calls always in flight for MS
 * milliseconds, in a process of its own (so it does not share an event loop
 * with the client being measured). Prints how many calls it made.
 *
 *   flooder URL N MS [--call TOOL] [--sse]
 *
 * By default each call is a tools/list; with `--call TOOL` it is a tools/call
 * of TOOL (no arguments), which an aggregate must send on to the server
 * where it may answer a listing from a cache. `--sse` speaks the older
 * HTTP+SSE transport (GET URL for the stream, POST for messages), as
 * mcp-hub's endpoint does.
 */
import { setMaxListeners } from 'node:events';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

setMaxListeners(0);
const [url, inFlight, ms] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4])];
const rest = process.argv.slice(5);
const callAt = rest.indexOf('--call');
const tool = callAt >= 0 ? rest[callAt + 1] : undefined;
const client = new Client({ name: 'flooder', version: '1' });
// The endpoint token comes in the environment, never on the command line.
const token = process.env['APIARY_ENDPOINT_TOKEN'];
const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
const requestInit = { headers };
await client.connect(rest.includes('--sse') ? new SSEClientTransport(new URL(url), { requestInit }) : new StreamableHTTPClientTransport(new URL(url), { requestInit }));
const once = tool === undefined ? () => client.listTools() : () => client.callTool({ name: tool, arguments: {} });
const stopAt = Date.now() + ms;
let calls = 0;
await Promise.all(
  Array.from({ length: inFlight }, async () => {
    while (Date.now() < stopAt) {
      await once();
      calls++;
    }
  }),
);
console.log(calls);
await client.close();
