/**
 * apiary's proxy in front of an HTTP server, at its edges: what a client can
 * make the server run past spec.tools, and what a bad header value does. The
 * server behind it is the MCP SDK's own (stateless Streamable HTTP), which
 * strips a byte-order mark before parsing, as most JSON readers do.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpProxy } from '../src/mcp/http-proxy.js';
import { compileToolFilter } from '../src/mcp/tool-filter.js';

const closing: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closing.splice(0).map((close) => close()));
});

/** An SDK server with an allowed tool (echo) and a denied one (env), recording every body it is sent and every env run. */
async function upstream(): Promise<{ port: number; bodies: string[]; envRuns: number[] }> {
  const bodies: string[] = [];
  const envRuns: number[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const text = new TextDecoder().decode(Buffer.concat(chunks));
      bodies.push(text);
      const mcp = new McpServer({ name: 'upstream', version: '1.0.0' });
      mcp.registerTool('echo', { description: 'echo' }, async () => ({ content: [{ type: 'text', text: 'echoed' }] }));
      mcp.registerTool('env', { description: 'the secrets' }, async () => {
        envRuns.push(Date.now());
        return { content: [{ type: 'text', text: 'SECRET=1' }] };
      });
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return void res.writeHead(400).end('not JSON');
      }
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      res.on('close', () => void transport.close());
      void mcp.connect(transport).then(() => transport.handleRequest(req, res, parsed));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closing.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as AddressInfo).port, bodies, envRuns };
}

async function proxyTo(target: ConstructorParameters<typeof HttpProxy>[1], deny: string[] = []): Promise<HttpProxy> {
  const proxy = new HttpProxy(0, target);
  proxy.setToolFilter(compileToolFilter({ deny }));
  await proxy.listen();
  closing.push(() => proxy.close());
  return proxy;
}

function post(port: number, body: Buffer | string): Promise<{ status: number; text: string }> {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/mcp',
        headers: { Host: `127.0.0.1:${port}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'Content-Length': String(bytes.length) },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(bytes);
  });
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const call = (id: number, name: unknown): Record<string, unknown> => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });
const withBom = (value: unknown): Buffer => Buffer.concat([BOM, Buffer.from(JSON.stringify(value))]);

describe('spec.tools at the proxy in front of an HTTP server', () => {
  it('a denied tool is refused whatever the body looks like: a byte-order mark, a batch, a name that is no string', async () => {
    const server = await upstream();
    const proxy = await proxyTo(server.port, ['env']);

    const single = await post(proxy.port, withBom(call(1, 'env')));
    expect(JSON.parse(single.text)).toMatchObject({ id: 1, error: { message: 'tool "env" is not available: the server\'s spec.tools keeps it from clients' } });
    const batch = await post(proxy.port, withBom([call(2, 'echo'), call(3, 'env')]));
    expect(JSON.parse(batch.text)).toMatchObject([{ error: { message: 'not sent: another call in this batch names a filtered tool' } }, { id: 3, error: { message: expect.stringContaining('spec.tools') } }]);
    const notAString = await post(proxy.port, JSON.stringify(call(4, ['env'])));
    expect(JSON.parse(notAString.text)).toMatchObject({ id: 4, error: { message: 'tools/call needs params.name as a string' } });
    const unreadable = await post(proxy.port, Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"e'), Buffer.from([0xff]), Buffer.from('nv"}}')]));
    expect(unreadable.status).toBe(400);
    expect(JSON.parse(unreadable.text)).toMatchObject({ error: { code: -32700 } });

    expect(server.envRuns).toEqual([]);
    expect(server.bodies).toEqual([]);
  });

  it('what passes is what was checked: the parsed message, re-serialized, reaches the server', async () => {
    const server = await upstream();
    const proxy = await proxyTo(server.port, ['env']);
    const allowed = await post(proxy.port, withBom(call(6, 'echo')));
    expect(allowed.status).toBe(200);
    expect(JSON.parse(allowed.text)).toMatchObject({ id: 6, result: { content: [{ type: 'text', text: 'echoed' }] } });
    // The mark is gone and a duplicated key is sent once, as apiary read it (the last one wins).
    await post(proxy.port, '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"env","name":"echo","arguments":{"é":1}}}');
    expect(server.bodies).toEqual([JSON.stringify(call(6, 'echo')), '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"\\u00e9":1}}}']);
    expect(server.envRuns).toEqual([]);
  });
});
describe('a header the proxy cannot send', () => {
  it('is answered 502 naming the header, never thrown: the proxy keeps serving', async () => {
    const server = await upstream();
    const proxy = await proxyTo({ url: `http://127.0.0.1:${server.port}/mcp`, label: 'the test server', headers: { 'X-Token': 'tok-canary\r\nX-Injected: yes' } });
    const first = await post(proxy.port, JSON.stringify(call(1, 'echo')));
    expect(first.status).toBe(502);
    expect(first.text).toContain('header X-Token');
    expect(first.text).not.toContain('tok-canary');
    expect((await post(proxy.port, JSON.stringify(call(2, 'echo')))).status).toBe(502);
    expect(server.bodies).toEqual([]);
  });
});
