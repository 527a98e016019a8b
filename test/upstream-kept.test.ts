/**
 * A 2026-07-28 client's requests at a hosted 2025 server's proxy go over
 * sessions apiary keeps with the server, not a new session per request (four
 * requests to the server before the request's own). What the server counts
 * is what it got: a hosted 2025 server (the SDK v1's, with sessions) on
 * 127.0.0.1 that can forget its sessions and counts initializes.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { afterEach, describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { harness } from './helpers/controller.js';

const MODERN = '2026-07-28';
const servers: HttpServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

interface Counting {
  url: string;
  /** Sessions the server opened (initialize requests answered). */
  initializes: number;
  /** tools/call requests it answered. */
  calls: number;
  /** Forget every session, as a restarted or timed-out server does: their requests get 404. */
  forget(): void;
}

async function countingServer(): Promise<Counting> {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const counts = { initializes: 0, calls: 0 };
  const http = createServer((req, res) => {
    const id = req.headers['mcp-session-id'];
    if (typeof id === 'string') {
      const known = sessions.get(id);
      if (known === undefined) return void res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}');
      return void known.handleRequest(req, res);
    }
    const mcp = new McpServer({ name: 'counting', version: '1' });
    mcp.registerTool('count', { description: 'Counts the call' }, () => ({ content: [{ type: 'text', text: String(++counts.calls) }] }));
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      onsessioninitialized: (sid) => {
        counts.initializes++;
        sessions.set(sid, transport);
      },
    });
    void mcp.connect(transport).then(() => transport.handleRequest(req, res));
  });
  servers.push(http);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as { port: number }).port}/mcp`,
    get initializes() {
      return counts.initializes;
    },
    get calls() {
      return counts.calls;
    },
    forget: () => sessions.clear(),
  };
}

describe("a 2026-07-28 client at a hosted 2025 server's proxy", () => {
  it('is served over sessions apiary keeps: ten calls open one session at the server, not ten; a session the server forgot is replaced without failing the call', async () => {
    const server = await countingServer();
    const h = await harness();
    await h.write('hosted.yaml', `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: hosted\nspec:\n  remote:\n    url: ${server.url}\n`);
    await h.start();
    const endpoint = await h.waitFor('hosted Ready', async () => {
      const s = await h.status('hosted');
      return findCondition(s?.conditions, 'Ready')?.status === 'True' && s?.url ? s.url : undefined;
    }, 20_000);
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    const client = new ModernClient({ name: 'kept-test', version: '1' }, { versionNegotiation: { mode: { pin: MODERN } } });
    await client.connect(new ModernTransport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    expect(client.getNegotiatedProtocolVersion()).toBe(MODERN);
    const call = async (): Promise<string> => ((await client.callTool({ name: 'count', arguments: {} })).content as { text: string }[])[0]!.text;

    await call();
    const opened = server.initializes;
    for (let i = 0; i < 10; i++) await call();
    // The probe's own session aside, the ten calls went over the one session the first call opened.
    expect(server.initializes).toBe(opened);
    expect(server.calls).toBe(11);

    // The server forgets its sessions (a restart, a timeout): the next call is answered, on a new session, and counted once.
    server.forget();
    expect(await call()).toBe('12');
    expect(server.initializes).toBe(opened + 1);

    await client.close();
  });
});
