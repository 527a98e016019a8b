/**
 * Ports for servers' endpoints: spec.port when given, otherwise one picked
 * from the free loopback ports and remembered in the state directory, so a
 * server's URL stays the same across server and controller restarts.
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';

export class PortRegistry {
  readonly #file: string;
  #ports: Record<string, number> = {};
  #loading: Promise<void> | undefined;
  /** Assignments are serialized: two servers never get the same port, and none is lost. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(stateDir: string) {
    this.#file = join(stateDir, 'ports.json');
  }

  #load(): Promise<void> {
    this.#loading ??= readFile(this.#file, 'utf8').then(
      (text) => {
        this.#ports = JSON.parse(text) as Record<string, number>;
      },
      () => {
        this.#ports = {};
      },
    );
    return this.#loading;
  }

  /** The remembered port for `name`, assigning a free one the first time. */
  portFor(name: string): Promise<number> {
    const next = this.#queue.then(() => this.#portFor(name));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #portFor(name: string): Promise<number> {
    await this.#load();
    const known = this.#ports[name];
    if (known !== undefined) return known;
    const used = new Set(Object.values(this.#ports));
    let port = await freePort();
    while (used.has(port)) port = await freePort();
    this.#ports[name] = port;
    this.#persist();
    return port;
  }

  #writing: Promise<void> | undefined;
  #dirty = false;

  /**
   * Write-behind, coalesced: a burst of assignments (100 servers starting at
   * once) costs one or two atomic writes, and nobody waits on an fsync to start.
   */
  #persist(): void {
    if (this.#writing !== undefined) {
      this.#dirty = true;
      return;
    }
    this.#writing = writeFileAtomic(this.#file, JSON.stringify(this.#ports, null, 2))
      .catch(() => undefined)
      .finally(() => {
        this.#writing = undefined;
        if (this.#dirty) {
          this.#dirty = false;
          this.#persist();
        }
      });
  }

  /** Resolves once every assignment so far is on disk. */
  async flush(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing;
  }

  /** The remembered port was taken by someone else: pick another next time. */
  async forget(name: string): Promise<void> {
    await this.#load();
    if (!(name in this.#ports)) return;
    delete this.#ports[name];
    this.#persist();
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
