/**
 * The client sessions a 2026-07-28 request at an HTTP server's proxy is
 * served over (modern.ts's SessionHost): each is the SDK v2 client's own
 * session with the server, negotiated as the SDK's `auto` mode does (a
 * 2026-07-28 server is spoken to in its revision, a 2025 one with
 * `initialize`), taken at the request's introduction and given back with it.
 * A connected session is kept (a few per client kind, for half a minute) and
 * taken by the next request of the same client kind to the same target:
 * opening one costs four requests to the server (a discovery a 2025 server
 * refuses, initialize, initialized, its event stream) before the request's
 * own, which made a 2026-07-28 call through apiary 8-10x slower than the SDK
 * calling the server itself. A kept session the server has forgotten (a 404)
 * is dropped and the request goes on a new one: nothing reached the server.
 * So the proxy passes nothing through raw for a modern client: a 2025 server
 * cannot read a modern request, and translation is what apiary is for. The
 * proxy's spec.tools applies here as on its pass-through path. A server's
 * question mid-call (sampling, elicitation, roots: asked of a client that
 * declared it) goes to the request's short session, which passes it to the
 * 2026-07-28 client as input_required and brings back its answer.
 */
import { randomUUID } from 'node:crypto';
import { Client, ProtocolError, SdkHttpError, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { headerValueFlaw } from '../api/remote.js';
import { messageOf } from '../errors.js';
import { DEFAULT_CALL_TIMEOUT_MS } from './aggregate.js';
import type { Deliver } from './bridge.js';
import { ErrorCodes, errorResponse, isRequest, isResponse, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse } from './jsonrpc.js';
import { ListWatchers, type ListKind } from './list-watch.js';
import { MODERN_VERSION, type SessionHost } from './modern.js';
import { refuseFilteredCall, withExposedTools, type ToolFilter } from './tool-filter.js';
import { fetchWithOwnSignal } from './own-signal-fetch.js';

/** Where the server is: its URL and the headers apiary adds (a hosted server's, from its secrets; never logged). */
export interface UpstreamTarget {
  url: URL;
  headers: Record<string, string>;
  /** What errors call it (never the expanded URL). */
  label: string;
  /** How requests are sent (a hosted server apiary logs in to: one refresh on a 401); default fetch. */
  fetch?: typeof fetch;
}

/**
 * A connected client kept for the next request of the same kind. `route` is
 * the session it serves now: the server's questions and resource news go
 * there (none while it is kept).
 */
interface Pooled {
  key: string;
  client: Client;
  route: { session: UpstreamSession | undefined };
  /** The introduction's answer, as the server gave it at connect. */
  introduction: Record<string, unknown>;
  /** What the client introduced itself with: a session the server forgot is opened again with it. */
  asked: { capabilities: Record<string, unknown>; clientInfo: { name: string; version: string } };
  /** Closes it when nobody took it in time. */
  expiry?: ReturnType<typeof setTimeout>;
}

/**
 * What a session may have been asked and still be given to another request: methods that leave nothing behind at the
 * server. A subscription or a log level would follow the session to whoever takes it next.
 */
const LEAVES_NOTHING = new Set(['ping', 'tools/list', 'tools/call', 'prompts/list', 'prompts/get', 'resources/list', 'resources/read', 'resources/templates/list', 'completion/complete']);

/** How many connected sessions are kept per client kind and target, and for how long. */
const KEPT_PER_KIND = 4;
const KEPT_MS = 30_000;
/** What a session host of the proxy's is given by the gateway: the server's redaction, and who judges a whole tools/list result against the pins. */
export interface SessionHooks {
  redact?: <M>(message: M) => M;
  onToolsListed?: ToolsListed;
}

/**
 * Who judges what a tools/list answer lists against the pins, before it is filtered: every answer, a page of a paged
 * listing too (`whole`: asked without a cursor and not paged, so a tool it lacks is no longer listed).
 */
export type ToolsListed = (tools: readonly unknown[], whole: boolean) => void;

/** A tools/list answer's tools, told to `listed` (before any filter), whole or a page. */
export function toolsListed(listed: ToolsListed | undefined, params: Record<string, unknown>, answer: JsonRpcResponse): void {
  const result = answer.result as { tools?: unknown; nextCursor?: unknown } | undefined;
  if (listed !== undefined && Array.isArray(result?.tools)) listed(result.tools as unknown[], params['cursor'] === undefined && result.nextCursor === undefined);
}

interface UpstreamSession {
  deliver: Deliver;
  client?: Client;
  /** The kept client this session took or made (undefined: none yet). */
  pooled?: Pooled;
  /** Whether `pooled` served a session before this one (a 404 then means the server forgot it, not that the request failed). */
  reused?: boolean;
  /** A transport failure, or a request that leaves state at the server (a subscription, a log level): the client is not given back. */
  broken?: boolean;
  /** The server's questions passed on to the client (as input_required, by the short session): apiary's id -> where the answer goes. */
  asks: Map<string, (answer: JsonRpcResponse) => void>;
  /** A 2026-07-28 server's resources subscribed to on this session: each on a listen stream of its own, by URI. */
  listens?: Map<string, { close(): Promise<void> }>;
}

/** The questions a server may ask its client mid-call, each asked only of a client that declared its capability. */
const ASKED_METHODS = ['sampling/createMessage', 'elicitation/create', 'roots/list'] as const;

/** Any result, as the server gave it: apiary passes results on, it does not validate them. */
const ANY_RESULT = { '~standard': { version: 1, vendor: 'apiary', validate: (value: unknown) => ({ value }) } } as const;

export class UpstreamSessions implements SessionHost {
  readonly #target: () => UpstreamTarget;
  readonly #filter: () => ToolFilter;
  readonly #sessions = new Map<string, UpstreamSession>();
  /** Connected clients nobody uses now, by client kind and target (see Pooled). */
  readonly #kept = new Map<string, Pooled[]>();
  /** The 2026-07-28 listen streams at the proxy. */
  readonly #listWatchers = new ListWatchers();
  /** Each message of the server's on its way to the client: the gateway takes its secret values out. */
  readonly #redact: (message: JsonRpcMessage) => JsonRpcMessage;
  #nextAsk = 1;

  readonly #onToolsListed: ToolsListed | undefined;

  constructor(target: () => UpstreamTarget, filter: () => ToolFilter, hooks: SessionHooks = {}) {
    this.#target = target;
    this.#filter = filter;
    this.#redact = hooks.redact ?? ((m) => m);
    this.#onToolsListed = hooks.onToolsListed;
  }

  /** Everything a session delivers (answers, progress, the server's questions, resource news) is redacted on the way. */
  openSession(deliver: Deliver): string {
    const id = randomUUID();
    this.#sessions.set(id, { deliver: (message, inReplyTo) => deliver(this.#redact(message), inReplyTo), asks: new Map() });
    return id;
  }

  watchLists(listener: (kind: ListKind) => void): () => void {
    return this.#listWatchers.add(listener);
  }

  /** What clients see of a list changed (the proxy's filter, the server's own news): listeners hear of it. */
  listChanged(kind: ListKind): void {
    this.#listWatchers.tell({ jsonrpc: '2.0', method: `notifications/${kind}/list_changed` });
  }

  hasSession(id: string): boolean {
    return this.#sessions.has(id);
  }

  closeSession(id: string): void {
    const session = this.#sessions.get(id);
    this.#sessions.delete(id);
    // The server must not wait on a question to a client that is gone.
    for (const answer of session?.asks.values() ?? []) answer(errorResponse(null, ErrorCodes.InternalError, 'the client this request went to has disconnected'));
    session?.asks.clear();
    for (const listen of session?.listens?.values() ?? []) void listen.close().catch(() => undefined);
    if (session?.pooled !== undefined && session.client === session.pooled.client && !session.broken && (session.listens?.size ?? 0) === 0 && this.#keep(session.pooled)) return;
    void session?.client?.close().catch(() => undefined);
  }

  /** Closes every kept session (the proxy is closing, or its target changed for good). */
  dropKept(): void {
    for (const list of this.#kept.values()) for (const pooled of list) this.#discard(pooled);
    this.#kept.clear();
  }

  /** Kept for the next request of its kind, unless enough are kept already; false: the caller closes it. */
  #keep(pooled: Pooled): boolean {
    pooled.route.session = undefined;
    const list = this.#kept.get(pooled.key) ?? [];
    if (list.length >= KEPT_PER_KIND) return false;
    list.push(pooled);
    this.#kept.set(pooled.key, list);
    pooled.expiry = setTimeout(() => {
      const now = this.#kept.get(pooled.key);
      const at = now?.indexOf(pooled) ?? -1;
      if (at >= 0) now!.splice(at, 1);
      if (now?.length === 0) this.#kept.delete(pooled.key);
      this.#discard(pooled);
    }, KEPT_MS);
    pooled.expiry.unref();
    return true;
  }

  #take(key: string): Pooled | undefined {
    const list = this.#kept.get(key);
    const pooled = list?.pop();
    if (list?.length === 0) this.#kept.delete(key);
    if (pooled?.expiry !== undefined) clearTimeout(pooled.expiry);
    return pooled;
  }

  #discard(pooled: Pooled): void {
    if (pooled.expiry !== undefined) clearTimeout(pooled.expiry);
    void pooled.client.close().catch(() => undefined);
  }

  /** A request is answered through `deliver`; an answer to the server's question goes to the server; anything else is dropped. */
  async fromClient(id: string, message: JsonRpcMessage): Promise<void> {
    const session = this.#sessions.get(id);
    if (session !== undefined && isResponse(message)) {
      const answer = session.asks.get(String(message.id));
      session.asks.delete(String(message.id));
      answer?.(message);
      return;
    }
    if (session === undefined || !isRequest(message)) return;
    const answer = await this.#answer(session, message).catch((err: unknown) => errorResponse(message.id, ErrorCodes.InternalError, messageOf(err)));
    if (this.#sessions.get(id) === session) session.deliver(answer, message.id);
  }

  async #answer(session: UpstreamSession, request: JsonRpcRequest): Promise<JsonRpcResponse> {
    const params = request.params ?? {};
    if (request.method === 'initialize') return this.#connect(session, request);
    if (!LEAVES_NOTHING.has(request.method)) session.broken = true;
    const refused = request.method === 'tools/call' ? refuseFilteredCall(this.#filter(), request.id, params['name']) : undefined;
    if (refused !== undefined) return refused;
    const client = session.client;
    if (client === undefined) return errorResponse(request.id, ErrorCodes.InternalError, 'no session with the server: initialize first');
    if ((request.method === 'resources/subscribe' || request.method === 'resources/unsubscribe') && client.getNegotiatedProtocolVersion() === MODERN_VERSION) {
      return this.#listenResource(session, client, request);
    }
    try {
      // A 2026-07-28 server's input_required is the modern client's to answer: it comes back as it is, and the client's retry goes on unchanged.
      const onprogress = progressTo(session, params);
      const result = await client.request({ method: request.method, params }, ANY_RESULT, { timeout: DEFAULT_CALL_TIMEOUT_MS, allowInputRequired: true, ...(onprogress !== undefined ? { onprogress, resetTimeoutOnProgress: true } : {}) });
      const answer: JsonRpcResponse = { jsonrpc: '2.0', id: request.id, result: result as Record<string, unknown> };
      if (request.method !== 'tools/list') return answer;
      const redacted = this.#redact(answer) as JsonRpcResponse;
      toolsListed(this.#onToolsListed, params, redacted);
      return withExposedTools(this.#filter(), redacted) ?? redacted;
    } catch (err) {
      if (!(err instanceof ProtocolError)) session.broken = true;
      // A kept session the server has forgotten: the request never reached it, so it goes once more on a new session.
      if (session.reused === true && SdkHttpError.isInstance(err) && err.status === 404 && session.pooled !== undefined) {
        const again = await this.#reconnect(session);
        if (again === undefined) return this.#answer(session, request);
      }
      return failure(request, err);
    }
  }

  /** A new session of the same kind as the one the server forgot; undefined when it opened (an error answer otherwise). */
  async #reconnect(session: UpstreamSession): Promise<JsonRpcResponse | undefined> {
    const old = session.pooled!;
    void old.client.close().catch(() => undefined);
    session.client = undefined;
    session.pooled = undefined;
    session.broken = false;
    session.reused = false;
    const answer = await this.#connect(session, { jsonrpc: '2.0', id: 0, method: 'initialize', params: old.asked }, true);
    return answer.error !== undefined ? answer : undefined;
  }

  /**
   * A 2026-07-28 server has no resources/subscribe: a subscription is a
   * listen stream for that URI (its updates reach the session's owner as any
   * notification the client hears), an unsubscribe closes it.
   */
  async #listenResource(session: UpstreamSession, client: Client, request: JsonRpcRequest): Promise<JsonRpcResponse> {
    const uri = request.params?.['uri'];
    if (typeof uri !== 'string') return errorResponse(request.id, ErrorCodes.InvalidParams, `${request.method} needs params.uri, a string`);
    session.listens ??= new Map();
    const open = session.listens.get(uri);
    if (request.method === 'resources/unsubscribe') {
      session.listens.delete(uri);
      await open?.close().catch(() => undefined);
    } else if (open === undefined) {
      try {
        session.listens.set(uri, await client.listen({ resourceSubscriptions: [uri] }));
      } catch (err) {
        return failure(request, err);
      }
    }
    return { jsonrpc: '2.0', id: request.id, result: {} };
  }

  /**
   * The session with the server, opened with the client's own capabilities (or a kept one of the same client kind and
   * target); answered as the server introduced itself. `fresh`: never a kept one.
   */
  async #connect(session: UpstreamSession, request: JsonRpcRequest, fresh = false): Promise<JsonRpcResponse> {
    const target = this.#target();
    for (const [name, value] of Object.entries(target.headers)) {
      const flaw = headerValueFlaw(value);
      if (flaw !== undefined) return errorResponse(request.id, ErrorCodes.ServerUnavailable, `the header ${name} that spec.remote.headers sets holds ${flaw} and cannot be sent`);
    }
    const params = request.params ?? {};
    const capabilities = (params['capabilities'] ?? {}) as Record<string, unknown>;
    const clientInfo = (params['clientInfo'] ?? { name: 'apiary', version: '0' }) as { name: string; version: string };
    // Not the headers: the proxy changes its headers object in place (a secret rotated, a token refreshed), and every session
    // holds that object, so a kept one sends what a new one would.
    const key = JSON.stringify([target.url.href, capabilities, clientInfo]);
    const kept = fresh ? undefined : this.#take(key);
    if (kept !== undefined) {
      kept.route.session = session;
      session.client = kept.client;
      session.pooled = kept;
      session.reused = true;
      return { jsonrpc: '2.0', id: request.id, result: kept.introduction };
    }
    const route: Pooled['route'] = { session };
    const client = new Client(clientInfo, { capabilities, versionNegotiation: { mode: 'auto' } });
    // A server's question mid-call goes to the client as any host's does: the short session turns it into input_required.
    // The SDK types each method's handler by its result; the client's answer passes on as it comes, so one loose signature.
    const register = client.setRequestHandler.bind(client) as unknown as (method: string, handler: (request: { params?: Record<string, unknown> }, ctx: { mcpReq: { signal: AbortSignal } }) => Promise<Record<string, unknown>>) => void;
    for (const method of ASKED_METHODS) {
      if (capabilities[method.split('/')[0]!] === undefined) continue;
      register(method, (asked, ctx) => {
        const now = route.session;
        // Asked while kept (nobody's request is open on it): no client to ask.
        if (now === undefined) return Promise.reject(new ProtocolError(ErrorCodes.InternalError, 'no client request is open on this session'));
        return asking(now, `apiary-${this.#nextAsk++}`, method, asked.params ?? {}, ctx.mcpReq.signal);
      });
    }
    // A resource the session subscribed to (apiary's watch for its listeners) changed: the session's owner hears it.
    client.setNotificationHandler('notifications/resources/updated', (notification) => route.session?.deliver({ jsonrpc: '2.0', method: notification.method, params: notification.params }));
    try {
      await client.connect(new StreamableHTTPClientTransport(target.url, { requestInit: { headers: target.headers }, fetch: target.fetch ?? fetchWithOwnSignal }));
    } catch (err) {
      return errorResponse(request.id, ErrorCodes.ServerUnavailable, `the server at ${target.label} did not open a session: ${messageOf(err)}`);
    }
    session.client = client;
    const instructions = client.getInstructions();
    const introduction = { protocolVersion: client.getNegotiatedProtocolVersion(), capabilities: client.getServerCapabilities() ?? {}, serverInfo: client.getServerVersion() ?? { name: target.label, version: '0' }, ...(instructions !== undefined ? { instructions } : {}) };
    session.pooled = { key, client, route, introduction, asked: { capabilities, clientInfo } };
    return { jsonrpc: '2.0', id: request.id, result: introduction };
  }
}

/** The server's question, passed to the client; the server giving it up (its signal) tells the client so. */
function asking(session: UpstreamSession, id: string, method: string, params: Record<string, unknown>, signal: AbortSignal): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    session.asks.set(id, (answer) => (answer.error !== undefined ? reject(new ProtocolError(answer.error.code, answer.error.message, answer.error.data)) : resolve(answer.result as Record<string, unknown>)));
    signal.addEventListener(
      'abort',
      () => {
        if (!session.asks.delete(id)) return;
        session.deliver({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'cancelled by the server' } });
        reject(new ProtocolError(ErrorCodes.InternalError, 'cancelled by the server'));
      },
      { once: true },
    );
    session.deliver({ jsonrpc: '2.0', id, method, params });
  });
}

/**
 * The SDK's session asks the server's progress under a token of its own:
 * it goes back to the client under the token the client gave, beside the
 * request it belongs to. Undefined when the client asked for none.
 */
function progressTo(session: UpstreamSession, params: Record<string, unknown>): ((progress: Record<string, unknown>) => void) | undefined {
  const token = (params['_meta'] as Record<string, unknown> | undefined)?.['progressToken'];
  if (typeof token !== 'string' && typeof token !== 'number') return undefined;
  return (progress) => session.deliver({ jsonrpc: '2.0', method: 'notifications/progress', params: { ...progress, progressToken: token } });
}

/** The server's own error as it gave it; a transport failure or a timeout as apiary's own. */
function failure(request: JsonRpcRequest, err: unknown): JsonRpcResponse {
  if (err instanceof ProtocolError) return { jsonrpc: '2.0', id: request.id, error: { code: err.code, message: err.message, ...(err.data !== undefined ? { data: err.data } : {}) } };
  return errorResponse(request.id, ErrorCodes.ServerUnavailable, `${request.method} did not reach the server: ${messageOf(err)}`);
}
