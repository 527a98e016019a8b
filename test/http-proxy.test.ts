/**
 * apiary's proxy in front of an HTTP server, at its edges: what a client can
 * make the server run past spec.tools, and what a bad header value does. The
 * server behind it is the MCP SDK's own (stateless Streamable HTTP), which
 * strips a byte-order mark before parsing, as most JSON readers do.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EgressRedaction } from '../src/mcp/egress-redaction.js';
import { HttpProxy } from '../src/mcp/http-proxy.js';
import { systemClock } from '../src/util/clock.js';
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
  return postTo(port, '/mcp', body);
}

function postTo(port: number, path: string, body: Buffer | string): Promise<{ status: number; text: string }> {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path,
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
describe('redaction at the proxy', () => {
  it('a JSON answer holding a secret value is rewritten and goes on with its new Content-Length', async () => {
    const server = await upstream();
    const reported: string[] = [];
    const redaction = new EgressRedaction(systemClock, (name, secret, key) => reported.push(`${name} ${secret}/${key}`));
    redaction.set('web', [{ secret: 'env', key: 'secret', value: 'SECRET=1' }]);
    const proxy = new HttpProxy(0, server.port, { name: 'web', redaction: redaction.forServer('web') });
    await proxy.listen();
    closing.push(() => proxy.close());
    const answer = await new Promise<{ length: string | undefined; text: string }>((resolve, reject) => {
      const body = JSON.stringify(call(1, 'env'));
      const req = request({ host: '127.0.0.1', port: proxy.port, method: 'POST', path: '/mcp', headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' } }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ length: res.headers['content-length'], text }));
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(JSON.parse(answer.text)).toMatchObject({ id: 1, result: { content: [{ type: 'text', text: '[redacted: secret env/secret]' }] } });
    expect(answer.length).toBe(String(Buffer.byteLength(answer.text)));
    expect(reported).toEqual(['web env/secret']);
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

/** A server that answers with event streams written by hand, in the pieces `chunks` gives (each its own write). */
async function streamingUpstream(answer: (req: IncomingMessage) => { status?: number; chunks: string[] } | undefined): Promise<{ port: number; posts: string[] }> {
  const posts: string[] = [];
  const server: Server = createServer((req, res) => {
    const body: Buffer[] = [];
    req.on('data', (d: Buffer) => body.push(d));
    req.on('end', () => {
      if (req.method === 'POST') posts.push(Buffer.concat(body).toString('utf8'));
      const reply = answer(req);
      if (reply === undefined) return void res.writeHead(202).end();
      res.writeHead(reply.status ?? 200, { 'Content-Type': 'text/event-stream' });
      res.flushHeaders();
      // Each piece its own write, on its own turn: the proxy sees them as they come, not as one buffer.
      const next = (i: number): void => {
        if (i === reply.chunks.length) return void (req.url?.startsWith('/sse') ? undefined : res.end());
        res.write(reply.chunks[i]);
        setImmediate(() => next(i + 1));
      };
      next(0);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closing.push(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as AddressInfo).port, posts };
}

/** GET /sse at the proxy, read until `until` holds of what came. */
function openStream(port: number, until: (text: string) => boolean): Promise<{ text: () => string; done: Promise<string>; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'GET', path: '/sse', headers: { Host: `127.0.0.1:${port}`, Accept: 'text/event-stream' } }, (res) => {
      let text = '';
      let settle: (text: string) => void = () => undefined;
      const done = new Promise<string>((r) => (settle = r));
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
        if (until(text)) settle(text);
      });
      resolve({ text: () => text, done, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('event streams from the server, read as event streams', () => {
  const tools = { jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'zeta' }, { name: 'env' }, { name: 'alpha' }] } };
  const asLines = (value: unknown): string[] => JSON.stringify(value, null, 1).split('\n');

  it('CRLF line ends, a comment, data on many lines and events cut mid-line: each event keeps its id and type, and spec.tools applies', async () => {
    const lines = asLines(tools);
    const server = await streamingUpstream(() => ({
      chunks: [
        ': keep-alive\r\n\r\n',
        'id: ev-1\r\nevent: message\r\n',
        // The JSON-RPC answer spread over data lines (the standard joins them with a newline), cut inside a line and between CR and LF.
        ...lines.slice(0, -1).map((l) => `data: ${l}\r\n`),
        `data:${lines.at(-1)!.slice(0, 1)}`,
        `${lines.at(-1)!.slice(1)}\r`,
        '\n\r\n',
      ],
    }));
    const proxy = await proxyTo(server.port, ['env']);
    const answer = await post(proxy.port, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }));
    expect(answer.status).toBe(200);
    // One event, re-serialised: the comment kept, the id and type kept, the data one line of filtered, sorted JSON.
    expect(answer.text).toBe(`: keep-alive\nid: ev-1\nevent: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'alpha' }, { name: 'zeta' }] } })}\n\n`);
  });

  it('a legacy stream whose endpoint event ends in CRLF is known by its session: a refused call is answered on it', async () => {
    const server = await streamingUpstream((req) => (req.method === 'GET' ? { chunks: ['event: endpoint\r\ndata: /messages?sessionId=s-1\r\n\r\n'] } : undefined));
    const proxy = await proxyTo(server.port, ['env']);
    const stream = await openStream(proxy.port, (text) => text.includes('"id":9'));
    try {
      await vi.waitFor(() => expect(stream.text()).toContain('sessionId=s-1'), { timeout: 10_000 });
      const refused = await postTo(proxy.port, '/messages?sessionId=s-1', JSON.stringify(call(9, 'env')));
      expect(refused.status).toBe(202);
      const events = await stream.done;
      expect(events).toContain('event: endpoint\ndata: /messages?sessionId=s-1\n\n');
      expect(events).toMatch(/event: message\ndata: \{"jsonrpc":"2.0","id":9,"error":\{[^\n]*spec\.tools/);
      expect(server.posts).toEqual([]);
    } finally {
      stream.close();
    }
  });
});
