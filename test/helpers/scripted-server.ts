/**
 * The server end of a stdio MCP server on in-memory streams: it answers
 * apiary's handshake (initialize, tools/list) and pings by itself, unless
 * told to stay silent, and lets the test answer everything else. As a 2025
 * server it refuses the server/discover probe (method not found); `modern`
 * makes it a 2026-07-28 one instead: it answers server/discover, and
 * refuses initialize and ping as a modern-only server does.
 */
import { PassThrough } from 'node:stream';
import type { Id, JsonRpcMessage } from '../../src/mcp/jsonrpc.js';
import { waitFor } from './wait.js';

export interface ScriptedServer {
  /** What apiary writes (the process's stdin) and reads (its stdout). */
  toServer: PassThrough;
  fromServer: PassThrough;
  received: JsonRpcMessage[];
  reply(message: JsonRpcMessage): void;
  /** The next request of this method the server receives. */
  next(method: string): Promise<JsonRpcMessage & { id: Id; params?: Record<string, unknown> }>;
  /** The process leaves: its stdout closes. */
  close(): void;
  /**
   * Resolves once apiary has handled everything this server sent before:
   * apiary answers a server's ping itself, and stdio keeps order both ways,
   * so the answer comes after whatever the earlier lines made it write.
   */
  flush(): Promise<void>;
}

/** Each newline-delimited JSON message written to `stream` (what apiary sends a stdio server), as it is read. */
export function onJsonLines<T>(stream: PassThrough, handle: (message: T) => void): void {
  let buffer = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) !== -1) {
      const message = JSON.parse(buffer.slice(0, nl)) as T;
      buffer = buffer.slice(nl + 1);
      handle(message);
    }
  });
}

/** `listChanged`: a modern server that says its tools change (it tells so on a listen stream, which the test writes). */
export function scriptedServer(options: { silent?: boolean; name?: string; tools?: string[]; modern?: boolean; listChanged?: boolean } = {}): ScriptedServer {
  const toServer = new PassThrough();
  const fromServer = new PassThrough();
  const received: JsonRpcMessage[] = [];
  const waiters: { method: string; resolve: (m: never) => void }[] = [];
  let flushes = 0;
  const reply = (message: JsonRpcMessage): void => void fromServer.write(`${JSON.stringify(message)}\n`);
  onJsonLines<JsonRpcMessage & { id?: Id; method?: string }>(toServer, (m) => {
    received.push(m);
    const refuse = (): void => reply({ jsonrpc: '2.0', id: m.id!, error: { code: -32601, message: `Method not found: ${m.method}` } });
    if (options.silent === true) {
      // Says nothing by itself; the test may still answer what it waits for.
    } else if (m.method === 'server/discover' && options.modern !== true) refuse();
    else if (m.method === 'server/discover') {
      reply({ jsonrpc: '2.0', id: m.id!, result: { resultType: 'complete', supportedVersions: ['2026-07-28'], capabilities: { tools: options.listChanged === true ? { listChanged: true } : {} }, ttlMs: 0, cacheScope: 'private', _meta: { 'io.modelcontextprotocol/serverInfo': { name: options.name ?? 'scripted', version: '2' } } } });
    } else if (options.modern === true && (m.method === 'initialize' || m.method === 'ping')) refuse();
    else if (m.method === 'initialize') reply({ jsonrpc: '2.0', id: m.id!, result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: options.name ?? 'scripted', version: '1' } } });
    else if (m.method === 'tools/list') reply({ jsonrpc: '2.0', id: m.id!, result: { tools: (options.tools ?? []).map((name) => ({ name, inputSchema: { type: 'object' } })) } });
    else if (m.method === 'ping') reply({ jsonrpc: '2.0', id: m.id!, result: {} });
    const w = waiters.findIndex((x) => x.method === m.method);
    if (w !== -1) waiters.splice(w, 1)[0]!.resolve(m as never);
  });
  return {
    toServer,
    fromServer,
    received,
    reply,
    next: (method) => new Promise((resolve) => waiters.push({ method, resolve: resolve as never })),
    close: () => {
      fromServer.end();
      fromServer.destroy();
    },
    async flush() {
      const id = `flush-${++flushes}`;
      reply({ jsonrpc: '2.0', id, method: 'ping' });
      await waitFor(`apiary's answer to the server's ping ${id}`, () => received.some((m) => 'id' in m && m.id === id && !('method' in m)));
    },
  };
}
