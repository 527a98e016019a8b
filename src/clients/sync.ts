/**
 * Registered clients kept in sync with the servers apiary runs.
 *
 * Who rewrites them: the controller, through the `ClientSync` runnable, when
 * the set of servers it serves changes — whatever changed it: a CLI verb, the
 * console, a manifest edited by hand, a git revision. The CLI verbs alone
 * would miss every change made without them (the most common one: a manifest
 * edited in an editor), and a rewrite from them would race the controller's
 * own view of the ports. The controller is the one place that sees them all.
 *
 * What "the servers" are: every MCPServer whose endpoint has a URL, whatever
 * its phase: a server that crashes and restarts keeps its entry (the client
 * gets an error while it is down, as it would from any server), so clients are
 * rewritten when servers are installed, deleted or renamed, not when they
 * flap.
 */
import type { MCPServerStatus } from '../api/status.js';
import type { Host, Runnable } from '../api/runnable.js';
import { messageOf } from '../errors.js';
import type { StateLayout } from '../state/layout.js';
import { composeStateView, type StateView, type StateViewInput } from '../state/view.js';
import { readEndpointToken } from '../mcp/endpoint-token.js';
import { AGGREGATE_PORT_KEY } from '../mcp/ports.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../util/logger.js';
import { planClientWrite, updateClientFile, writtenEntries, type ClientFileResult } from './config-file.js';
import { clientEntries, clientFound, clientInfo, KNOWN_CLIENTS, type KnownClient, type Launcher } from './known.js';
import { clientFile, readRegistry, underRegistry, type RegisteredClient } from './registry.js';

/** The name of the one entry an --aggregate client gets. */
export const AGGREGATE_ENTRY = 'apiary';

/** Every server with an endpoint, name -> URL (only when a controller runs: a record without one is history). */
export function endpointServers(view: Pick<StateView, 'objects' | 'controller'>): Record<string, string> {
  const servers: Record<string, string> = {};
  if (view.controller === undefined) return servers;
  for (const o of view.objects) {
    if (o.kind !== 'MCPServer' || o.orphan) continue;
    const url = (o.object.status as MCPServerStatus | undefined)?.url;
    if (url !== undefined && url !== '') servers[o.name] = url;
  }
  return servers;
}

/** What apiary would write for a client now. */
export interface Wanted {
  servers: Record<string, string>;
  aggregateUrl: string | undefined;
  token: string | undefined;
  launcher: Launcher;
  /** A controller runs: without one, which servers have endpoints is not known. */
  running?: boolean;
}

export function wantedEntries(client: KnownClient, aggregate: boolean, wanted: Wanted): Record<string, unknown> {
  if (aggregate) return wanted.aggregateUrl !== undefined ? clientEntries(client, { [AGGREGATE_ENTRY]: wanted.aggregateUrl }, wanted.token, wanted.launcher) : {};
  return clientEntries(client, wanted.servers, wanted.token, wanted.launcher);
}

/** How a client starts this very apiary (Claude Desktop's `apiary proxy NAME`): the node and script that run now. */
export function selfLauncher(dir: string, stateDir: string): Launcher {
  return { command: process.execPath, args: process.argv[1] !== undefined ? [process.argv[1]] : [], dir, stateDir };
}

/** What apiary would write now, from a view of the state directory (its ports and its token). */
export async function wantedFrom(view: Pick<StateView, 'objects' | 'controller'>, layout: StateLayout, dir: string): Promise<Wanted> {
  const ports = JSON.parse(await readFile(join(layout.root, 'ports.json'), 'utf8').catch(() => '{}')) as Record<string, number>;
  const port = ports[AGGREGATE_PORT_KEY];
  const aggregateUrl = view.controller !== undefined && port !== undefined ? `http://127.0.0.1:${port}/mcp` : undefined;
  return { servers: endpointServers(view), aggregateUrl, token: await readEndpointToken(layout), launcher: selfLauncher(dir, layout.root), running: view.controller !== undefined };
}

export interface SyncResult {
  written?: ClientFileResult;
  removed?: ClientFileResult;
}

/**
 * Brings one client's file to what apiary would write now: entries added or
 * updated, and apiary's entries for servers that are gone taken out. An
 * entry of the same name that apiary did not write is left alone (reported
 * in `skipped`), never replaced by a background rewrite.
 */
export async function syncClient(layout: StateLayout, registered: Pick<RegisteredClient, 'client' | 'file' | 'aggregate'>, wanted: Wanted, options: { dryRun?: boolean } = {}): Promise<SyncResult> {
  const entries = wantedEntries(registered.client, registered.aggregate, wanted);
  const result: SyncResult = {};
  if (Object.keys(entries).length > 0) result.written = await updateClientFile(registered.client, registered.file, entries, layout, { skipClashes: true, dryRun: options.dryRun === true });
  const gone = Object.keys(await writtenEntries(layout, registered.file)).filter((name) => !(name in entries));
  if (gone.length > 0) result.removed = await updateClientFile(registered.client, registered.file, undefined, layout, { only: gone, dryRun: options.dryRun === true });
  return result;
}

export type ClientState = 'connected' | 'stale' | 'not configured' | 'unreadable' | 'unknown';

export interface ClientStatus {
  client: KnownClient;
  title: string;
  file: string;
  found: boolean;
  registered: boolean;
  aggregate: boolean;
  state: ClientState;
  /** Why it is stale or unreadable (entries to add, update or take out; the parse error with its line). */
  detail?: string;
}

/**
 * Each known client's state: connected (its file holds what apiary would
 * write now), stale (it holds apiary's entries, but not those), not
 * configured (nothing of apiary's in it), unreadable (the error names the
 * line), unknown (apiary's entries are there, but with no controller running
 * which servers have endpoints is not known). A registered client's own file
 * (--file) is the one looked at.
 */
export async function clientStatuses(layout: StateLayout, wanted: Wanted, env: NodeJS.ProcessEnv): Promise<ClientStatus[]> {
  const registry = await readRegistry(layout);
  const out: ClientStatus[] = [];
  for (const client of KNOWN_CLIENTS) {
    const mine = registry.filter((r) => r.client === client);
    const targets = mine.length > 0 ? mine : [{ client, file: clientFile(client, undefined, env), aggregate: false }];
    for (const target of targets) {
      const status: ClientStatus = { client, title: clientInfo(client).title, file: target.file, found: await clientFound(client, env), registered: mine.length > 0, aggregate: target.aggregate, state: 'not configured' };
      try {
        Object.assign(status, await stateOf(layout, target, wanted));
      } catch (err) {
        status.state = 'unreadable';
        status.detail = messageOf(err);
      }
      out.push(status);
    }
  }
  return out;
}

async function stateOf(layout: StateLayout, target: Pick<RegisteredClient, 'client' | 'file' | 'aggregate'>, wanted: Wanted): Promise<Pick<ClientStatus, 'state' | 'detail'>> {
  const written = Object.keys(await writtenEntries(layout, target.file));
  const entries = wantedEntries(target.client, target.aggregate, wanted);
  const plan = await planClientWrite(target.client, target.file, entries, layout);
  if (written.length === 0) return { state: 'not configured' };
  if (wanted.running === false) return { state: 'unknown', detail: 'no controller is running (apiary up)' };
  const gone = written.filter((name) => !(name in entries));
  // An entry of apiary's that a person changed is left alone by every rewrite: stale until they put it back or remove the client.
  const changedByHand = plan.skipped.filter((s) => written.includes(s.name)).map((s) => `${s.name} changed by hand`);
  // A server whose name an entry of the person's already has: that server is not reachable from this client.
  const taken = plan.skipped.filter((s) => !written.includes(s.name)).map((s) => `${s.name} taken by an entry apiary did not write`);
  const changes = [...plan.added.map((n) => `add ${n}`), ...plan.updated.map((n) => `update ${n}`), ...gone.map((n) => `remove ${n}`), ...changedByHand, ...taken];
  return changes.length === 0 ? { state: 'connected' } : { state: 'stale', detail: changes.join(', ') };
}

export interface ClientSyncOptions {
  layout: StateLayout;
  logger: Logger;
  /** The controller's view now, and how to hear that it changed. */
  view: () => StateView;
  observe: (listener: () => void) => () => void;
  /** What the entries hold besides the servers: the aggregate endpoint, the token, how to start apiary proxy. */
  extras: () => Promise<Omit<Wanted, 'servers'>>;
}

/**
 * The controller's runnable that rewrites every registered client when the
 * set of servers (name and URL) changes, and on each resync (a client
 * registered while the controller ran, a file a person edited back). One
 * rewrite at a time; changes that come during one are taken in the next.
 */
export class ClientSync implements Runnable {
  readonly name = 'the client sync';
  readonly #opts: ClientSyncOptions;
  #last: string | undefined;
  #running: Promise<void> = Promise.resolve();
  #pending = false;
  #unsubscribe: (() => void) | undefined;
  #stopped = false;

  constructor(options: ClientSyncOptions) {
    this.#opts = options;
  }

  async start(_host: Host): Promise<void> {
    this.#unsubscribe = this.#opts.observe(() => this.#changed());
  }

  started(): void {
    this.#schedule();
  }

  async resync(): Promise<void> {
    this.#last = undefined;
    this.#schedule();
    await this.#running;
  }

  /** Resolves when no rewrite is running or waiting (tests, and a stop). */
  async settled(): Promise<void> {
    while (this.#pending) await this.#running;
    await this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    await this.#running;
  }

  #changed(): void {
    const key = JSON.stringify(Object.entries(endpointServers(this.#opts.view())).sort());
    if (key === this.#last) return;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#pending || this.#stopped) return;
    this.#pending = true;
    this.#running = this.#running.then(async () => {
      this.#pending = false;
      if (this.#stopped) return;
      await this.#syncAll();
    });
  }

  async #syncAll(): Promise<void> {
    const { layout, logger } = this.#opts;
    const servers = endpointServers(this.#opts.view());
    this.#last = JSON.stringify(Object.entries(servers).sort());
    let registry: RegisteredClient[];
    try {
      registry = await readRegistry(layout);
    } catch (err) {
      logger.warn('client registry unreadable; no client rewritten', { error: messageOf(err) });
      return;
    }
    if (registry.length === 0) return;
    const wanted: Wanted = { servers, ...(await this.#opts.extras()) };
    for (const registered of registry) {
      try {
        // Still registered, checked under the registry's lock: a client being removed gets nothing written back.
        const result = await underRegistry(layout, async () => ((await readRegistry(layout)).some((r) => r.client === registered.client && r.file === registered.file) ? syncClient(layout, registered, wanted) : ({} as SyncResult)));
        const edits = [result.written?.edit, result.removed?.edit].filter((e) => e !== undefined);
        const added = edits.flatMap((e) => [...e.added, ...e.updated]);
        const removed = edits.flatMap((e) => e.removed);
        for (const e of edits) for (const s of e.skipped) logger.warn('client entry left alone', { client: registered.client, file: registered.file, why: s.why });
        if (added.length + removed.length > 0) logger.info('client rewritten', { client: registered.client, file: registered.file, written: added, removed });
      } catch (err) {
        // A file the person broke (a syntax error) is reported with its line, and nothing is written into it.
        logger.warn('client not rewritten', { client: registered.client, file: registered.file, error: messageOf(err) });
      }
    }
  }
}

/** What a running controller offers the sync: its view as it changes, and its aggregate endpoint. */
export interface SyncedController {
  snapshot(): StateViewInput;
  observe(listener: () => void): () => void;
  readonly aggregateUrl: string | undefined;
}

/** The sync runnable for a controller (`apiary up` adds it): Claude Desktop's entries start this very apiary's `proxy`. */
export function clientSyncRunnable(controller: SyncedController, options: { layout: StateLayout; logger: Logger; dir: string; stateDir: string }): ClientSync {
  const launcher = selfLauncher(options.dir, options.stateDir);
  return new ClientSync({
    layout: options.layout,
    logger: options.logger,
    view: () => composeStateView(controller.snapshot()),
    observe: (listener) => controller.observe(listener),
    extras: async () => ({ aggregateUrl: controller.aggregateUrl, token: await readEndpointToken(options.layout), launcher }),
  });
}
