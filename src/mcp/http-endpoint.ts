/**
 * apiary's Streamable HTTP endpoint for a stdio server, at
 * http://127.0.0.1:<port>/mcp (and the legacy HTTP+SSE transport at /sse).
 * Both revisions of MCP are served at the same URL: after the checks in
 * front (path, Host/Origin, token, body size), a POST's body is classified
 * by the SDK's `classifyInboundRequest`; a 2026-07-28 request goes to the
 * ModernFront (modern.ts), everything else to the 2025 sessions below.
 * Each 2025 client gets a session (Mcp-Session-Id);
 * its messages go to the shared upstream through the Bridge. A POST that
 * carries requests is answered with plain JSON when the answer is all there
 * is, and upgraded to an event stream when the server sends something first
 * (progress, a sampling request). Binds loopback only and checks Host and
 * Origin against DNS rebinding, as the MCP specification requires.
 *
 * The 2025 leg is apiary's own rather than the SDK v2's sessionful transport
 * (`NodeStreamableHTTPServerTransport` with a `Server` per session), which
 * was weighed (issue 24, item 6) and does not fit:
 * - the Bridge relays the server's own protocol: `initialize` is answered
 *   from the server's own handshake (its serverInfo, capabilities,
 *   instructions) and results go out as the server wrote them, while a
 *   `Server` answers initialize from its options and checks results (see
 *   Aggregate#answer);
 * - an answer goes as plain JSON when it is all there is, and becomes an
 *   event stream only when the server sends something first; the SDK
 *   decides per transport, up front: with `enableJsonResponse` what comes
 *   before the answer (progress, a sampling request) is dropped, without it
 *   every answer is an event stream;
 * - replay is bounded per endpoint (REPLAY_BUDGET_BYTES, idle sessions'
 *   events dropped first) beside MAX_SESSIONS and idle expiry, where the
 *   SDK's transport takes an EventStore of the caller's and bounds nothing;
 * - the HTTP+SSE transport (`/sse`, `/messages`), which the SDK v2 no longer
 *   has on the server side.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import { loopbackRefusal } from '../util/loopback.js';
import { BODY_TIMING, readBody, type BodyTiming } from '../util/read-body.js';
import { AGGREGATE_NAMING, GatedHost, retryAfterHeader, serverNaming } from './call-gate.js';
import { callerOf, defaultAccess, Gatekeeper } from './gatekeeper.js';
import { checkClientMessages, ErrorCodes, errorResponse, isRequest, isResponse, type Id, type JsonRpcMessage, type JsonRpcResponse } from './jsonrpc.js';
import type { HeldCallsOptions } from './held-calls.js';
import { MODERN_VERSION, ModernFront, modernRoute, withSortedTools, type SessionHost } from './modern.js';

export type { SessionHost } from './modern.js';

const MAX_BODY = 4 * 1024 * 1024;

interface PostStream {
  /** Names its events (`p3/17`), so a client can resume it. */
  key: string;
  session: SessionStreams;
  res: ServerResponse;
  waiting: Set<Id>;
  acceptsSse: boolean;
  /** detached: the client's connection dropped mid-stream; events are kept for a resume (GET with Last-Event-ID). */
  mode: 'pending' | 'sse' | 'detached' | 'done';
  batch: boolean;
  collected: JsonRpcMessage[];
}

/** An event sent (or kept) on one of a session's streams, for replay after a reconnect. */
interface SentEvent {
  stream: string;
  seq: number;
  text: string;
}

interface SessionStreams {
  posts: Set<PostStream>;
  get?: ServerResponse;
  lastSeen: number;
  /** Event ids are `<stream>/<seq>`, seq counting every event of the session. */
  seq: number;
  streamsOpened: number;
  history: SentEvent[];
  historyBytes: number;
}

/** Events kept per session for resuming streams (Last-Event-ID), at most this many and this many bytes; older ones are gone. */
export const REPLAY_EVENTS = 512;
export const REPLAY_BYTES = 1024 * 1024;
/**
 * Events kept by all the sessions of one endpoint together: a server's
 * notifications go to every session, idle ones included, and 256 full
 * buffers would be 256 MiB. Eight sessions' worth; past it the sessions idle
 * longest lose their oldest events first.
 */
export const REPLAY_BUDGET_BYTES = 8 * REPLAY_BYTES;
const GET_STREAM = 'g';

/** A session with no request and no open stream for this long is closed (clients that vanish without DELETE). */
export const SESSION_IDLE_MS = 30 * 60_000;
/** Sessions per endpoint, legacy /sse ones included; past it, the one idle longest makes room (measured: ~23 kB each). */
export const MAX_SESSIONS = 256;

export class HttpEndpoint {
  readonly #bridge: SessionHost;
  /** The host with the caller's rules in front of it (call-gate.ts): what every request goes to. */
  readonly #gated: GatedHost;
  readonly #host = '127.0.0.1';
  #port: number;
  #server: Server | undefined;
  readonly #streams = new Map<string, SessionStreams>();
  /** Legacy SSE sessions: session id -> the open GET /sse stream. */
  readonly #legacy = new Map<string, ServerResponse>();
  #sweeper: NodeJS.Timeout | undefined;

  /** Who may call (the token, or step 17's identity), shared with the gateway's other endpoints. */
  readonly #gate: Gatekeeper;
  /** The server it serves (`*`: the aggregate), as audit records and resource metadata name it. */
  readonly #name: string;
  readonly #bodyTiming: BodyTiming;
  readonly #replayBudget: number;
  /** The bytes of every session's replay events. */
  #replayBytes = 0;

  readonly #onError: ((error: unknown) => void) | undefined;
  readonly #modern: ModernFront;
  /** Each 2025 session's tools/list requests awaiting their answer, to sort the tools in it. */
  readonly #toolLists = new Map<string, Set<Id>>();

  /**
   * `bodyTiming`: how long a request body may take to arrive; `replayBudgetBytes`: see REPLAY_BUDGET_BYTES (tests shorten both);
   * `onError`: told of what a request's handling threw (the request itself gets 500); `heldCalls`: see HeldCalls (tests shorten them);
   * `gate`: the gateway's Gatekeeper (without one: a gate of its own requiring `token`, or nothing without it); `name`: the server's (default `*`, the aggregate).
   */
  constructor(bridge: SessionHost, port: number, options: { token?: string; gate?: Gatekeeper; name?: string; bodyTiming?: BodyTiming; replayBudgetBytes?: number; onError?: (error: unknown) => void; heldCalls?: HeldCallsOptions } = {}) {
    this.#onError = options.onError;
    this.#name = options.name ?? '*';
    this.#bridge = bridge;
    this.#port = port;
    this.#gate = options.gate ?? new Gatekeeper(defaultAccess(options.token));
    const gate = this.#gate;
    // Policies are asked about this server by name, or at the aggregate (`*`) about each member under its own names.
    this.#gated = new GatedHost(this.#bridge, () => gate.config, this.#name === '*' ? AGGREGATE_NAMING : serverNaming(this.#name));
    this.#bodyTiming = options.bodyTiming ?? BODY_TIMING;
    this.#replayBudget = options.replayBudgetBytes ?? REPLAY_BUDGET_BYTES;
    this.#modern = new ModernFront(this.#gated, { tokenRequired: () => this.#gate.authRequired, ...(options.onError !== undefined ? { onError: options.onError } : {}), ...(options.heldCalls !== undefined ? { heldCalls: options.heldCalls } : {}) });
  }

  /** What the sessions' replay events take together (at most the budget). */
  get replayBytes(): number {
    return this.#replayBytes;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `http://${this.#host}:${this.#port}/mcp`;
  }

  /** Listens; rejects with the socket error (EADDRINUSE...) when it cannot. */
  listen(): Promise<void> {
    const server = createServer((req, res) => void this.#handle(req, res).catch((err: unknown) => this.#failed(res, err)));
    server.keepAliveTimeout = 30_000;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, this.#host, () => {
        server.off('error', reject);
        this.#port = (server.address() as AddressInfo).port;
        this.#server = server;
        this.#sweep();
        resolve();
      });
    });
  }

  #sweep(): void {
    this.#sweeper ??= setInterval(() => this.expireIdleSessions(Date.now()), 60_000);
    this.#sweeper.unref();
  }

  /**
   * Serves one request that reached another listener (the proxy in front of
   * a 2026-07-28 HTTP server serves its 2025 clients here); `body`: a POST's,
   * already read there. Never throws.
   */
  serve(req: IncomingMessage, res: ServerResponse, body?: Buffer): Promise<void> {
    this.#sweep();
    return this.#handle(req, res, body).catch((err: unknown) => this.#failed(res, err));
  }

  /** Closes sessions idle past SESSION_IDLE_MS with nothing open; returns how many. */
  expireIdleSessions(now: number): number {
    let closed = 0;
    for (const [id, streams] of this.#streams) {
      if (streams.get !== undefined || hasOpenPost(streams) || now - streams.lastSeen < SESSION_IDLE_MS) continue;
      this.#forget(id);
      closed++;
    }
    return closed;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    await this.#modern.close();
    for (const res of this.#legacy.values()) res.end();
    for (const [id, streams] of this.#streams) {
      streams.get?.end();
      for (const post of streams.posts) post.res.end();
      this.#gated.closeSession(id);
    }
    this.#streams.clear();
    this.#replayBytes = 0;
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse, body?: Buffer): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!.replace(/\/$/, '');
    const metadata = this.#gate.resourceMetadata(req, this.#name);
    if (path !== '/mcp' && path !== '/sse' && path !== '/messages' && metadata === undefined) return this.#fail(res, 404, null, ErrorCodes.InvalidRequest, `not found: use ${this.url}`);
    const refused = loopbackRefusal(req);
    if (refused !== undefined) return this.#fail(res, 403, null, ErrorCodes.InvalidRequest, `${refused} (DNS rebinding protection)`);
    if (metadata !== undefined) return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(metadata));
    const auth = await this.#gate.authenticate(req, this.#name);
    if ('challenge' in auth) {
      for (const [k, v] of Object.entries(auth.challenge.headers)) res.setHeader(k, v);
      return this.#fail(res, auth.challenge.status, null, ErrorCodes.InvalidRequest, auth.challenge.message);
    }
    if (path === '/sse' && req.method === 'GET') return this.#legacyStream(req, res);
    if (path === '/messages' && req.method === 'POST') return this.#legacyPost(req, res);
    if (path !== '/mcp') {
      res.writeHead(405).end();
      return;
    }
    if (req.method === 'POST') return this.#route(req, res, body);
    const version = header(req, 'mcp-protocol-version');
    // 2026-07-28 has no sessions and no GET stream: its transport answers anything but POST with 405.
    if (version === MODERN_VERSION) {
      res.writeHead(405, { Allow: 'POST' }).end();
      return;
    }
    // The 2025 specification: a version header the server does not speak is a bad request.
    if (version !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) return this.#fail(res, 400, null, ErrorCodes.InvalidRequest, unsupportedVersion(version));
    if (req.method === 'GET') return this.#get(req, res);
    if (req.method === 'DELETE') return this.#delete(req, res);
    res.writeHead(405, { Allow: 'GET, POST, DELETE' }).end();
  }

  /** What a request's handling threw ends that request (500, or its stream cut), never the controller. */
  #failed(res: ServerResponse, err: unknown): void {
    this.#onError?.(err);
    if (!res.headersSent) this.#fail(res, 500, null, ErrorCodes.InternalError, 'apiary could not handle this request; the controller log says why');
    else res.destroy();
  }

  #fail(res: ServerResponse, status: number, id: Id | null, code: number, message: string): void {
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(errorResponse(id, code, message)));
  }

  /** The body as text, or undefined once the request has been answered (413, 408) or its client is gone. */
  async #body(req: IncomingMessage, res: ServerResponse): Promise<string | undefined> {
    const read = await readBody(req, res, { limit: MAX_BODY, timing: this.#bodyTiming });
    if (read.ok) return read.body.toString('utf8');
    if (read.reason !== 'Aborted') this.#fail(res, read.status, null, ErrorCodes.InvalidRequest, read.message);
    return undefined;
  }

  /** A POST's body, read and parsed once, goes to the revision it is written in. */
  async #route(req: IncomingMessage, res: ServerResponse, read?: Buffer): Promise<void> {
    const text = read !== undefined ? read.toString('utf8') : await this.#body(req, res);
    if (text === undefined) return;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      return this.#fail(res, 400, null, ErrorCodes.ParseError, `invalid JSON: ${(err as Error).message}`);
    }
    const route = modernRoute(req, body);
    if (route !== undefined) return this.#modern.serve(req, res, body, route);
    const version = header(req, 'mcp-protocol-version');
    if (version !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) return this.#fail(res, 400, null, ErrorCodes.InvalidRequest, unsupportedVersion(version));
    return this.#post(req, res, body);
  }

  async #post(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const checked = checkClientMessages(body);
    if (checked === undefined) return this.#fail(res, 400, null, ErrorCodes.InvalidRequest, 'an empty batch is not a JSON-RPC 2.0 message');
    const { messages, rejected, batch } = checked;
    const accept = String(req.headers.accept ?? '');
    const acceptsSse = accept.includes('text/event-stream') || accept.includes('*/*');
    const initialize = messages.find((m) => isRequest(m) && m.method === 'initialize');
    let sessionId = header(req, 'mcp-session-id');
    const headers: Record<string, string> = {};
    if (initialize !== undefined) {
      if (messages.length > 1 || rejected.length > 0) return this.#fail(res, 400, null, ErrorCodes.InvalidRequest, 'initialize must be sent alone');
      if (!this.#makeRoomForSession()) return this.#fail(res, 503, null, ErrorCodes.InvalidRequest, SESSIONS_FULL);
      sessionId = this.#gated.openSession((m, related) => this.#deliver(sessionId!, this.#sorted(sessionId!, m), related), { caller: callerOf(req) });
      this.#streams.set(sessionId, { posts: new Set(), lastSeen: Date.now(), seq: 0, streamsOpened: 0, history: [], historyBytes: 0 });
      headers['Mcp-Session-Id'] = sessionId;
    } else if (sessionId === undefined) {
      return this.#fail(res, 400, null, ErrorCodes.InvalidRequest, 'missing Mcp-Session-Id header: send initialize first');
    } else if (!this.#owns(req, sessionId)) {
      return this.#fail(res, 404, null, ErrorCodes.InvalidRequest, 'unknown or expired session: initialize again');
    }
    this.#streams.get(sessionId)!.lastSeen = Date.now();
    refuseIdsInFlight(this.#streams.get(sessionId)!, messages, rejected);
    const requests = messages.filter(isRequest);
    if (requests.length === 0 && rejected.length === 0) {
      res.writeHead(202).end();
      for (const m of messages) await this.#gated.fromClient(sessionId, m);
      return;
    }
    const streams = this.#streams.get(sessionId)!;
    streams.streamsOpened += 1;
    const stream: PostStream = { key: `p${streams.streamsOpened}`, session: streams, res, waiting: new Set(requests.map((r) => r.id)), acceptsSse, mode: 'pending', batch, collected: [] };
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    streams.posts.add(stream);
    res.on('close', () => {
      if (stream.res !== res) return;
      // A dropped event stream with answers still to come is kept, so the client can resume it.
      if (stream.mode === 'sse' && stream.waiting.size > 0) stream.mode = 'detached';
      else streams.posts.delete(stream);
    });
    // What was rejected is answered with the rest (at once, when nothing else is awaited).
    stream.collected.push(...rejected);
    if (stream.waiting.size === 0) return this.#finish(stream);
    this.#noteToolLists(sessionId, messages);
    for (const m of messages) await this.#gated.fromClient(sessionId, m);
  }

  /** A session the host knows, opened by this request's caller: another caller's session id is as unknown to it as a made-up one (404). */
  #owns(req: IncomingMessage, sessionId: string): boolean {
    const caller = callerOf(req);
    if (!this.#gated.hasSession(sessionId) || !this.#gated.ownedBy(sessionId, caller)) return false;
    this.#gated.authenticated(sessionId, caller);
    return true;
  }

  /**
   * Sessions are bounded, legacy ones included: at the limit, the one idle
   * longest (no open stream) is closed to make room, as a client that never
   * sends DELETE would want. False when every session has a stream open.
   */
  #makeRoomForSession(): boolean {
    if (this.#streams.size + this.#legacy.size < MAX_SESSIONS) return true;
    let oldest: [string, SessionStreams] | undefined;
    for (const entry of this.#streams) {
      const streams = entry[1];
      if (streams.get !== undefined || hasOpenPost(streams)) continue;
      if (oldest === undefined || streams.lastSeen < oldest[1].lastSeen) oldest = entry;
    }
    if (oldest === undefined) return false;
    this.#forget(oldest[0]);
    return true;
  }

  /** A session's tools/list requests, so their answers list the tools sorted by name (both revisions see one order). */
  #noteToolLists(sessionId: string, messages: JsonRpcMessage[]): void {
    for (const m of messages) {
      if (!isRequest(m) || m.method !== 'tools/list') continue;
      let ids = this.#toolLists.get(sessionId);
      if (ids === undefined) this.#toolLists.set(sessionId, (ids = new Set()));
      ids.add(m.id);
    }
  }

  #sorted(sessionId: string, message: JsonRpcMessage): JsonRpcMessage {
    const ids = this.#toolLists.get(sessionId);
    if (ids === undefined || !isResponse(message) || message.id === null || !ids.delete(message.id)) return message;
    if (ids.size === 0) this.#toolLists.delete(sessionId);
    return message.result === undefined ? message : { ...message, result: withSortedTools(message.result) as typeof message.result };
  }

  /** Closes a Streamable HTTP session and gives back what its replay events took. */
  #forget(id: string): void {
    const streams = this.#streams.get(id);
    this.#streams.delete(id);
    this.#toolLists.delete(id);
    this.#replayBytes -= streams?.historyBytes ?? 0;
    this.#gated.closeSession(id);
  }

  #get(req: IncomingMessage, res: ServerResponse): void {
    const sessionId = header(req, 'mcp-session-id');
    if (!String(req.headers.accept ?? '').includes('text/event-stream')) {
      res.writeHead(405, { Allow: 'POST, DELETE' }).end();
      return;
    }
    if (sessionId === undefined || !this.#owns(req, sessionId)) return this.#fail(res, sessionId ? 404 : 400, null, ErrorCodes.InvalidRequest, 'unknown or missing session');
    const streams = this.#streams.get(sessionId)!;
    const resume = parseEventId(header(req, 'last-event-id'));
    const post = resume === undefined ? undefined : [...streams.posts].find((p) => p.key === resume.stream);
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    res.flushHeaders();
    // What the client missed on the stream it names, in order.
    if (resume !== undefined) for (const event of streams.history) if (event.stream === resume.stream && event.seq > resume.seq) res.write(event.text);
    if (resume !== undefined && resume.stream !== GET_STREAM) {
      // Resuming a request's stream: the rest of its answers come here, then it ends.
      if (post?.mode === 'detached') {
        post.res = res;
        post.mode = 'sse';
        res.on('close', () => {
          if (post.res === res && post.waiting.size > 0) post.mode = 'detached';
        });
      } else {
        res.end();
      }
      return;
    }
    streams.get?.end();
    streams.get = res;
    res.on('close', () => {
      if (streams.get === res) delete streams.get;
    });
  }

  /**
   * The legacy HTTP+SSE transport (protocol 2024-11-05) for older clients:
   * GET /sse opens the stream and names the POST endpoint; every reply travels on the stream.
   */
  #legacyStream(req: IncomingMessage, res: ServerResponse): void {
    if (!this.#makeRoomForSession()) return this.#fail(res, 503, null, ErrorCodes.InvalidRequest, SESSIONS_FULL);
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    const sessionId = this.#gated.openSession((m) => res.write(sseEvent(this.#sorted(sessionId, m))), { caller: callerOf(req) });
    this.#legacy.set(sessionId, res);
    res.write(`event: endpoint\ndata: /messages?sessionId=${encodeURIComponent(sessionId)}\n\n`);
    res.on('close', () => {
      this.#legacy.delete(sessionId);
      this.#toolLists.delete(sessionId);
      this.#gated.closeSession(sessionId);
    });
  }

  async #legacyPost(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const sessionId = new URL(req.url ?? '/', 'http://localhost').searchParams.get('sessionId') ?? '';
    if (!this.#legacy.has(sessionId) || !this.#owns(req, sessionId)) return this.#fail(res, 404, null, ErrorCodes.InvalidRequest, 'unknown session: open GET /sse first');
    const text = await this.#body(req, res);
    if (text === undefined) return;
    let checked;
    try {
      checked = checkClientMessages(JSON.parse(text));
    } catch (err) {
      return this.#fail(res, 400, null, ErrorCodes.ParseError, `invalid JSON: ${(err as Error).message}`);
    }
    if (checked === undefined) return this.#fail(res, 400, null, ErrorCodes.InvalidRequest, 'an empty batch is not a JSON-RPC 2.0 message');
    res.writeHead(202).end('Accepted');
    // The legacy transport answers everything on the event stream, rejections too.
    const stream = this.#legacy.get(sessionId);
    for (const answer of checked.rejected) stream?.write(sseEvent(answer));
    this.#noteToolLists(sessionId, checked.messages);
    for (const m of checked.messages) await this.#gated.fromClient(sessionId, m);
  }

  #delete(req: IncomingMessage, res: ServerResponse): void {
    const sessionId = header(req, 'mcp-session-id');
    if (sessionId === undefined || !this.#owns(req, sessionId)) return this.#fail(res, 404, null, ErrorCodes.InvalidRequest, 'unknown session');
    const streams = this.#streams.get(sessionId);
    streams?.get?.end();
    for (const post of streams?.posts ?? []) post.res.end();
    this.#forget(sessionId);
    res.writeHead(200).end();
  }

  /** Routes a message for a session: to the POST it answers, else any open stream. */
  #deliver(sessionId: string, message: JsonRpcMessage, related?: Id): void {
    const streams = this.#streams.get(sessionId);
    if (streams === undefined) return;
    const isAnswer = !('method' in message) && 'id' in message && message.id !== null;
    if (related !== undefined) {
      // An answer (or progress) for a POST whose connection the client already closed has nowhere to go.
      const owner = [...streams.posts].find((p) => p.waiting.has(related));
      if (owner === undefined) return;
      if (isAnswer) owner.waiting.delete(related);
      this.#write(owner, message, isAnswer);
      return;
    }
    // Unrelated (server-to-client requests, broadcasts): an open event stream, a POST that can become one, or the GET stream.
    const sse = [...streams.posts].find((p) => p.mode === 'sse') ?? [...streams.posts].find((p) => p.mode === 'pending' && p.acceptsSse);
    if (sse !== undefined) return this.#write(sse, message, false);
    // Kept even with no GET stream open: a client resuming it gets what it missed.
    this.#emit(streams, GET_STREAM, streams.get, message);
  }

  /** Writes one event (when a connection is open) and keeps it for replay. */
  #emit(streams: SessionStreams, stream: string, res: ServerResponse | undefined, message: JsonRpcMessage): void {
    streams.seq += 1;
    const text = `id: ${stream}/${streams.seq}\n${sseEvent(message)}`;
    streams.history.push({ stream, seq: streams.seq, text });
    streams.historyBytes += text.length;
    this.#replayBytes += text.length;
    while (streams.history.length > REPLAY_EVENTS || (streams.historyBytes > REPLAY_BYTES && streams.history.length > 1)) this.#dropOldestEvent(streams);
    this.#keepReplayBudget();
    res?.write(text);
  }

  /**
   * Over the endpoint's budget, events go oldest first from the session idle
   * longest: sessions with nothing open before those with a stream or an
   * answer still to come (whose events a resume needs), and among equals the
   * one seen least recently.
   */
  #keepReplayBudget(): void {
    while (this.#replayBytes > this.#replayBudget) {
      let victim: SessionStreams | undefined;
      for (const streams of this.#streams.values()) {
        if (streams.history.length === 0) continue;
        if (victim === undefined || evictsBefore(streams, victim)) victim = streams;
      }
      if (victim === undefined) return;
      this.#dropOldestEvent(victim);
    }
  }

  #dropOldestEvent(streams: SessionStreams): void {
    const dropped = streams.history.shift();
    if (dropped === undefined) return;
    streams.historyBytes -= dropped.text.length;
    this.#replayBytes -= dropped.text.length;
  }

  /** Every answer is in and nothing was streamed: one plain JSON reply. */
  #finish(stream: PostStream): void {
    stream.mode = 'done';
    stream.res.writeHead(200, { 'Content-Type': 'application/json', ...retryAfterHeader(stream.collected) }).end(JSON.stringify(stream.batch ? stream.collected : stream.collected[0]));
  }

  #write(stream: PostStream, message: JsonRpcMessage, isAnswer: boolean): void {
    if (stream.mode === 'done') return;
    const session = stream.session;
    if (stream.mode === 'detached') {
      this.#emit(session, stream.key, undefined, message);
      if (isAnswer && stream.waiting.size === 0) {
        stream.mode = 'done';
        session.posts.delete(stream);
      }
      return;
    }
    if (stream.mode === 'pending') {
      if (isAnswer) {
        // Nothing streamed yet: when every answer is in, reply with plain JSON.
        stream.collected.push(message);
        if (stream.waiting.size === 0) this.#finish(stream);
        return;
      }
      // Something before the answer (progress, a sampling request): switch to an event stream.
      if (!stream.acceptsSse) return;
      stream.mode = 'sse';
      stream.res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
      for (const m of stream.collected.splice(0)) this.#emit(session, stream.key, stream.res, m);
    }
    this.#emit(session, stream.key, stream.res, message);
    if (isAnswer && stream.waiting.size === 0) {
      stream.mode = 'done';
      session.posts.delete(stream);
      stream.res.end();
    }
  }
}

function unsupportedVersion(version: string): string {
  return `Bad Request: unsupported MCP-Protocol-Version ${JSON.stringify(version)}: apiary speaks ${MODERN_VERSION} (per request) and ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')} (after initialize)`;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * A request under an id the session still awaits an answer to (another POST's) is refused, never sent: answers are routed
 * by id, so the two calls' answers would cross POSTs, and the call gate would lose one's audit record.
 */
function refuseIdsInFlight(streams: SessionStreams, messages: JsonRpcMessage[], rejected: JsonRpcResponse[]): void {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]!;
    if (!isRequest(m) || ![...streams.posts].some((p) => p.waiting.has(m.id))) continue;
    messages.splice(i, 1);
    rejected.push(errorResponse(m.id, ErrorCodes.InvalidRequest, `request id ${JSON.stringify(m.id)} is in use by a request still in flight on this session; use a new id`));
  }
}

function hasOpenPost(streams: SessionStreams): boolean {
  return [...streams.posts].some((p) => p.mode !== 'detached');
}

/** Whether `a`'s replay events go before `b`'s: nothing open before something open, then the one seen least recently. */
function evictsBefore(a: SessionStreams, b: SessionStreams): boolean {
  const inUse = (s: SessionStreams): boolean => s.get !== undefined || s.posts.size > 0;
  if (inUse(a) !== inUse(b)) return !inUse(a);
  return a.lastSeen < b.lastSeen;
}

const SESSIONS_FULL = `all ${MAX_SESSIONS} sessions of this endpoint have a stream open: close one (DELETE /mcp, or the /sse stream) and try again`;

/** `<stream>/<seq>` as this endpoint writes event ids; anything else is no resume point. */
function parseEventId(text: string | undefined): { stream: string; seq: number } | undefined {
  const match = /^(g|p\d+)\/(\d+)$/.exec(text ?? '');
  return match ? { stream: match[1]!, seq: Number(match[2]) } : undefined;
}

function sseEvent(message: JsonRpcMessage): string {
  return `event: message\ndata: ${JSON.stringify(message)}\n\n`;
}


