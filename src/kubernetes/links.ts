/**
 * How apiary's local endpoints reach servers that run on a cluster, so
 * clients, the aggregate endpoint and client configuration work as they do
 * for local processes: a stdio server's container is attached to (client-
 * node's Attach: its stdin and stdout over the API server's WebSocket) and
 * handed to the gateway's bridge as if it were a local process's pipes; an
 * HTTP server is reached through a local port-forward the controller keeps
 * (client-node's PortForward, one WebSocket per connection), behind the
 * gateway's proxy. A link follows the server's current pod; a closed attach
 * is opened again on the next reconcile.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { Attach, PortForward, type KubeConfig } from '@kubernetes/client-node';
import { backoff } from '../util/backoff.js';
import type { Logger } from '../util/logger.js';
import { messageOf } from '../errors.js';
import type { Gateway } from '../mcp/gateway.js';
import type { HealthOptions } from '../mcp/health.js';
import type { ToolFilterSpec } from '../mcp/tool-filter.js';
import type { Transport } from '../api/manifests.js';
import { CONTAINER_PORT } from './render.js';

/** A failed attach is tried again after 1 s, doubling to 30 s. */
const LINK_RETRY = { baseMs: 1_000, capMs: 30_000 };

interface Link {
  transport: Transport;
  /** The pod the link goes to now. */
  pod?: string;
  /** What the gateway knows this upstream as (a process id, for a local server). */
  id: number;
  socket?: { close(): void };
  forward?: Server;
  error?: string;
  /** Attaches failed in a row, and when the next try is due (1 s doubling to 30 s). */
  failures: number;
  retryAt: number;
  /** The pod those failures were with (a new pod gets a fresh try). */
  failedPod?: string;
}

export interface LinkOptions {
  config: KubeConfig;
  namespace: string;
  gateway: Gateway;
  logger: Logger;
  /** The link changed on its own (an attach closed): reconcile the server. */
  onChange(name: string): void;
}

/** Ids for attached containers, in the gateway's place of pids: far above any real pid. */
let nextId = 1 << 30;

export class ClusterLinks {
  readonly #opts: LinkOptions;
  readonly #links = new Map<string, Link>();

  constructor(options: LinkOptions) {
    this.#opts = options;
  }

  has(name: string): boolean {
    return this.#links.has(name);
  }

  /** Why the link to the server's pod is down, if it is. */
  error(name: string): string | undefined {
    return this.#links.get(name)?.error;
  }

  /** The server's endpoint on `port`, connected to `pod` (its container running). */
  async ensure(name: string, pod: string, transport: Transport, port: number, health: HealthOptions, tools?: ToolFilterSpec): Promise<void> {
    const { gateway } = this.#opts;
    let link = this.#links.get(name);
    if (link !== undefined && link.transport !== transport) {
      await this.remove(name);
      link = undefined;
    }
    link ??= { transport, id: 0, failures: 0, retryAt: 0 };
    this.#links.set(name, link);
    if (transport === 'stdio') {
      await gateway.ensure(name, 'stdio', port, health, tools);
      if (link.pod === pod && link.socket !== undefined) return;
      // A failed attach is not retried at every reconcile (the gateway's own changes requeue it): it backs off.
      if (link.socket === undefined && link.failedPod === pod && Date.now() < link.retryAt) return;
      await this.#attach(name, link, pod);
      return;
    }
    link.forward ??= await this.#forwarder(name, link);
    link.pod = pod;
    await gateway.ensure(name, transport, port, health, tools, (link.forward.address() as AddressInfo).port);
    if (link.id === 0) {
      link.id = nextId++;
      gateway.attach(name, observed(name, link.id));
    }
  }

  async #attach(name: string, link: Link, pod: string): Promise<void> {
    const { gateway, logger } = this.#opts;
    if (link.socket !== undefined) this.#close(name, link, `pod ${link.pod} was replaced by ${pod}`);
    if (link.failedPod !== pod) link.failures = 0;
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    try {
      const socket = await new Attach(this.#opts.config).attach(this.#opts.namespace, pod, 'server', stdout, null, stdin, false);
      const id = nextId++;
      Object.assign(link, { pod, id, socket });
      delete link.error;
      const openedAt = Date.now();
      socket.on('close', () => {
        if (link.id !== id) return;
        delete link.socket;
        gateway.detach(name, id, `the attach to pod ${pod} closed`);
        // One that closes at once (the container not running, a kubelet refusing) backs off as a failed one does.
        this.#retryLater(name, link, Date.now() - openedAt < 5_000 ? `the attach to pod ${pod} closed after ${Date.now() - openedAt} ms` : undefined, pod);
      });
      gateway.attach(name, { ...observed(name, id), stdio: { stdin, stdout } });
      logger.info('attached to the server\'s container', { server: name, pod, namespace: this.#opts.namespace });
    } catch (err) {
      delete link.pod;
      this.#retryLater(name, link, `cannot attach to pod ${pod}: ${attachError(err)}`, pod);
    }
  }

  /** Reconcile the server again: at once after a link that served a while, backing off (1 s doubling to 30 s) after a failure. */
  #retryLater(name: string, link: Link, error: string | undefined, pod: string): void {
    link.failedPod = pod;
    if (error === undefined) {
      link.failures = 0;
      link.retryAt = 0;
      this.#opts.onChange(name);
      return;
    }
    if (link.error !== error) this.#opts.logger.warn('cannot attach to the server\'s container', { server: name, error });
    link.error = error;
    link.failures += 1;
    const delay = backoff(LINK_RETRY, link.failures);
    link.retryAt = Date.now() + delay;
    setTimeout(() => this.#opts.onChange(name), delay).unref();
  }

  /** A local port whose every connection is port-forwarded to the current pod's container port. */
  async #forwarder(name: string, link: Link): Promise<Server> {
    const forwarder = new PortForward(this.#opts.config);
    const server = createServer((socket: Socket) => {
      const pod = link.pod;
      if (pod === undefined) {
        socket.destroy();
        return;
      }
      socket.on('error', () => undefined);
      forwarder.portForward(this.#opts.namespace, pod, [CONTAINER_PORT], socket, null, socket).then(
        (ws) => {
          delete link.error;
          // The WebSocket (not restartable: retryCount 0) ends with the connection, either side first.
          (ws as { on?: (event: string, fn: () => void) => void }).on?.('close', () => socket.destroy());
          socket.on('close', () => (ws as { close?: () => void }).close?.());
        },
        (err: unknown) => {
          link.error = `cannot port-forward to pod ${pod}: ${attachError(err)}`;
          this.#opts.logger.warn('cannot port-forward to the server\'s pod', { server: name, pod, error: link.error });
          socket.destroy();
        },
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return server;
  }

  /** Closes the link's attach on apiary's own account (not a failure: no back-off follows). */
  #close(name: string, link: Link, message: string): void {
    const socket = link.socket;
    const id = link.id;
    delete link.socket;
    link.id = 0;
    socket?.close();
    if (id !== 0) this.#opts.gateway.detach(name, id, message);
  }

  /** The server's pod is not running: its endpoint answers that at once, and the link waits for the next pod. */
  down(name: string, message: string): void {
    const link = this.#links.get(name);
    if (link === undefined) return;
    if (link.socket !== undefined) this.#close(name, link, message);
    else if (link.id !== 0) this.#opts.gateway.detach(name, link.id, message);
    if (link.transport !== 'stdio') link.id = 0;
    delete link.pod;
    this.#opts.gateway.unavailable(name, message);
  }

  /** The server is gone: its link and its endpoint. */
  async remove(name: string): Promise<void> {
    const link = this.#links.get(name);
    this.#links.delete(name);
    link?.socket?.close();
    if (link?.forward !== undefined) await new Promise<void>((resolve) => link.forward!.close(() => resolve()));
    await this.#opts.gateway.remove(name);
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.#links.keys()].map((name) => this.remove(name)));
  }
}

/** What the gateway is handed for an attached container: the shape of a local process, without a process. */
function observed(name: string, id: number): Parameters<Gateway['attach']>[1] {
  return { name, pid: id, slot: 'current', startedAt: new Date().toISOString(), configHash: '', generation: 0, stopping: false, adopted: false };
}

/** ws's and client-node's errors, in a line. */
function attachError(err: unknown): string {
  const e = err as { message?: string; target?: { url?: string } };
  if (e.message !== undefined && e.message !== '') return e.message.split('\n')[0]!;
  return messageOf(err);
}
