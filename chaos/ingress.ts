/**
 * Faults at apiary's front doors, sent as a careless or hostile client
 * would: raw sockets that start a `POST /mcp` and drop it or stall it
 * halfway through the body. They must end that request only: the
 * controller and every other client carry on.
 */
import { connect, type Socket } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

/** Opens a socket to `url`'s host and port and sends a POST that announces 1,000 bytes and sends 11. */
function partialPost(url: string, headers: Record<string, string>): Promise<Socket> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(target.port), target.hostname, () => {
      const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      socket.write(
        `POST ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n${extra}Content-Length: 1000\r\n\r\n{"jsonrpc":`,
      );
      resolve(socket);
    });
    socket.on('error', reject);
  });
}

/** Drops `count` uploads halfway at each URL: the socket is destroyed after the headers and a few bytes. */
export async function dropUploads(urls: readonly string[], headers: Record<string, string>, count: number): Promise<string[]> {
  const problems: string[] = [];
  for (const url of urls) {
    for (let i = 0; i < count; i++) {
      try {
        const socket = await partialPost(url, headers);
        // Reset rather than close: the way a client that dies mid-upload looks to the server.
        socket.resetAndDestroy();
      } catch (err) {
        problems.push(`could not open an upload to ${url}: ${String(err)}`);
      }
    }
  }
  return problems;
}

export interface Stall {
  /** Resolves with how the server ended each stalled upload (a status line, or "closed") or "still open" at the limit. */
  ended(limitMs: number): Promise<string[]>;
  destroy(): void;
}

/** Starts `count` uploads at `url` that never finish their body. */
export async function stallUploads(url: string, headers: Record<string, string>, count: number): Promise<Stall> {
  const sockets = await Promise.all(Array.from({ length: count }, () => partialPost(url, headers)));
  const outcomes = sockets.map(
    (socket) =>
      new Promise<string>((resolve) => {
        let first = '';
        socket.on('data', (d: Buffer) => (first ||= d.toString('latin1').split('\r\n')[0] ?? ''));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(first || 'closed'));
      }),
  );
  return {
    async ended(limitMs) {
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<'still open'>((resolve) => (timer = setTimeout(() => resolve('still open'), limitMs)));
      const result = await Promise.all(outcomes.map((o) => Promise.race([o, limit])));
      clearTimeout(timer);
      return result;
    },
    destroy() {
      for (const s of sockets) s.destroy();
    },
  };
}

/** Connects with the official SDK client and pings: what a well-behaved client sees beside the faults. */
export async function pingEndpoint(url: string, headers: Record<string, string>): Promise<string | undefined> {
  const client = new Client({ name: 'chaos-probe', version: '1' });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
    await client.ping();
    return undefined;
  } catch (err) {
    return `${url}: ${String(err)}`;
  } finally {
    await client.close().catch(() => undefined);
  }
}
