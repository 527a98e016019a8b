/**
 * A client that floods one MCP endpoint: N tools/list calls always in flight
 * for MS milliseconds, in a process of its own (so it does not share an event
 * loop with the client being measured). Prints how many calls it made.
 */
import { setMaxListeners } from 'node:events';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

setMaxListeners(0);
const [url, inFlight, ms] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4])];
const client = new Client({ name: 'flooder', version: '1' });
// The endpoint token comes in the environment, never on the command line.
const token = process.env['APIARY_ENDPOINT_TOKEN'];
await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: token ? { Authorization: `Bearer ${token}` } : {} } }));
const stopAt = Date.now() + ms;
let calls = 0;
await Promise.all(
  Array.from({ length: inFlight }, async () => {
    while (Date.now() < stopAt) {
      await client.listTools();
      calls++;
    }
  }),
);
console.log(calls);
await client.close();
