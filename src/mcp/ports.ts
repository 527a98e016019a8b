/**
 * Ports for servers' endpoints: spec.port when given, otherwise one picked
 * from the free loopback ports and remembered in the state directory, so a
 * server's URL stays the same across server and controller restarts.
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { messageOf } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';

/** The key of the aggregate endpoint's port in ports.json: not a DNS-1123 name, so no server can have it. */
export const AGGREGATE_PORT_KEY = '_aggregate';

/** The key of the internal port an HTTP server listens on behind apiary's proxy. */
export function upstreamPortKey(name: string): string {
  return `${name}~upstream`;
}

export interface PortRegistryOptions {
  /** Told when ports.json is there but unreadable (it is then rebuilt). */
  onProblem?: (file: string, error: string) => void;
  /** The ports the world shows (running servers' status URLs): what a damaged file is rebuilt from. */
  recover?: () => Record<string, number>;
}

export class PortRegistry {
  readonly #file: string;
  readonly #opts: PortRegistryOptions;
  #ports: Record<string, number> = {};
  #loaded = false;
  /** Assignments are serialized: two servers never get the same port, and none is lost. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(stateDir: string, options: PortRegistryOptions = {}) {
    this.#file = join(stateDir, 'ports.json');
    this.#opts = options;
  }

  /** Reads the file once; a damaged one is named, rebuilt from the world and written back, never kept as broken. */
  async #load(): Promise<void> {
    if (this.#loaded) return;
    let text: string | undefined;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#opts.onProblem?.(this.#file, messageOf(err));
    }
    if (text !== undefined) {
      const parsed = parsePorts(text);
      if (typeof parsed === 'string') {
        this.#opts.onProblem?.(this.#file, parsed);
        this.#ports = { ...this.#opts.recover?.() };
        this.#persist();
      } else {
        this.#ports = parsed;
      }
    }
    this.#loaded = true;
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
    this.#writing = writeFileAtomic(this.#file, this.#text())
      .catch(() => undefined)
      .finally(() => {
        this.#writing = undefined;
        if (this.#dirty) {
          this.#dirty = false;
          this.#persist();
        }
      });
  }

  /** Rewrites the file if it is not what was last written (damaged or removed behind our back). */
  async repair(): Promise<void> {
    if (!this.#loaded || this.#writing !== undefined) return;
    const current = await readFile(this.#file, 'utf8').catch(() => undefined);
    if (current !== this.#text()) {
      this.#opts.onProblem?.(this.#file, current === undefined ? 'it is gone' : 'it is not what apiary wrote');
      this.#persist();
    }
  }

  #text(): string {
    return JSON.stringify(this.#ports, null, 2);
  }

  /** Resolves once every assignment so far is on disk. */
  async flush(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing;
  }

  /** The remembered port is no longer wanted (its server is gone, or someone else took it): pick another next time. */
  async forget(name: string): Promise<void> {
    await this.#load();
    if (!(name in this.#ports)) return;
    delete this.#ports[name];
    this.#persist();
  }
}

/** name -> port, or why the text is not that. */
function parsePorts(text: string): Record<string, number> | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return messageOf(err);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object of ports';
  const ports: Record<string, number> = {};
  for (const [name, port] of Object.entries(value)) {
    if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) return `the port of "${name}" is not a port number`;
    ports[name] = port as number;
  }
  return ports;
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
