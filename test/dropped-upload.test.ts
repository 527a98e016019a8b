/**
 * A request whose body never arrives whole ends that request only (issue 13,
 * item 1): a client that drops the connection mid-body, or stalls, at a
 * server's endpoint, the aggregate, the proxy in front of an HTTP server and
 * the console. Each used to reject a promise nobody caught, which kills the
 * controller process; a stall waited for Node's 300 s request timeout.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { createRequire } from 'node:module';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { HttpError, readJsonBody, sendError, sendJson } from '../src/console/http.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import type { HttpEndpoint } from '../src/mcp/http-endpoint.js';
import { tinyEndpoint, type TinyEndpoint } from './helpers/tiny-endpoint.js';
import { HttpProxy } from '../src/mcp/http-proxy.js';
import { StateLayout } from '../src/state/layout.js';
import { BODY_TIMING, bodyAllowanceMs, readBody } from '../src/util/read-body.js';
import { harness, tinyServer } from './helpers/controller.js';

const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');
/** Timing for the stall tests: a body gets 300 ms, so a stalled one is answered well inside the test's time. */
const QUICK = { graceMs: 300, bytesPerSecond: 64 * 1024 };
const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });

// Every promise rejection nobody handled while these tests run: each one would have ended the controller.
const unhandled: unknown[] = [];
const recordUnhandled = (reason: unknown): void => void unhandled.push(reason);
beforeAll(() => void process.on('unhandledRejection', recordUnhandled));
beforeEach(() => void (unhandled.length = 0));
afterAll(() => void process.off('unhandledRejection', recordUnhandled));

/** The head of a POST /mcp that promises 1000 bytes, and the first 11 of them. */
function partialPost(port: number, token: string | undefined, path = '/mcp'): string {
  return [
    `POST ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Content-Type: application/json',
    'Accept: application/json, text/event-stream',
    ...(token !== undefined ? [`Authorization: Bearer ${token}`] : []),
    'Content-Length: 1000',
    '',
    '{"jsonrpc":',
  ].join('\r\n');
}

/** Sends the partial POST, then closes the socket once it is written; resolves when it is closed. */
function dropUpload(port: number, token?: string, path?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(partialPost(port, token, path), () => socket.destroy()));
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
}

/** Sends the partial POST and waits: resolves with what the server answered by the time it closed the connection. */
function stallUpload(port: number, token?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(partialPost(port, token)));
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (answer += d));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
  });
}

async function initialize(url: string, token?: string): Promise<number> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...(token !== undefined ? { Authorization: `Bearer ${token}` } : {}) },
    body: INIT,
  });
  await res.arrayBuffer();
  return res.status;
}

describe('a real controller', () => {
  it('an upload dropped mid-body at a stdio server endpoint, the aggregate or the proxy in front of an HTTP server ends that request only: each answers the next one', async () => {
    const h = await harness();
    await h.write('tiny.yaml', tinyServer('tiny', h));
    await h.write('everything.yaml', `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: everything\nspec:\n  command: node\n  args: [${JSON.stringify(EVERYTHING)}, streamableHttp]\n  transport: streamable-http\n`);
    const controller = await h.start();
    const urls: Record<string, string> = {};
    for (const name of ['tiny', 'everything']) {
      urls[name] = await h.waitFor(`${name} Ready`, async () => {
        const status = await h.status(name);
        return findCondition(status?.conditions, 'Ready')?.status === 'True' ? status!.url : undefined;
      }, 30_000);
    }
    urls['aggregate'] = controller.aggregateUrl!;
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    for (const [which, url] of Object.entries(urls)) {
      const port = Number(new URL(url).port);
      await dropUpload(port, token);
      await dropUpload(port, token);
      expect({ which, status: await initialize(url, token) }).toEqual({ which, status: 200 });
    }
    expect(unhandled).toEqual([]);
  }, 60_000);
});

describe('HttpEndpoint', () => {
  let tiny: TinyEndpoint;
  let endpoint: HttpEndpoint;
  beforeAll(async () => {
    tiny = await tinyEndpoint('stalled', { endpoint: { token: 't0k', bodyTiming: QUICK } });
    endpoint = tiny.endpoint;
  });
  afterAll(() => tiny.close());

  it('a stalled upload is answered 408 and its connection closed once the body deadline passes; the endpoint goes on serving', async () => {
    const answer = await stallUpload(endpoint.port, 't0k');
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain('the request body did not arrive in time');
    expect(await initialize(endpoint.url, 't0k')).toBe(200);
    expect(unhandled).toEqual([]);
  });

  it('a legacy /messages upload dropped mid-body ends that request only', async () => {
    const stream = await fetch(`http://127.0.0.1:${endpoint.port}/sse`, { headers: { Authorization: 'Bearer t0k', Accept: 'text/event-stream' } });
    const reader = stream.body!.getReader();
    let events = '';
    while (!events.includes('\n\n')) events += new TextDecoder().decode((await reader.read()).value);
    const messages = /data: (\/messages\?sessionId=\S+)/.exec(events)![1]!;
    await dropUpload(endpoint.port, 't0k', messages);
    await reader.cancel();
    expect(await initialize(endpoint.url, 't0k')).toBe(200);
    expect(unhandled).toEqual([]);
  });
});

describe('HttpProxy', () => {
  let upstream: Server;
  let proxy: HttpProxy;
  beforeAll(async () => {
    // A stand-in HTTP server: answers every POST with what it was sent.
    upstream = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => res.writeHead(200, { 'Content-Type': 'application/json' }).end(Buffer.concat(chunks)));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    proxy = new HttpProxy(0, (upstream.address() as { port: number }).port, { token: 't0k', bodyTiming: QUICK });
    await proxy.listen();
  });
  afterAll(async () => {
    await proxy.close();
    await new Promise<void>((r) => upstream.close(() => r()));
  });

  it('an upload dropped mid-body ends that request only; a stalled one is answered 408; the next request is forwarded', async () => {
    await dropUpload(proxy.port, 't0k');
    const answer = await stallUpload(proxy.port, 't0k');
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(await initialize(`http://127.0.0.1:${proxy.port}/mcp`, 't0k')).toBe(200);
    expect(unhandled).toEqual([]);
  });
});

describe("the console's body reader", () => {
  let server: Server;
  const seen: unknown[] = [];
  afterEach(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });

  async function consoleLike(): Promise<number> {
    // As the console handles a change: the body read, and any failure answered by sendError.
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      readJsonBody(req, QUICK).then(
        (body) => sendJson(res, 200, body),
        (err: unknown) => {
          seen.push(err);
          sendError(res, err);
        },
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as { port: number }).port;
  }

  it('a stalled change is answered 408 RequestTimeout within the deadline; a dropped one is a handled failure', async () => {
    const port = await consoleLike();
    const answer = await stallUpload(port);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain('"reason":"RequestTimeout"');
    await dropUpload(port);
    const ok = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"a":1}' });
    expect(await ok.json()).toEqual({ a: 1 });
    expect(seen.every((e) => e instanceof HttpError)).toBe(true);
    expect(unhandled).toEqual([]);
  });
});

describe('the body deadline', () => {
  it('gives a small body seconds and a progressing upload of the 4 MiB limit about a minute', () => {
    expect(bodyAllowanceMs(BODY_TIMING, 1000)).toBeLessThan(6_000);
    expect(bodyAllowanceMs(BODY_TIMING, 4 * 1024 * 1024)).toBe(69_000);
  });
});

describe('readBody', () => {
  it('reads a body that arrived whole before it was asked for (a handler that awaited something first)', async () => {
    const server = createServer((req, res) => {
      // Asked only once the whole request is in (and still unread): the console reads after its own checks.
      const whenComplete = (): void => {
        if (!req.complete) return void setImmediate(whenComplete);
        void readBody(req, res, { limit: 1024 }).then((read) => res.end(read.ok ? read.body : read.reason));
      };
      whenComplete();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const answer = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: '{"whole":true}' });
    expect(await answer.text()).toBe('{"whole":true}');
    await new Promise<void>((r) => server.close(() => r()));
  });
});
