/**
 * `apiary proxy NAME`: a stdio MCP server that is only a pipe to apiary's
 * HTTP endpoint for NAME, for clients that start every server as a process
 * (Claude Desktop). Messages pass through as they are, framed by the SDK's
 * own transports on each side; apiary's token is added here, so the client's
 * file holds none. What is apiary's own: a request the endpoint cannot take
 * (apiary down, the server gone) is answered with an error naming the URL,
 * so the client is never left waiting; and the revision agreed at
 * initialize is told to the HTTP side, which sends it with every request,
 * as the SDK's Client does for itself.
 */
import type { Readable, Writable } from 'node:stream';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioServerTransport } from '@modelcontextprotocol/server/stdio';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { messageOf } from '../errors.js';
import { fetchWithOwnSignal } from './own-signal-fetch.js';

export interface ShimOptions {
  url: URL;
  token?: string;
  stdin?: Readable;
  stdout?: Writable;
  /** Told of what goes wrong on the way (never a message's content). */
  onError?: (message: string) => void;
}

type Id = string | number;

function idOf(message: JSONRPCMessage): Id | undefined {
  const id = (message as { id?: unknown }).id;
  return typeof id === 'string' || typeof id === 'number' ? id : undefined;
}

/** Runs until the client closes stdin. */
export async function runStdioShim(options: ShimOptions): Promise<void> {
  const http = new StreamableHTTPClientTransport(options.url, { requestInit: { headers: options.token !== undefined ? { Authorization: `Bearer ${options.token}` } : {} }, fetch: fetchWithOwnSignal });
  const stdin = options.stdin ?? process.stdin;
  const stdio = new StdioServerTransport(stdin, options.stdout ?? process.stdout);
  const initializing = new Set<Id>();
  const closed = new Promise<void>((resolve) => (stdio.onclose = resolve));

  stdio.onmessage = (message: JSONRPCMessage) => {
    const id = idOf(message);
    const method = (message as { method?: unknown }).method;
    if (method === 'initialize' && id !== undefined) initializing.add(id);
    http.send(message).catch((err: unknown) => {
      options.onError?.(`${options.url.href}: ${messageOf(err)}`);
      // A request gets its answer even so; a notification has none to get.
      if (id !== undefined && method !== undefined) void stdio.send({ jsonrpc: '2.0', id, error: { code: -32603, message: `apiary's endpoint at ${options.url.href} did not take the request: ${messageOf(err)}` } });
    });
  };
  http.onmessage = (message: JSONRPCMessage) => {
    const id = idOf(message);
    if (id !== undefined && initializing.delete(id)) {
      const version = (message as { result?: { protocolVersion?: unknown } }).result?.protocolVersion;
      if (typeof version === 'string') http.setProtocolVersion(version);
    }
    void stdio.send(message);
  };
  http.onerror = (err) => options.onError?.(`${options.url.href}: ${messageOf(err)}`);
  stdio.onerror = (err) => options.onError?.(`stdin: ${messageOf(err)}`);

  await http.start();
  await stdio.start();
  // stdin ends when the client stops the server: the session at apiary ends with it.
  stdin.once('end', () => void stdio.close());
  await closed;
  await http.terminateSession().catch(() => undefined);
  await http.close();
}
