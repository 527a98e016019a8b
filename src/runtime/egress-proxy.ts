/**
 * The egress proxy for sandboxed servers with `network: allow`: an HTTP
 * proxy (CONNECT for TLS, absolute-form requests for plain HTTP) that lets a
 * server reach only the host:port its spec.sandbox.allow lists.
 *
 * One per controller, listening on one unix socket per server, in an
 * owner-only folder: the socket a connection arrives on says which server
 * it is, so there is no credential to hand out, leak or guess, and no TCP
 * port another local user could use. The socket's folder is bound into the
 * server's sandbox, where a forwarder serves it on the namespace's loopback
 * (src/runtime/sandbox.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { DIR_MODE } from '../util/atomic.js';

export interface EgressRefusal {
  server: string;
  /** host:port as asked for. */
  target: string;
  method: string;
}

interface Listener {
  server: Server;
  allow: Set<string>;
  path: string;
  /** Every connection, tunnels included (a tunnel leaves the HTTP server's books, not the socket server's). */
  sockets: Set<Socket>;
}

/** Unix socket paths are limited to 107 bytes on Linux. */
const MAX_SOCKET_PATH = 107;

export class EgressProxy {
  readonly #listeners = new Map<string, Listener>();
  readonly #onRefused: (refusal: EgressRefusal) => void;

  constructor(onRefused: (refusal: EgressRefusal) => void) {
    this.#onRefused = onRefused;
  }

  /**
   * Serves `name` with this allow list, on a socket in `dir` (made
   * owner-only); returns the socket's path. Called again while it serves, it
   * replaces the list and keeps the socket (a rolling update's two processes
   * share it). Each new socket has a name of its own, so one closing late
   * (its server replaced at once) never removes its successor's file.
   */
  async serve(name: string, dir: string, allow: readonly string[]): Promise<string> {
    const existing = this.#listeners.get(name);
    if (existing !== undefined) {
      existing.allow = new Set(allow.map((a) => a.toLowerCase()));
      return existing.path;
    }
    const path = join(dir, `egress-${randomBytes(6).toString('hex')}.sock`);
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH) throw new Error(`the egress socket path ${path} is longer than a unix socket allows (${MAX_SOCKET_PATH} bytes): use a shorter --state-dir`);
    mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    const listener: Listener = { server: createServer(), allow: new Set(allow.map((a) => a.toLowerCase())), path, sockets: new Set() };
    listener.server.on('connection', (socket: Socket) => {
      listener.sockets.add(socket);
      socket.once('close', () => listener.sockets.delete(socket));
    });
    listener.server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#connect(name, listener, req, socket, head));
    listener.server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#forward(name, listener, req, res));
    await new Promise<void>((resolve, reject) => {
      listener.server.once('error', reject);
      listener.server.listen(path, () => {
        listener.server.off('error', reject);
        resolve();
      });
    });
    this.#listeners.set(name, listener);
    return path;
  }

  serving(name: string): boolean {
    return this.#listeners.has(name);
  }

  async close(name: string): Promise<void> {
    const listener = this.#listeners.get(name);
    if (listener === undefined) return;
    this.#listeners.delete(name);
    for (const socket of listener.sockets) socket.destroy();
    await new Promise<void>((resolve) => listener.server.close(() => resolve()));
    rmSync(listener.path, { force: true });
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.#listeners.keys()].map((name) => this.close(name)));
  }

  #allowed(name: string, listener: Listener, target: string, method: string): boolean {
    if (listener.allow.has(target.toLowerCase())) return true;
    this.#onRefused({ server: name, target, method });
    return false;
  }

  /** CONNECT host:port: a tunnel, for HTTPS. */
  #connect(name: string, listener: Listener, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const target = req.url ?? '';
    socket.on('error', () => undefined);
    const hostPort = splitHostPort(target);
    if (hostPort === undefined || !this.#allowed(name, listener, target, 'CONNECT')) {
      socket.end(refusal(name, target));
      return;
    }
    const upstream: Socket = connect(hostPort.port, hostPort.host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket).pipe(upstream);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      socket.end(`HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\napiary egress proxy: cannot reach ${target} (${err.code ?? err.name})\n`);
    });
    socket.on('close', () => upstream.destroy());
  }

  /** GET http://host:port/path (a proxy request for plain HTTP). */
  #forward(name: string, listener: Listener, req: IncomingMessage, res: ServerResponse): void {
    let url: URL;
    try {
      url = new URL(req.url ?? '');
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('apiary egress proxy: a proxy request needs an absolute http:// URL\n');
      return;
    }
    // URL.hostname keeps an IPv6 address's brackets, as allow entries are written.
    const target = `${url.hostname}:${url.port !== '' ? url.port : '80'}`;
    if (url.protocol !== 'http:' || !this.#allowed(name, listener, target, req.method ?? 'GET')) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end(refusalText(name, target));
      return;
    }
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const upstream = request({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 80), path: `${url.pathname}${url.search}`, method: req.method, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`apiary egress proxy: cannot reach ${target} (${err.code ?? err.name})\n`);
    });
    req.pipe(upstream);
  }
}

function splitHostPort(target: string): { host: string; port: number } | undefined {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(target);
  if (match === null) return undefined;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

function refusalText(name: string, target: string): string {
  return `apiary egress proxy: ${target} is not in spec.sandbox.allow of server ${name}\n`;
}

function refusal(name: string, target: string): string {
  const body = refusalText(name, target);
  return `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}
