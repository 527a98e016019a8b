/**
 * The way in to a sandboxed HTTP server: the server listens on its port in
 * the sandbox's own network namespace, out of reach of the host. A
 * forwarder inside serves a unix socket, in a folder of the state directory
 * bound in, by piping each connection to that port (src/runtime/sandbox.ts);
 * this listens on the same port of the host's loopback and pipes each
 * connection to that socket. So apiary's HTTP proxy and probe reach the
 * server where they would reach an unsandboxed one, and need no change.
 *
 * One per process, owned by the runtime beside it: closed (its connections
 * ended and its folder removed) when the process ends.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileSafeName } from '../state/layout.js';
import { DIR_MODE } from '../util/atomic.js';

/** The socket's name in its folder, which the sandbox sees as INGRESS_DIR_INSIDE. */
export const INGRESS_SOCKET_NAME = 'http.sock';

/** Unix socket paths are limited to 107 bytes on Linux. */
const MAX_SOCKET_PATH = 107;

export class Ingress {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  /** The folder bound into the sandbox, where the forwarder inside makes its socket. */
  readonly dir: string;
  readonly port: number;

  private constructor(server: Server, dir: string, port: number) {
    this.#server = server;
    this.dir = dir;
    this.port = port;
  }

  /**
   * Listens on 127.0.0.1:port for `name`'s process, with a folder of its own
   * under `root` (owner-only; named after the server and a random part, so a
   * late close of one process's never removes its successor's). Folders of
   * the server's earlier processes that no one closed (a controller that
   * died) are removed first.
   */
  static async open(root: string, name: string, port: number): Promise<Ingress> {
    const safe = fileSafeName(name);
    const dir = join(root, `${safe}.${randomBytes(4).toString('hex')}`);
    const socketPath = join(dir, INGRESS_SOCKET_NAME);
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) throw new Error(`the ingress socket path ${socketPath} is longer than a unix socket allows (${MAX_SOCKET_PATH} bytes): use a shorter --state-dir`);
    const server = createServer();
    const ingress = new Ingress(server, dir, port);
    server.on('connection', (client: Socket) => ingress.#pipe(client, socketPath));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`cannot listen on 127.0.0.1:${port} for the sandboxed server (${err.code ?? err.name})`)));
      server.listen(port, '127.0.0.1', () => resolve());
    });
    // Only once the port is ours: no other process of this server is served any more.
    try {
      mkdirSync(root, { recursive: true, mode: DIR_MODE });
      for (const entry of readdirSafe(root)) if (entry.startsWith(`${safe}.`)) rmSync(join(root, entry), { recursive: true, force: true });
      mkdirSync(dir, { mode: DIR_MODE });
    } catch (err) {
      server.close();
      throw err;
    }
    return ingress;
  }

  /** A connection before the server listens (or its forwarder's socket exists) is closed, as a refused one would be. */
  #pipe(client: Socket, socketPath: string): void {
    const inside = connect(socketPath);
    for (const socket of [client, inside]) {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    }
    client.pipe(inside).pipe(client);
    client.on('error', () => inside.destroy());
    inside.on('error', () => client.destroy());
    client.on('close', () => inside.destroy());
    inside.on('close', () => client.destroy());
  }

  /** Stops listening at once (the port is free for the server's next process when this returns), ends every connection, removes the folder. */
  close(): void {
    this.#server.close();
    for (const socket of this.#sockets) socket.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
