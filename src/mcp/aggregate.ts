/**
 * One MCP server made of every Ready one: tools and prompts named
 * `<server>__<name>`, resources as `apiary://<server>/<uri>`, calls routed to
 * the server the name says. Each aggregate client is a client of its own at
 * each server (a session opened at its first request there, with the
 * client's own capabilities, closed with its aggregate session): at a stdio
 * server's Bridge, so the bridge's rules hold per client as they do at the
 * server's own URL (fairness: one client's flood waits in its own queue);
 * at an HTTP server, an MCP session of its own behind the same spec.tools.
 * Either way a server's sampling or elicitation request goes to the client
 * whose session it came on, and a client's cancellation reaches the server.
 * A listing waits a short while for each server and leaves out one that does
 * not answer, saying so. Clients hear `list_changed` when a
 * server comes, goes, or changes what it offers.
 */
import { randomUUID } from 'node:crypto';
import { LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from '../util/logger.js';
import { messageOf } from '../errors.js';
import { Bridge, type Deliver, type ToolSummary } from './bridge.js';
import { ListWatchers, type ListKind } from './list-watch.js';
import {
  ErrorCodes,
  errorResponse,
  isNotification,
  isRequest,
  isResponse,
  type Id,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from './jsonrpc.js';
import { allPages } from './paged-list.js';

/** Between a server's name and its tool's: a DNS-1123 name never holds two underscores, so the first pair splits them. */
export const SEPARATOR = '__';
/** Resource URIs in the aggregate: `apiary://<server>/<the server's own URI>`, so two servers' URIs never collide. */
export const RESOURCE_PREFIX = 'apiary://';
/** Where a listing's `_meta` names the servers it left out, and why. */
export const MISSING_META_KEY = 'apiary.dev/missing';
export const DEFAULT_CALL_TIMEOUT_MS = 120_000;
/** A listing is what a client shows at once: a server that takes longer than this is left out of it. */
export const DEFAULT_LIST_TIMEOUT_MS = 5_000;
const LIST_KINDS = ['tools', 'prompts', 'resources'] as const;

/** One aggregate client's session with an HTTP server, spec.tools applied. */
export interface RemoteSession {
  /** `signal` aborted: the server is told the request is cancelled. `onProgress` hears the server's progress on it (progress, total, message). */
  request(method: string, params: Record<string, unknown>, timeoutMs: number, signal?: AbortSignal, onProgress?: (progress: Record<string, unknown>) => void): Promise<JsonRpcResponse>;
  close(): Promise<void>;
}

/** Answers a server's request (sampling, elicitation, roots) by asking the aggregate client whose session it came on; `signal`: the server gave it up. */
export type MemberRequestHandler = (method: string, params: Record<string, unknown>, signal: AbortSignal) => Promise<JsonRpcResponse>;

/** A Ready server that is not a bridge (an HTTP server). */
export interface RemoteMember {
  /** The same for as long as the same server process is behind it: sessions opened with an earlier one are closed. */
  readonly key: unknown;
  /**
   * A session of one client's, declaring `capabilities` (the client's own).
   * `modern`: the client speaks 2026-07-28, so a server's `input_required`
   * goes to it as it is (it retries by itself) instead of being asked of it.
   * `onResourceUpdated`: the server says a resource (its own URI) changed.
   */
  openSession(capabilities: Record<string, unknown>, onRequest: MemberRequestHandler, options?: RemoteSessionOptions): Promise<RemoteSession>;
  /** What it offers now, to notice a change. */
  tools(): readonly ToolSummary[];
}

export interface RemoteSessionOptions {
  modern?: boolean;
  onResourceUpdated?: (uri: string) => void;
}

export type AggregateMember = Bridge | RemoteMember;

/** What the aggregate needs of the gateway: the servers whose MCP session is ready now. */
export interface AggregateSource {
  readyMembers(): Map<string, AggregateMember>;
}

export interface AggregateOptions {
  /** How long a listing waits for each server before leaving it out. */
  listTimeoutMs?: number;
  /** How long a call waits for its server. */
  callTimeoutMs?: number;
  logger?: Logger;
}

/** Stops one part of a client's request at a member (a cancellation, a timeout, the client gone). */
type Cancel = (reason: string) => void;

/** One aggregate client. */
interface ClientSession {
  deliver: Deliver;
  /** What it said of itself at initialize; each member's bridge hears the same. */
  introduction: Record<string, unknown>;
  /** Its own session at each member's bridge. */
  links: Map<Bridge, Link>;
  /** Its own session with each HTTP member, by server name. */
  remotes: Map<string, RemoteLink>;
  /** A session for one request (a 2026-07-28 client's): so are its sessions at the members' bridges. */
  ephemeral: boolean;
  /** The resources it subscribed to, as it names them (`apiary://<server>/<uri>`): a member's updates of others are not its news. */
  subscribed: Set<string>;
  /** Who the client is, where its sessions share one place at each member's bridge (a 2026-07-28 client's, see Bridge.openSession). */
  share?: string;
  /** Its requests being answered: its id -> how to stop each part at the members. */
  open: Map<Id, Set<Cancel>>;
  /** Members' requests passed on to it: the id it was given -> where its answer goes. */
  asks: Map<string, Ask>;
}

/** A member's request to a client: back to the bridge under the bridge's id, or to the SDK session that waits for it. */
type Ask = { kind: 'bridge'; bridge: Bridge; link: Link; id: Id } | { kind: 'remote'; answer: (response: JsonRpcResponse) => void };

/** One client's session with one HTTP member, being opened or open. */
interface RemoteLink {
  key: unknown;
  session: Promise<RemoteSession>;
}

/** One client's session at one member's bridge, and its requests there under the aggregate's ids. */
interface Link {
  server: string;
  session: string;
  pending: Map<number, { settle: (response: JsonRpcResponse) => void; clientId: Id }>;
}

/** A request being answered: whose it is, and where its parts register how to stop them. */
interface Asker {
  client: ClientSession;
  clientId: Id;
  parts: Set<Cancel>;
}

/** What the aggregate's lists are made of: each Ready server and its tools. */
function signatureOf(ready: Map<string, AggregateMember>): string {
  return [...ready]
    .map(([name, member]) => `${name}:${JSON.stringify(member instanceof Bridge ? (member.status().tools ?? []) : member.tools())}`)
    .sort()
    .join('|');
}

export class Aggregate {
  readonly #source: AggregateSource;
  readonly #version: string;
  readonly #listTimeoutMs: number;
  readonly #callTimeoutMs: number;
  readonly #logger: Logger | undefined;
  readonly #clients = new Map<string, ClientSession>();
  /** The 2026-07-28 listen streams at the aggregate endpoint, told of list changes with the clients. */
  readonly #listWatchers = new ListWatchers();
  #nextId = 1;
  #signature = '';
  #notifyTimer: NodeJS.Timeout | undefined;

  constructor(source: AggregateSource, version: string, options: AggregateOptions = {}) {
    this.#source = source;
    this.#version = version;
    this.#listTimeoutMs = options.listTimeoutMs ?? DEFAULT_LIST_TIMEOUT_MS;
    this.#callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.#logger = options.logger;
    // What is Ready already (servers adopted before the aggregate started) is what its first clients see, not a change.
    this.#signature = signatureOf(source.readyMembers());
  }

  // ---- the client side (HttpEndpoint calls these) ----

  openSession(deliver: Deliver, options: { ephemeral?: boolean; share?: string } = {}): string {
    const id = randomUUID();
    const share = options.share !== undefined ? { share: options.share } : {};
    this.#clients.set(id, { deliver, introduction: {}, links: new Map(), remotes: new Map(), open: new Map(), asks: new Map(), subscribed: new Set(), ephemeral: options.ephemeral === true, ...share });
    return id;
  }

  hasSession(id: string): boolean {
    return this.#clients.has(id);
  }

  /** The client is gone: what it has in flight is cancelled at the members, and its sessions there close. */
  closeSession(id: string): void {
    const client = this.#clients.get(id);
    if (client === undefined) return;
    this.#clients.delete(id);
    for (const parts of client.open.values()) for (const cancel of [...parts]) cancel('the client closed its session');
    client.open.clear();
    for (const [bridge, link] of client.links) {
      bridge.closeSession(link.session);
      failPending(link, 'the client closed its session');
    }
    client.links.clear();
    for (const remote of client.remotes.values()) closeRemote(remote);
    client.remotes.clear();
    for (const ask of client.asks.values()) if (ask.kind === 'remote') ask.answer(errorResponse(null, ErrorCodes.InternalError, 'the client this request went to has disconnected'));
    client.asks.clear();
  }

  /** A request is answered in its own time (the endpoint does not wait for it), so a batch's calls run side by side. */
  fromClient(sessionId: string, message: JsonRpcMessage): Promise<void> {
    const client = this.#clients.get(sessionId);
    if (client === undefined) return Promise.resolve();
    if (isRequest(message)) void this.#serve(client, message);
    else if (isNotification(message)) this.#clientNotification(client, message);
    else if (isResponse(message)) this.#clientResponse(client, message);
    return Promise.resolve();
  }

  /** Something about the servers may have changed: tell clients their lists changed, once per burst, if they did. */
  changed(): void {
    const ready = this.#source.readyMembers();
    this.#dropGoneLinks(ready);
    const signature = signatureOf(ready);
    if (signature === this.#signature) return;
    this.#signature = signature;
    this.#notifyTimer ??= setTimeout(() => {
      this.#notifyTimer = undefined;
      for (const kind of LIST_KINDS) this.#broadcast({ jsonrpc: '2.0', method: `notifications/${kind}/list_changed` });
    }, 50);
  }

  /**
   * A member said its own lists changed (its server's list_changed, which
   * the bridge's status does not show): the aggregate's clients hear it,
   * whether or not they hold a session at that member.
   */
  memberListsChanged(): void {
    this.#signature = '';
    this.changed();
  }

  close(): void {
    clearTimeout(this.#notifyTimer);
    for (const id of [...this.#clients.keys()]) this.closeSession(id);
  }

  /**
   * A bridge that closed a client's session (its server removed) answers
   * nothing more there: what waited fails now. A session with an HTTP server
   * that is gone, or is another process now, is closed.
   */
  #dropGoneLinks(ready: Map<string, AggregateMember>): void {
    for (const client of this.#clients.values()) {
      for (const [bridge, link] of client.links) {
        if (bridge.hasSession(link.session)) continue;
        client.links.delete(bridge);
        failPending(link, `server "${link.server}" went away while handling this request`);
      }
      for (const [server, remote] of client.remotes) {
        const member = ready.get(server);
        if (member !== undefined && !(member instanceof Bridge) && member.key === remote.key) continue;
        client.remotes.delete(server);
        closeRemote(remote);
      }
    }
  }

  #broadcast(message: JsonRpcMessage): void {
    for (const client of this.#clients.values()) client.deliver(message);
    this.#listWatchers.tell(message);
  }

  /** A list change, told to 2026-07-28 listeners when 2025 clients hear it (a server coming, going, suspended, or its lists changing). */
  watchLists(listener: (kind: ListKind) => void): () => void {
    return this.#listWatchers.add(listener);
  }

  async #serve(client: ClientSession, request: JsonRpcRequest): Promise<void> {
    const asker: Asker = { client, clientId: request.id, parts: new Set() };
    client.open.set(request.id, asker.parts);
    const answer = await this.#answer(asker, request).catch((err: unknown) => errorResponse(request.id, ErrorCodes.InternalError, err instanceof Error ? err.message : String(err)));
    // Cancelled by the client: it has forgotten the request, and is not answered.
    if (client.open.get(request.id) !== asker.parts) return;
    client.open.delete(request.id);
    client.deliver(answer, request.id);
  }

  #clientNotification(client: ClientSession, notification: JsonRpcNotification): void {
    if (notification.method === 'notifications/cancelled') {
      const requestId = notification.params?.['requestId'] as Id | undefined;
      const parts = requestId === undefined ? undefined : client.open.get(requestId);
      if (requestId === undefined || parts === undefined) return;
      client.open.delete(requestId);
      const reason = notification.params?.['reason'];
      for (const cancel of [...parts]) cancel(typeof reason === 'string' ? reason : 'cancelled by the client');
      return;
    }
    // The servers this client reaches may cache its roots.
    if (notification.method === 'notifications/roots/list_changed') {
      for (const [bridge, link] of client.links) void bridge.fromClient(link.session, notification);
    }
  }

  /** The client answers a member's request (sampling, elicitation, roots): it goes back under the bridge's id. */
  #clientResponse(client: ClientSession, response: JsonRpcResponse): void {
    const key = String(response.id);
    const route = client.asks.get(key);
    if (route === undefined) return;
    client.asks.delete(key);
    if (route.kind === 'remote') route.answer(response);
    else void route.bridge.fromClient(route.link.session, { ...response, id: route.id });
  }

  /**
   * The aggregate's own dispatch, for both revisions: a 2026-07-28 request
   * has been through the SDK v2's entry and `Server` in modern.ts (ladder,
   * envelope, discover, listen) and reaches it on a session of one request.
   * An SDK `Server` per session here (`setRequestHandler` per method) was
   * weighed (issue 24, item 6) and does not fit, because the aggregate relays
   * and a `Server` is an end:
   * - members' requests (sampling, elicitation, roots) go to the client under
   *   the aggregate's ids (`apiary-N`) and its answers are routed back by them;
   *   a `Server` on the session takes every response for an answer to its own
   *   requests and drops the others ("Received a response for an unknown
   *   message ID", seen with @modelcontextprotocol/server 2.4.0), so the
   *   client's messages would still be split by hand before it;
   * - it checks what a handler returns: a member's tools/call result that is
   *   not schema-valid became -32602 "Invalid tools/call result" (seen on a
   *   2025 session), where the aggregate passes on the member's answer as the
   *   member's own URL does;
   * - a `Server` and its connect would be built for every 2026-07-28 request
   *   too (each is a session here), on the path that is already over its
   *   latency budget (README, "MCP revisions").
   * What stays here is apiary's own: names, routing, the listing's timeouts
   * and `_meta` of missing servers, and the member links.
   */
  async #answer(asker: Asker, request: JsonRpcRequest): Promise<JsonRpcResponse> {
    const params = request.params ?? {};
    switch (request.method) {
      case 'initialize':
        return ok(request.id, this.#initialize(asker.client, params));
      case 'ping':
        return ok(request.id, {});
      case 'tools/list':
        return ok(request.id, await this.#gather(asker, 'tools/list', 'tools', (server, t) => prefixed(server, t, 'name')));
      case 'prompts/list':
        return ok(request.id, await this.#gather(asker, 'prompts/list', 'prompts', (server, p) => prefixed(server, p, 'name')));
      case 'resources/list':
        return ok(request.id, await this.#gather(asker, 'resources/list', 'resources', qualifiedResource));
      case 'resources/templates/list':
        return ok(request.id, { resourceTemplates: [] });
      case 'tools/call':
      case 'prompts/get': {
        // Checked as it is, never turned into a string: ["web__env"] is no name, and spec.tools checks names.
        const name = params['name'];
        if (typeof name !== 'string') return errorResponse(request.id, ErrorCodes.InvalidParams, `${request.method} needs params.name as a string: <server>${SEPARATOR}<name>`);
        return this.#route(asker, request, name);
      }
      case 'resources/read':
        return this.#read(asker, request);
      case 'resources/subscribe':
      case 'resources/unsubscribe':
        return this.#subscribe(asker, request);
      default:
        return errorResponse(request.id, ErrorCodes.MethodNotFound, `${request.method} is not served by apiary's aggregate endpoint; use the server's own URL`);
    }
  }

  /** The client's introduction is kept: each member's bridge hears it when the client first reaches that member. */
  #initialize(client: ClientSession, params: Record<string, unknown>): Record<string, unknown> {
    const asked = params['protocolVersion'];
    const protocolVersion = typeof asked === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(asked) ? asked : LATEST_PROTOCOL_VERSION;
    const capabilities = params['capabilities'];
    client.introduction = {
      protocolVersion,
      capabilities: typeof capabilities === 'object' && capabilities !== null ? capabilities : {},
      ...(typeof params['clientInfo'] === 'object' && params['clientInfo'] !== null ? { clientInfo: params['clientInfo'] } : {}),
    };
    return {
      protocolVersion,
      capabilities: { tools: { listChanged: true }, prompts: { listChanged: true }, resources: { listChanged: true, subscribe: true } },
      serverInfo: { name: 'apiary', version: this.#version },
      instructions: `Every Ready server apiary runs, in one place: tools and prompts are named <server>${SEPARATOR}<name>, resources ${RESOURCE_PREFIX}<server>/<uri>.`,
    };
  }

  /** A call on `<server>__<name>` goes to that server as `<name>`; resources in what it returns name the server. */
  async #route(asker: Asker, request: JsonRpcRequest, qualified: string): Promise<JsonRpcResponse> {
    const cut = qualified.indexOf(SEPARATOR);
    if (cut <= 0) return errorResponse(request.id, ErrorCodes.InvalidParams, `"${qualified}" names no server: aggregate names are <server>${SEPARATOR}<name>`);
    const server = qualified.slice(0, cut);
    const answer = await this.#call(asker, server, request.method, { ...request.params, name: qualified.slice(cut + SEPARATOR.length) });
    return withQualifiedResources(server, answer);
  }

  /** `apiary://<server>/<uri>` is read from that server as `<uri>`; a URI that names no server is refused, never guessed. */
  async #read(asker: Asker, request: JsonRpcRequest): Promise<JsonRpcResponse> {
    const asked = request.params?.['uri'];
    if (typeof asked !== 'string') return errorResponse(request.id, ErrorCodes.InvalidParams, `resources/read needs params.uri as a string: ${RESOURCE_PREFIX}<server>/<uri>`);
    const uri = asked;
    const target = splitResourceUri(uri);
    if (target === undefined) {
      return errorResponse(request.id, ErrorCodes.InvalidParams, `resource URI "${uri}" names no server: aggregate resource URIs are ${RESOURCE_PREFIX}<server>/<uri>, as resources/list gives them`);
    }
    const answer = await this.#call(asker, target.server, request.method, { ...request.params, uri: target.uri });
    return withQualifiedResources(target.server, answer);
  }

  /** `apiary://<server>/<uri>` is (un)subscribed at that server as `<uri>`, on the client's own session there; its updates come back under the aggregate's URI. */
  async #subscribe(asker: Asker, request: JsonRpcRequest): Promise<JsonRpcResponse> {
    const uri = request.params?.['uri'];
    const target = typeof uri === 'string' ? splitResourceUri(uri) : undefined;
    if (target === undefined) return errorResponse(request.id, ErrorCodes.InvalidParams, `${request.method} needs params.uri as ${RESOURCE_PREFIX}<server>/<uri>, as resources/list gives them`);
    const answer = await this.#call(asker, target.server, request.method, { ...request.params, uri: target.uri });
    if (answer.error === undefined && request.method === 'resources/subscribe') asker.client.subscribed.add(uri as string);
    if (answer.error === undefined && request.method === 'resources/unsubscribe') asker.client.subscribed.delete(uri as string);
    return answer;
  }

  async #call(asker: Asker, server: string, method: string, params: Record<string, unknown>): Promise<JsonRpcResponse> {
    const member = this.#source.readyMembers().get(server);
    if (member === undefined) return errorResponse(asker.clientId, ErrorCodes.ServerUnavailable, `server "${server}" is not Ready (or not known to apiary)`);
    const answer = await this.#ask(asker, server, member, method, params, this.#callTimeoutMs);
    return { ...answer, id: asker.clientId };
  }

  /**
   * Each Ready member's list, its entries renamed. A member that fails or
   * does not answer within the listing timeout is left out, not fatal: the
   * result's `_meta` names it (and why), and the log says so.
   */
  async #gather(asker: Asker, method: string, field: string, rename: (server: string, item: Record<string, unknown>) => Record<string, unknown>): Promise<Record<string, unknown>> {
    const missing: { server: string; reason: string }[] = [];
    const lists = await Promise.all(
      [...this.#source.readyMembers()].map(async ([server, member]) => {
        const listed = await this.#listOf(asker, server, member, method, field);
        if ('error' in listed) {
          // A server that does not offer this kind (no prompts) simply has none.
          if (listed.error.code !== ErrorCodes.MethodNotFound) missing.push({ server, reason: listed.error.message });
          return [];
        }
        return listed.items.map((item) => rename(server, item as Record<string, unknown>));
      }),
    );
    missing.sort((a, b) => a.server.localeCompare(b.server));
    for (const { server, reason } of missing) this.#logger?.warn('aggregate listing left out a server', { server, method, reason });
    return { [field]: lists.flat(), ...(missing.length > 0 ? { _meta: { [MISSING_META_KEY]: missing } } : {}) };
  }

  /**
   * A member's whole list, every page walked (each page within the listing timeout): a server that pages its tools has
   * those of page 2 in the aggregate too, each page judged against the pins and filtered as it passes the member.
   */
  async #listOf(asker: Asker, server: string, member: AggregateMember, method: string, field: string): Promise<{ items: unknown[] } | { error: { code: number; message: string } }> {
    let failed: { code: number; message: string } | undefined;
    const items = await allPages(async (cursor) => {
      const answer = await this.#ask(asker, server, member, method, cursor === undefined ? {} : { cursor }, this.#listTimeoutMs);
      if (answer.error !== undefined) {
        failed = answer.error;
        return { items: [] };
      }
      const result = answer.result as Record<string, unknown> | undefined;
      const page = result?.[field];
      return { items: Array.isArray(page) ? (page as unknown[]) : [], ...(typeof result?.['nextCursor'] === 'string' ? { nextCursor: result['nextCursor'] } : {}) };
    });
    return failed !== undefined ? { error: failed } : { items };
  }

  /** One request of a client's at one member, stopped (and cancelled there) by the client's cancellation or the timeout. */
  #ask(asker: Asker, server: string, member: AggregateMember, method: string, params: Record<string, unknown>, timeoutMs: number): Promise<JsonRpcResponse> {
    if (asker.client.open.get(asker.clientId) !== asker.parts) return Promise.resolve(errorResponse(null, ErrorCodes.InternalError, 'cancelled by the client'));
    if (member instanceof Bridge) return this.#askBridge(asker, server, member, method, params, timeoutMs);
    return this.#askRemote(asker, server, member, method, params, timeoutMs);
  }

  async #askRemote(asker: Asker, server: string, member: RemoteMember, method: string, params: Record<string, unknown>, timeoutMs: number): Promise<JsonRpcResponse> {
    const abort = new AbortController();
    const cancel: Cancel = (reason) => abort.abort(reason);
    asker.parts.add(cancel);
    // The whole ask, opening the session included, within the timeout.
    const timer = setTimeout(() => cancel(`${method} got no answer within ${timeoutMs / 1000} s`), timeoutMs);
    timer.unref();
    try {
      const session = await Promise.race([this.#remoteSession(asker.client, server, member), rejectWhenAborted(abort.signal)]);
      // The SDK's own timeout a little later: this one says it first, in the same words as for a stdio server.
      return await session.request(method, params, timeoutMs + 1_000, abort.signal, progressTo(asker, params));
    } catch (err) {
      if (abort.signal.aborted) return errorResponse(null, ErrorCodes.InternalError, String(abort.signal.reason));
      return errorResponse(null, ErrorCodes.ServerUnavailable, `cannot open a session with server "${server}": ${messageOf(err)}`);
    } finally {
      clearTimeout(timer);
      asker.parts.delete(cancel);
    }
  }

  /** The client's session with an HTTP server, opened at its first request there (again after a failed open, or a new process). */
  #remoteSession(client: ClientSession, server: string, member: RemoteMember): Promise<RemoteSession> {
    const known = client.remotes.get(server);
    if (known !== undefined && known.key === member.key) return known.session;
    if (known !== undefined) closeRemote(known);
    const capabilities = (client.introduction['capabilities'] as Record<string, unknown> | undefined) ?? {};
    const ask: MemberRequestHandler = (method, params, signal) => this.#askClient(client, method, params, signal);
    // Its updates reach the client only for what it subscribed to, under the aggregate's URI.
    const onResourceUpdated = (uri: string): void => {
      const qualified = qualifyResourceUri(server, uri);
      if (client.subscribed.has(qualified)) client.deliver({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri: qualified } });
    };
    const remote: RemoteLink = { key: member.key, session: member.openSession(capabilities, ask, { modern: client.ephemeral, onResourceUpdated }) };
    client.remotes.set(server, remote);
    remote.session.catch(() => {
      if (client.remotes.get(server) === remote) client.remotes.delete(server);
    });
    return remote.session;
  }

  /** An HTTP server's request on a client's session, asked of that client; the server giving it up tells the client so. */
  #askClient(client: ClientSession, method: string, params: Record<string, unknown>, signal: AbortSignal): Promise<JsonRpcResponse> {
    const id = `apiary-${this.#nextId++}`;
    return new Promise((resolve) => {
      client.asks.set(id, { kind: 'remote', answer: resolve });
      signal.addEventListener(
        'abort',
        () => {
          if (!client.asks.delete(id)) return;
          client.deliver({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: String(signal.reason ?? 'cancelled by the server') } });
          resolve(errorResponse(null, ErrorCodes.InternalError, 'cancelled by the server'));
        },
        { once: true },
      );
      client.deliver({ jsonrpc: '2.0', id, method, params });
    });
  }

  #askBridge(asker: Asker, server: string, bridge: Bridge, method: string, params: Record<string, unknown>, timeoutMs: number): Promise<JsonRpcResponse> {
    const link = this.#link(asker.client, server, bridge);
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const settle = (response: JsonRpcResponse): void => {
        if (!link.pending.delete(id)) return;
        clearTimeout(timer);
        asker.parts.delete(cancel);
        resolve(response);
      };
      // The bridge passes the cancellation on under the id the server knows, and frees the client's place in its queue.
      const cancel: Cancel = (reason) => {
        if (!link.pending.has(id)) return;
        void bridge.fromClient(link.session, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason } });
        settle(errorResponse(id, ErrorCodes.InternalError, reason));
      };
      const timer = setTimeout(() => cancel(`${method} got no answer within ${timeoutMs / 1000} s`), timeoutMs);
      timer.unref();
      link.pending.set(id, { settle, clientId: asker.clientId });
      asker.parts.add(cancel);
      void bridge.fromClient(link.session, { jsonrpc: '2.0', id, method, params });
    });
  }

  /** The client's session at this bridge, opened (and introduced with the client's capabilities) at its first request there. */
  #link(client: ClientSession, server: string, bridge: Bridge): Link {
    const known = client.links.get(bridge);
    if (known !== undefined && bridge.hasSession(known.session)) return known;
    const link: Link = { server, session: '', pending: new Map() };
    link.session = bridge.openSession((message, related) => this.#fromMember(client, bridge, link, message, related), { ephemeral: client.ephemeral, ...(client.share !== undefined ? { share: client.share } : {}) });
    client.links.set(bridge, link);
    // The bridge answers from its own handshake; the answer matches nothing pending and is dropped.
    void bridge.fromClient(link.session, { jsonrpc: '2.0', id: this.#nextId++, method: 'initialize', params: client.introduction });
    return link;
  }

  /** What a member's bridge sends one client's session: answers, its own requests and notifications, passed on to that client alone. */
  #fromMember(client: ClientSession, bridge: Bridge, link: Link, message: JsonRpcMessage, related?: Id): void {
    if (isResponse(message)) {
      if (typeof message.id === 'number') link.pending.get(message.id)?.settle(message);
      return;
    }
    if (isRequest(message)) {
      const id = `apiary-${this.#nextId++}`;
      client.asks.set(id, { kind: 'bridge', bridge, link, id: message.id });
      client.deliver({ ...message, id });
      return;
    }
    if (isNotification(message)) this.#memberNotification(client, bridge, link, message, related);
  }

  #memberNotification(client: ClientSession, bridge: Bridge, link: Link, notification: JsonRpcNotification, related?: Id): void {
    if (notification.method.endsWith('/list_changed')) {
      this.memberListsChanged();
      return;
    }
    if (notification.method === 'notifications/progress') {
      // The bridge gave back the client's own token; the request it belongs to is the client's, by its id.
      const clientId = typeof related === 'number' ? link.pending.get(related)?.clientId : undefined;
      if (clientId !== undefined) client.deliver(notification, clientId);
      return;
    }
    if (notification.method === 'notifications/resources/updated') {
      // A 2025 server's process tells every session of its updates: only a client subscribed to the resource hears it, under the aggregate's URI.
      const uri = notification.params?.['uri'];
      const qualified = typeof uri === 'string' ? qualifyResourceUri(link.server, uri) : undefined;
      if (qualified !== undefined && client.subscribed.has(qualified)) client.deliver({ ...notification, params: { ...notification.params, uri: qualified } });
      return;
    }
    if (notification.method === 'notifications/cancelled') {
      // The server gave up a request it sent this client.
      const requestId = notification.params?.['requestId'];
      for (const [id, route] of client.asks) {
        if (route.kind !== 'bridge' || route.bridge !== bridge || route.id !== requestId) continue;
        client.asks.delete(id);
        client.deliver({ ...notification, params: { ...notification.params, requestId: id } });
      }
    }
  }
}

/** The SDK session uses a token of its own: progress goes back to the client under the token it gave, beside the request it belongs to. */
function progressTo(asker: Asker, params: Record<string, unknown>): ((progress: Record<string, unknown>) => void) | undefined {
  const token = (params['_meta'] as Record<string, unknown> | undefined)?.['progressToken'];
  if (typeof token !== 'string' && typeof token !== 'number') return undefined;
  return (progress) => asker.client.deliver({ jsonrpc: '2.0', method: 'notifications/progress', params: { ...progress, progressToken: token } }, asker.clientId);
}

function closeRemote(remote: RemoteLink): void {
  remote.session.then(
    (session) => void session.close(),
    () => undefined,
  );
}

/** Never resolves; rejects with the reason once `signal` aborts. */
function rejectWhenAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error(String(signal.reason))), { once: true }));
}

function failPending(link: Link, reason: string): void {
  for (const { settle } of [...link.pending.values()]) settle(errorResponse(null, ErrorCodes.ServerUnavailable, reason));
}

function ok(id: Id, result: Record<string, unknown>): JsonRpcResponse {
  return { jsonrpc: '2.0', id, result } as JsonRpcResponse;
}

function prefixed(server: string, item: Record<string, unknown>, field: string): Record<string, unknown> {
  return { ...item, [field]: `${server}${SEPARATOR}${String(item[field])}` };
}

export function qualifyResourceUri(server: string, uri: string): string {
  return `${RESOURCE_PREFIX}${server}/${uri}`;
}

/** The server and its own URI in `apiary://<server>/<uri>`; undefined for any other URI. */
export function splitResourceUri(uri: string): { server: string; uri: string } | undefined {
  if (!uri.startsWith(RESOURCE_PREFIX)) return undefined;
  const rest = uri.slice(RESOURCE_PREFIX.length);
  const cut = rest.indexOf('/');
  if (cut <= 0 || cut === rest.length - 1) return undefined;
  return { server: rest.slice(0, cut), uri: rest.slice(cut + 1) };
}

function qualifiedResource(server: string, resource: Record<string, unknown>): Record<string, unknown> {
  const uri = resource['uri'];
  return { ...resource, ...(typeof uri === 'string' ? { uri: qualifyResourceUri(server, uri) } : {}), name: `${server}${SEPARATOR}${String(resource['name'] ?? uri)}` };
}

/**
 * The resources in an answer (a read's contents, a tool's resource links and
 * embedded resources, a prompt's) carry URIs the client can read here.
 */
function withQualifiedResources(server: string, answer: JsonRpcResponse): JsonRpcResponse {
  const result = answer.result as Record<string, unknown> | undefined;
  if (result === undefined) return answer;
  const qualify = (item: unknown): unknown => qualifyItem(server, item);
  const out: Record<string, unknown> = { ...result };
  if (Array.isArray(result['contents'])) out['contents'] = result['contents'].map(qualify);
  if (Array.isArray(result['content'])) out['content'] = result['content'].map(qualify);
  if (Array.isArray(result['messages'])) {
    out['messages'] = result['messages'].map((m: unknown) => (isObject(m) && m['content'] !== undefined ? { ...m, content: qualify(m['content']) } : m));
  }
  return { ...answer, result: out } as JsonRpcResponse;
}

/** A resource content, resource link or embedded resource, with its URI qualified; anything else as it is. */
function qualifyItem(server: string, item: unknown): unknown {
  if (!isObject(item)) return item;
  if (item['type'] === 'resource' && isObject(item['resource'])) return { ...item, resource: qualifyItem(server, item['resource']) };
  const isContent = item['type'] === undefined || item['type'] === 'resource_link';
  return isContent && typeof item['uri'] === 'string' ? { ...item, uri: qualifyResourceUri(server, item['uri']) } : item;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
