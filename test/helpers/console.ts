/** A console served in-process for a harness's controller, and a raw HTTP client that can send any Host and headers. */
import { request as httpRequest } from 'node:http';
import { afterEach } from 'vitest';
import { ConsoleServer } from '../../src/console/server.js';
import { createLogger } from '../../src/util/logger.js';
import { KeyStore } from '../../src/crypto/keys.js';
import type { Harness } from './controller.js';
import { sseParser } from './sse.js';

const servers: ConsoleServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json<T = Record<string, unknown>>(): T;
}

export interface ConsoleClient {
  server: ConsoleServer;
  port: number;
  /** With the API token unless `auth: false`, Host 127.0.0.1:port unless given. */
  request(method: string, path: string, options?: { body?: unknown; rawBody?: string; headers?: Record<string, string>; auth?: boolean }): Promise<Reply>;
}

export async function startConsole(h: Harness, keys?: KeyStore): Promise<ConsoleClient> {
  const controller = h.controller ?? (await h.start());
  const server = new ConsoleServer({
    dir: h.dir,
    stateDir: h.stateDir,
    keys: keys ?? new KeyStore({ env: { APIARY_KEY_FILE: h.keyFile } }),
    logger: createLogger((record) => h.logs.push(record), 'debug'),
    backend: controller,
    version: 'test',
  });
  await server.start();
  servers.push(server);
  const port = Number(new URL(server.url).port);
  return {
    server,
    port,
    request(method, path, options = {}) {
      const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
      const headers: Record<string, string> = {
        Host: `127.0.0.1:${port}`,
        ...(body !== undefined && options.rawBody === undefined ? { 'Content-Type': 'application/json' } : {}),
        ...(body !== undefined ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}),
        ...(options.auth === false ? {} : { Authorization: `Bearer ${server.apiToken}` }),
        ...options.headers,
      };
      return new Promise((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, method, path, headers }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: () => JSON.parse(text) }));
        });
        req.on('error', reject);
        req.end(body);
      });
    },
  };
}

/**
 * Reads an SSE stream until `until` holds for the events so far (or the timeout).
 * `seen` hears every batch as it comes (to know the stream is open before changing what it watches).
 */
export function readEvents(port: number, token: string, path: string, until: (events: { type: string; object: { kind: string; metadata: { name: string }; status?: { phase?: string } } }[]) => boolean, timeoutMs = 10_000, signal?: AbortSignal, seen?: (events: { type: string }[]) => void): Promise<{ events: { type: string; object: { kind: string; metadata: { name: string }; status?: { phase?: string } } }[]; raw: string }> {
  return new Promise((resolve, reject) => {
    const events: { type: string; object: never }[] = [];
    let raw = '';
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { Host: `127.0.0.1:${port}`, Authorization: `Bearer ${token}` } }, (res) => {
      const parse = sseParser((event) => events.push(event.data as never));
      res.on('data', (d: Buffer) => {
        raw += d.toString();
        parse(d.toString());
        seen?.(events);
        if (until(events)) {
          clearTimeout(timer);
          req.destroy();
          resolve({ events, raw });
        }
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for: the events awaited on ${path}; events so far: ${JSON.stringify(events.map((e: { type: string; object: { metadata: { name: string }; status?: { phase?: string } } }) => [e.type, e.object.metadata.name, e.object.status?.phase]))}`));
    }, timeoutMs);
    req.on('error', (err) => {
      if (!raw) reject(err);
    });
    // Stopped by the caller: what was read so far is the answer.
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      req.destroy();
      resolve({ events, raw });
    });
    req.end();
  });
}
