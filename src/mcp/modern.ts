/**
 * The 2026-07-28 revision of MCP at one of apiary's endpoints, beside the
 * 2025 sessions the endpoint keeps. The endpoint has already checked path,
 * Host/Origin, token and body size, and classified the body with the SDK's
 * `classifyInboundRequest`; what is modern (or a rung of the modern ladder
 * refused) comes here.
 *
 * Each modern request is served by the SDK's own entry
 * (`createMcpHandler(..., { legacy: 'reject' })`, one per endpoint, closed
 * with it), which checks the
 * `Mcp-Method`/`Mcp-Name` headers and the `_meta` envelope, stamps
 * `resultType` and `serverInfo`, and adds the cache hints. Its `Server`
 * forwards into the endpoint's SessionHost (a Bridge or the Aggregate) over
 * a client session that lives as long as the request: opened, introduced
 * with the envelope's capabilities, asked once, closed. Nothing a modern
 * client needs stays in the endpoint between requests.
 *
 * The hot methods (tools/call, the lists, prompts/get, resources/read,
 * completion/complete) skip that per-request Server when the request and
 * the server's answer are ones modern-fast.ts repeats the SDK on exactly:
 * forwarded over the same short session, written with the same bytes.
 * Whatever else (an error, input_required, a richer result) the SDK serves
 * with the answer in hand; so too a call whose server reports progress
 * (`_meta.progressToken`) before it answers: the SDK then answers with an SSE
 * response stream, the progress first and the result last, as the
 * 2026-07-28 Streamable HTTP transport says (progress never goes on a listen
 * stream). A request without progress still gets plain JSON.
 *
 * Two things are apiary's, not the SDK's: `server/discover` and -32022 list
 * 2025-11-25 beside 2026-07-28 (the SDK lists only the modern revision,
 * since its 2025 leg is not the one apiary serves), so their answers are
 * rewritten; and the SDK's `toNodeHandler` is not used, because that
 * rewriting needs the Response before it is written.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { toWebRequest } from '@modelcontextprotocol/node';
import { classifyInboundRequest, createMcpHandler, ProtocolError, Server, type CacheHint, type InboundClassificationOutcome, type McpHttpHandler } from '@modelcontextprotocol/server';
import type { Caller } from '../api/gate.js';
import type { Deliver } from './bridge.js';
import { GatedHost } from './call-gate.js';
import { callerOf } from './gatekeeper.js';
import { callName, HeldCalls, INPUT_CAPABILITY, MAY_ASK, principalOf, type Binding, type HeldCallsOptions, type Holdable } from './held-calls.js';
import type { ListKind } from './list-watch.js';
import { ErrorCodes, errorResponse, isRequest, isResponse, ModernErrorCodes, modernErrorCode, type Id, type JsonRpcMessage, type JsonRpcNotification, type JsonRpcRequest, type JsonRpcResponse } from './jsonrpc.js';
import { encodeResult, fastRequest, writeResult } from './modern-fast.js';
import { ResourceWatch } from './resource-watch.js';

export const MODERN_VERSION = '2026-07-28';
/** What a 2025 client reaches with `initialize` at the same URL. */
export const LEGACY_VERSION = '2025-11-25';
/** Every revision apiary's endpoints speak, newest first, as discover and -32022 say. */
export const SUPPORTED_VERSIONS: readonly string[] = [MODERN_VERSION, LEGACY_VERSION];

/**
 * How long a modern client may reuse a list (and discover): short, because a
 * spec.tools edit, a rollout or a server coming and going changes them, and
 * a client that does not listen (subscriptions/listen) learns of that only
 * by asking again.
 */
export const LIST_TTL_MS = 1000;

/**
 * How a session is opened. `ephemeral`: a session for one request, no news to whoever watches the host's clients (a modern
 * request's). `share`: who the client is; its sessions share one client's place in the host's per-client queues. The rest is
 * for the endpoint's GatedHost (call-gate.ts), which takes it out before the host sees the options: `caller`, who opened the
 * session (its owner, and who policies are asked about); `protocolVersion`, `client` (`name/version`); `requestId`, the
 * client's id of the one request a 2026-07-28 session is for.
 */
export interface SessionOptions {
  ephemeral?: boolean;
  share?: string;
  caller?: Caller;
  protocolVersion?: string;
  client?: string;
  requestId?: Id;
}

/** The client side of what an endpoint serves (a Bridge, the Aggregate): the same sessions 2025 clients get. */
export interface SessionHost {
  openSession(deliver: Deliver, options?: SessionOptions): string;
  hasSession(id: string): boolean;
  closeSession(id: string): void;
  fromClient(sessionId: string, message: JsonRpcMessage): Promise<void>;
  /**
   * Calls `listener` whenever what the host's clients see of a list changes
   * (the moments its 2025 sessions are sent `notifications/<kind>/list_changed`);
   * gives back the way to stop. A host without it has no listen stream news.
   */
  watchLists?(listener: (kind: ListKind) => void): () => void;
}

/** What the endpoint hands over: anything its classifier did not send to the 2025 leg. */
export type ModernRoute = Exclude<InboundClassificationOutcome, { kind: 'legacy' }>;

/**
 * Where a POST goes, by the SDK's classifier on its parsed body: a modern
 * route (or a refusal of the modern ladder), or undefined for the 2025 leg.
 * A refusal of something that does not claim the modern revision (a
 * malformed message, a 2025 request whose version header names neither
 * revision) is the 2025 leg's to answer, as it always has been.
 */
export function modernRoute(req: IncomingMessage, body: unknown): ModernRoute | undefined {
  const version = header(req, 'mcp-protocol-version');
  const route = classifyInboundRequest({
    httpMethod: 'POST',
    ...optional('protocolVersionHeader', version),
    ...optional('mcpMethodHeader', header(req, 'mcp-method')),
    ...optional('mcpNameHeader', header(req, 'mcp-name')),
    body,
  });
  if (route.kind === 'legacy' || (route.kind === 'reject' && version !== MODERN_VERSION && !claimsEnvelope(body))) return undefined;
  return route;
}

/** Whether a body (or an element of a batch) carries the 2026-07-28 envelope's version claim. */
function claimsEnvelope(body: unknown): boolean {
  const claims = (m: unknown): boolean => {
    const meta = (m as { params?: { _meta?: unknown } } | null)?.params?._meta;
    return typeof meta === 'object' && meta !== null && `${ENVELOPE_PREFIX}protocolVersion` in meta;
  };
  return Array.isArray(body) ? body.some(claims) : claims(body);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `{ [key]: value }` when there is a value (exactOptionalPropertyTypes keeps undefined out of optional fields). */
function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

/** What a server says of itself, read through the short session (the answer to its `initialize`). */
interface Introduction {
  capabilities: Record<string, unknown>;
  serverInfo: { name: string; version: string };
  instructions?: string;
}

/** The methods apiary forwards, by the capability that offers them. */
const FORWARDED: Record<string, readonly string[]> = {
  tools: ['tools/list', 'tools/call'],
  prompts: ['prompts/list', 'prompts/get'],
  resources: ['resources/list', 'resources/templates/list', 'resources/read'],
  completions: ['completion/complete'],
};

/** The capability a forwarded method is offered under. */
const CAPABILITY_OF: ReadonlyMap<string, string> = new Map(Object.entries(FORWARDED).flatMap(([capability, methods]) => methods.map((method) => [method, capability] as const)));

/** What the SDK gives a request handler that apiary uses: the way to send a notification on the request's own response stream. */
interface HandlerContext {
  mcpReq: { notify(notification: JsonRpcNotification): Promise<void> };
}

/** What ShortSession.progressed resolves with: the server reported progress before it answered. */
const PROGRESS = Symbol('progress');

/** A request already sent on to the server (by the fast path), its answer to come. */
interface Forwarded {
  method: string;
  answer: Promise<Record<string, unknown>>;
}

/** Envelope keys are the endpoint's business; the rest of `_meta` (traceparent, tracestate, baggage, progressToken) goes upstream. */
const ENVELOPE_PREFIX = 'io.modelcontextprotocol/';

export class ModernFront {
  readonly #host: SessionHost;
  /** The cache hints of the lists (and discover): short-lived, and private to one principal when the endpoint asks for a token. */
  /** The lists' cache hints for an endpoint that asks for a token (private to one principal) and for one that does not. */
  readonly #hints: { private: Readonly<Record<string, CacheHint>>; public: Readonly<Record<string, CacheHint>> };
  /** Asked per answer: a Gateway may turn authentication on or off while the endpoint serves. */
  readonly #tokenRequired: () => boolean;
  /** Whether the hot methods may skip the SDK's per-request Server (modern-fast.ts). */
  readonly #fast: boolean;
  /** The SDK's entry, one for the endpoint: it asks for each request's Server by the Request it was given. */
  readonly #handler: McpHttpHandler;
  readonly #servers = new WeakMap<Request, Server>();
  /** Stops the host's news reaching the SDK's listen streams. */
  readonly #unwatch: (() => void) | undefined;
  /** Calls whose server asked the client something, held until the client's retry (MRTR). */
  readonly #held: HeldCalls<ShortSession>;
  /** The resources listeners asked to hear of, subscribed at the server. */
  readonly #resources: ResourceWatch;
  /** The caller's rules in front of the host, when the endpoint has them. */
  readonly #gated: GatedHost | undefined;

  /**
   * `heldCalls`: how long and how many calls are held for their client's input (tests shorten them);
   * `sdkOnly`: every request through the SDK's entry (the tests hold the fast path to its answers with it).
   */
  constructor(host: SessionHost, options: { tokenRequired: boolean | (() => boolean); onError?: (error: unknown) => void; heldCalls?: HeldCallsOptions; sdkOnly?: boolean }) {
    this.#host = host;
    this.#held = new HeldCalls(options.heldCalls);
    const hints = (cacheScope: CacheHint['cacheScope']): Record<string, CacheHint> => {
      const hint: CacheHint = { ttlMs: LIST_TTL_MS, cacheScope };
      return { 'server/discover': hint, 'tools/list': hint, 'prompts/list': hint, 'resources/list': hint, 'resources/templates/list': hint };
    };
    this.#hints = { private: hints('private'), public: hints('public') };
    const required = options.tokenRequired;
    this.#tokenRequired = typeof required === 'function' ? required : () => required;
    this.#fast = options.sdkOnly !== true;
    const onError = options.onError;
    this.#handler = createMcpHandler(
      (ctx) => {
        const server = ctx.requestInfo === undefined ? undefined : this.#servers.get(ctx.requestInfo);
        // serve() registers a Server before every fetch: a miss is apiary's bug, answered as an internal error by the SDK.
        if (server === undefined) throw new Error('no Server registered for this request');
        return server;
      },
      { legacy: 'reject', ...(onError !== undefined ? { onerror: (err: Error) => onError(err) } : {}) },
    );
    // The SDK's listen streams hear of a change from the host at the moment its 2025 sessions do: no polling.
    const notify = this.#handler.notify;
    const publish: Record<ListKind, () => void> = { tools: () => notify.toolsChanged(), prompts: () => notify.promptsChanged(), resources: () => notify.resourcesChanged() };
    this.#unwatch = host.watchLists?.((kind) => publish[kind]());
    // The watch is apiary's own session (behind the caller's rules); each listener's URIs are checked before they are watched.
    this.#gated = host instanceof GatedHost ? host : undefined;
    this.#resources = new ResourceWatch(this.#gated?.inner ?? host, (uri) => notify.resourceUpdated(uri));
  }

  /** Ends the modern exchanges in flight and the listen streams (the endpoint is closing). */
  close(): Promise<void> {
    this.#unwatch?.();
    this.#resources.close();
    this.#held.close('the endpoint is closing');
    return this.#handler.close();
  }

  /** Answers one modern POST (or its refusal); never throws. */
  async serve(req: IncomingMessage, res: ServerResponse, body: unknown, route: ModernRoute): Promise<void> {
    const id = idOf(body);
    if (route.kind === 'reject') {
      if (route.code === ModernErrorCodes.UnsupportedProtocolVersion) return unsupported(res, id, requestedVersion(req, body));
      return writeJson(res, route.httpStatus, { jsonrpc: '2.0', id, error: { code: route.code, message: route.message, ...(route.data !== undefined ? { data: route.data } : {}) } });
    }
    // An envelope naming a 2025 revision: that one is reached with initialize, not per request.
    if (route.classification.era !== 'modern') return unsupported(res, id, route.classification.revision);
    // The core protocol defines no client notification over HTTP: accepted, and nothing to do.
    if (route.messageKind === 'notification') {
      res.writeHead(202).end();
      return;
    }
    const principal = principalOf(header(req, 'authorization'));
    const retried = this.#retried(route.message, principal);
    if (retried !== undefined && 'refused' in retried) return writeJson(res, 200, { jsonrpc: '2.0', id, error: retried.refused });
    const who: SessionOptions = { caller: callerOf(req), protocolVersion: MODERN_VERSION, requestId: route.message.id };
    const session = retried?.item ?? new ShortSession(this.#host, { held: this.#held, principal }, shareOf(principal, route.message.params), who);
    // The client gone: the session closes, which cancels its request at the server, and a listen stream ends.
    // The abort is made only for the SDK's Request (an event and a DOMException each: a fast answer needs neither).
    let gone: AbortController | undefined;
    let closed = false;
    res.on('close', () => {
      closed = true;
      session.close();
      gone?.abort();
    });
    try {
      const meta = (route.message.params?.['_meta'] ?? {}) as Record<string, unknown>;
      const intro = session.introduction ?? (await session.introduce(meta[`${ENVELOPE_PREFIX}clientCapabilities`], meta[`${ENVELOPE_PREFIX}clientInfo`]));
      if ('error' in intro) return writeJson(res, 200, { jsonrpc: '2.0', id, error: { code: modernErrorCode(intro.error.code), message: intro.error.message } });
      // A listen stream asks the server nothing itself: the introduction (what it offers) was all it needed of the session.
      // The resources it asks to hear of are subscribed at the server for as long as it listens.
      if (route.message.method === 'subscriptions/listen') {
        session.close();
        const asked = resourceSubscriptions(route.message.params, intro);
        const uris = this.#gated?.subscribable(callerOf(req), asked) ?? asked;
        if (uris.length > 0) res.on('close', this.#resources.watch(uris));
      }
      const forwarded = this.#forwardFast(req, route.message, intro, session);
      if (forwarded !== undefined && (await this.#writeFast(res, route.message.id, forwarded, intro, session))) return;
      gone = new AbortController();
      if (closed) gone.abort();
      const request = await toWebRequest(req, body, { signal: gone.signal });
      this.#servers.set(request, this.#server(intro, session, route.message.params ?? {}, forwarded));
      await writeResponse(res, await this.#handler.fetch(request, { parsedBody: body }));
    } finally {
      session.close();
    }
  }

  /**
   * A retry of a call held for its client's input (a requestState on a
   * method that may return input_required): the held session, taken up by
   * this request, or why the state is refused. Undefined: not a retry.
   */
  #retried(message: { method: string; params?: Record<string, unknown> }, principal: string): ReturnType<HeldCalls<ShortSession>['claim']> | undefined {
    const state = message.params?.['requestState'];
    if (typeof state !== 'string' || !MAY_ASK.has(message.method) || !HeldCalls.minted(state)) return undefined;
    const claimed = this.#held.claim(state, { method: message.method, name: callName(message.method, message.params), principal });
    if ('item' in claimed) claimed.item.resumeHeld();
    return claimed;
  }

  /**
   * Sends a hot request on at once, when the fast path can judge it as the
   * SDK would (modern-fast.ts); undefined leaves it to the SDK whole. Only a
   * method the server offers: the SDK answers the others -32601.
   */
  #forwardFast(req: IncomingMessage, message: { method: string; params?: Record<string, unknown> }, intro: Introduction, session: ShortSession): Forwarded | undefined {
    const params = message.params ?? {};
    const capability = CAPABILITY_OF.get(message.method);
    if (!this.#fast || capability === undefined || intro.capabilities[capability] === undefined || !fastRequest(req, message.method, params)) return undefined;
    return { method: message.method, answer: forward(session, message.method, upstreamParams(params)) };
  }

  /**
   * Writes the server's answer as the SDK would have; false when its shape
   * (or an error) is the SDK's to write, or when the server reports progress
   * before it answers: that goes on an SSE response stream, which the SDK
   * opens (the progress heard so far is handed to it, see ShortSession).
   */
  async #writeFast(res: ServerResponse, id: Id, forwarded: Forwarded, intro: Introduction, session: ShortSession): Promise<boolean> {
    const answered = forwarded.answer.then(
      (result) => ({ result }),
      () => ({ result: undefined }),
    );
    const first = await Promise.race([answered, session.progressed]);
    if (first === PROGRESS) return false;
    const result = first.result;
    const encoded = result === undefined ? undefined : encodeResult(forwarded.method, result, intro.serverInfo, this.#currentHints()[forwarded.method]);
    if (encoded === undefined) return false;
    writeResult(res, id, encoded);
    return true;
  }

  #currentHints(): Readonly<Record<string, CacheHint>> {
    return this.#tokenRequired() ? this.#hints.private : this.#hints.public;
  }

  /**
   * A Server for one request, offering what the server behind offers, its
   * handlers forwarding there (or, for a request the fast path already sent
   * on, giving its answer).
   */
  #server(intro: Introduction, session: ShortSession, rawParams: Record<string, unknown>, forwarded?: Forwarded): Server {
    const server = new Server(intro.serverInfo, {
      capabilities: withListChanged(intro.capabilities),
      ...(intro.instructions !== undefined ? { instructions: intro.instructions } : {}),
      cacheHints: this.#currentHints(),
    });
    // The SDK types each spec method's handler by its result; apiary passes the server's results on as they come, so one loose signature.
    const register = server.setRequestHandler.bind(server) as unknown as (method: string, handler: (request: unknown, ctx: HandlerContext) => Promise<Record<string, unknown>>) => void;
    for (const [capability, methods] of Object.entries(FORWARDED)) {
      if (intro.capabilities[capability] === undefined) continue;
      for (const method of methods) {
        register(method, (_request, ctx) => {
          // The server's progress goes out on this request's response stream: the SDK turns the answer into SSE at the first one.
          session.relayProgress((notification) => void ctx.mcpReq.notify(notification).catch(() => undefined));
          return forwarded?.method === method ? forwarded.answer : forward(session, method, upstreamParams(rawParams));
        });
      }
    }
    return server;
  }
}

/**
 * What the server offers, each list marked `listChanged`: apiary tells
 * listeners of every change it sees (filters, rollouts, servers coming and
 * going, the server's own news), whether or not the server itself would.
 * The SDK's listen router honours only what these capabilities declare.
 */
function withListChanged(capabilities: Record<string, unknown>): Record<string, unknown> {
  const marked = { ...capabilities };
  for (const kind of ['tools', 'prompts', 'resources'] as const) {
    const offered = marked[kind];
    if (typeof offered === 'object' && offered !== null) marked[kind] = { ...offered, listChanged: true };
  }
  return marked;
}

/**
 * Sends the request on and gives back its result; an error is thrown as the
 * SDK expects, with apiary's codes made modern. A call the server asks the
 * client something during gives a plain `{ resultType: 'input_required', ... }`
 * result, passed on as any other (the session is held for the retry).
 */
async function forward(session: ShortSession, method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
  const answer = await session.call(method, params);
  if (answer.error !== undefined) throw new ProtocolError(modernErrorCode(answer.error.code), answer.error.message, answer.error.data);
  const result = answer.result as Record<string, unknown>;
  return method === 'tools/list' ? withSortedTools(result) : result;
}

/** The client's params as the server gets them: the envelope left out of `_meta`, everything else (trace context) kept. */
function upstreamParams(params: Record<string, unknown>): Record<string, unknown> {
  const meta = params['_meta'];
  if (typeof meta !== 'object' || meta === null) return params;
  const kept = Object.fromEntries(Object.entries(meta).filter(([key]) => !key.startsWith(ENVELOPE_PREFIX)));
  const { _meta: _dropped, ...rest } = params;
  return Object.keys(kept).length > 0 ? { ...rest, _meta: kept } : rest;
}

/** MCP asks for tools in a deterministic order: by name (within the page a server gave). */
export function withSortedTools(result: Record<string, unknown>): Record<string, unknown> {
  const tools = result['tools'];
  if (!Array.isArray(tools)) return result;
  const name = (t: unknown): string => String((t as { name?: unknown } | null)?.name ?? '');
  return { ...result, tools: [...tools].sort((a, b) => (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0)) };
}

/** A server's question to the client, waiting for the client's answer: its id at the host, and what it asks. */
interface Ask {
  id: Id;
  method: string;
  params: Record<string, unknown>;
}

/** A call that may ask the client (tools/call, prompts/get, resources/read), from its request to its answer. */
interface Call {
  binding: Binding;
  /** The server's answer, once it came. */
  answer?: JsonRpcResponse;
  /** Questions not yet put to the client, by the key it will see. */
  fresh: Map<string, Ask>;
  /** Questions put to the client in the last input_required, awaiting its retry. */
  asked: Map<string, Ask>;
  /** Whoever waits for the call's next turn (its answer, or questions to pass on). */
  wake?: () => void;
  /** Questions arriving together are gathered until the server's current output is read (see #asked). */
  gathering?: NodeJS.Immediate;
}

/** Where a modern request's session holds its call while the client decides, and who the client is. */
interface HoldContext {
  held: HeldCalls<ShortSession>;
  principal: string;
}

/**
 * A client session at the host for one modern request. A server that asks
 * this client something mid-call (sampling, elicitation, roots) gets its
 * question passed on as `input_required` (MRTR): the session is held, with
 * the call still open at the server, until the client's retry brings the
 * answers (or the hold runs out). A question during anything else (the
 * introduction, a listing), or one the client's envelope did not declare the
 * capability for, is refused to the server at once, never left waiting.
 */
class ShortSession implements Holdable {
  readonly #host: SessionHost;
  readonly #id: string;
  readonly #pending = new Map<Id, (answer: JsonRpcResponse) => void>();
  readonly #hold: HoldContext | undefined;
  /** Names the held call in its requestState. */
  readonly #handle = randomUUID();
  #nextId = 1;
  #closed = false;
  /** Held: the HTTP request that began it is answered, and the session waits for the retry (closing it is the hold's business). */
  #held = false;
  #round = 0;
  #asks = 0;
  #call: Call | undefined;
  #capabilities: Record<string, unknown> = {};
  #introduction: Introduction | undefined;
  /** Progress the server reported before anyone relays it (the fast path gives way to the SDK at the first one). */
  readonly #progress: JsonRpcNotification[] = [];
  #relay: ((notification: JsonRpcNotification) => void) | undefined;
  #progressed: (() => void) | undefined;
  /** Resolves at the first progress the server reports on this session's request. */
  readonly progressed = new Promise<typeof PROGRESS>((resolve) => (this.#progressed = () => resolve(PROGRESS)));

  /** `who`: the caller and its request, for the endpoint's GatedHost (a host without one ignores them). */
  constructor(host: SessionHost, hold?: HoldContext, share?: string, who: SessionOptions = {}) {
    this.#host = host;
    this.#hold = hold;
    this.#id = host.openSession((message) => this.#deliver(message), { ...who, ephemeral: true, ...(share !== undefined ? { share } : {}) });
  }

  /** From now on the server's progress goes to `relay`, the progress heard before first. */
  relayProgress(relay: (notification: JsonRpcNotification) => void): void {
    this.#relay = relay;
    for (const notification of this.#progress.splice(0)) relay(notification);
  }

  /** What the server said of itself at this session's introduction (a retry's Server offers the same). */
  get introduction(): Introduction | undefined {
    return this.#introduction;
  }

  /** The server's introduction, asked with the client's own capabilities (so its requests to the client are checked against them). */
  async introduce(capabilities: unknown, clientInfo: unknown): Promise<Introduction | { error: { code: number; message: string } }> {
    this.#capabilities = typeof capabilities === 'object' && capabilities !== null ? (capabilities as Record<string, unknown>) : {};
    const answer = await this.request('initialize', {
      protocolVersion: LEGACY_VERSION,
      capabilities: this.#capabilities,
      clientInfo: typeof clientInfo === 'object' && clientInfo !== null ? clientInfo : { name: 'modern-client', version: '0' },
    });
    if (answer.error !== undefined) return { error: answer.error };
    const result = answer.result as Partial<Introduction> | undefined;
    this.#introduction = {
      capabilities: result?.capabilities ?? {},
      serverInfo: result?.serverInfo ?? { name: 'unknown', version: '0' },
      ...(typeof result?.instructions === 'string' ? { instructions: result.instructions } : {}),
    };
    return this.#introduction;
  }

  request(method: string, params: Record<string, unknown>): Promise<JsonRpcResponse> {
    if (this.#closed) return Promise.resolve(errorResponse(null, ErrorCodes.InternalError, 'the request was cancelled'));
    const id = this.#nextId++;
    const answered = new Promise<JsonRpcResponse>((resolve) => this.#pending.set(id, resolve));
    void this.#host.fromClient(this.#id, { jsonrpc: '2.0', id, method, params });
    return answered;
  }

  /**
   * A forwarded request: its answer, or, for a call the server asks
   * something during, an `input_required` result carrying the questions.
   * On a held session taken up by the client's retry, the same method goes
   * on with the call already open: the retry's `inputResponses` answer the
   * questions, and this resolves with the call's next turn.
   */
  call(method: string, params: Record<string, unknown>): Promise<JsonRpcResponse> {
    if (this.#call !== undefined) return this.#resume(params['inputResponses']);
    // Anything else goes on whole: inputResponses and a requestState apiary did not mint answer a 2026-07-28 server's own question.
    if (this.#hold === undefined || !MAY_ASK.has(method)) return this.request(method, params);
    const call: Call = { binding: { method, name: callName(method, params), principal: this.#hold.principal }, fresh: new Map(), asked: new Map() };
    this.#call = call;
    void this.request(method, params).then((answer) => {
      call.answer = answer;
      call.wake?.();
    });
    return this.#turn(call);
  }

  close(): void {
    if (this.#closed || this.#held) return;
    this.#closed = true;
    if (this.#call?.gathering !== undefined) clearImmediate(this.#call.gathering);
    this.#call = undefined;
    this.#host.closeSession(this.#id);
    for (const [id, resolve] of this.#pending) resolve(errorResponse(id, ErrorCodes.InternalError, 'the client went away'));
    this.#pending.clear();
  }

  /** The hold ran out (or the endpoint is closing): the server's questions get an error, and closing the session cancels the call at the server. */
  expire(reason: string): void {
    this.#held = false;
    const call = this.#call;
    if (call !== undefined) for (const ask of [...call.asked.values(), ...call.fresh.values()]) this.#answer(ask, errorResponse(ask.id, ErrorCodes.InternalError, `the ${MODERN_VERSION} client did not answer: ${reason}`));
    this.close();
  }

  /** Taken up by a retry: from now on the retry's HTTP request owns the session (its end closes it, unless it is held again). */
  resumeHeld(): void {
    this.#held = false;
  }

  /** The call's next turn: its answer when it came, else the questions gathered so far as input_required (holding the session), else a wait. */
  #turn(call: Call): Promise<JsonRpcResponse> {
    return new Promise((resolve) => {
      const settle = (): boolean => {
        const next = this.#next(call);
        if (next === undefined) return false;
        call.wake = undefined;
        resolve(next);
        return true;
      };
      if (!settle()) call.wake = settle;
    });
  }

  #next(call: Call): JsonRpcResponse | undefined {
    if (call.answer !== undefined) {
      this.#call = undefined;
      return call.answer;
    }
    if (call.fresh.size === 0 || call.gathering !== undefined) return undefined;
    const round = this.#round + 1;
    const state = this.#hold?.held.hold(this.#handle, round, this, call.binding);
    if (state === undefined) {
      // The endpoint holds its most: the server is told now, and the call goes on without the answers.
      const max = this.#hold?.held.max ?? 0;
      for (const ask of call.fresh.values()) this.#answer(ask, errorResponse(ask.id, ErrorCodes.InternalError, `apiary already holds ${max} call(s) waiting for their clients' input at this endpoint (the most it holds): refused`));
      call.fresh.clear();
      return undefined;
    }
    this.#round = round;
    this.#held = true;
    const inputRequests: Record<string, { method: string; params: Record<string, unknown> }> = {};
    for (const [key, ask] of call.fresh) {
      inputRequests[key] = { method: ask.method, params: ask.params };
      call.asked.set(key, ask);
    }
    call.fresh.clear();
    // The id is nobody's: forward reads the result, and the SDK answers under the client's id.
    return { jsonrpc: '2.0', id: 0, result: { resultType: 'input_required', inputRequests, requestState: state } };
  }

  /** The retry's answers go to the questions they answer (one left out is an error to the server); then the call's next turn. */
  #resume(responses: unknown): Promise<JsonRpcResponse> {
    const call = this.#call!;
    const given = typeof responses === 'object' && responses !== null ? (responses as Record<string, unknown>) : {};
    for (const [key, ask] of call.asked) {
      const result = given[key];
      if (typeof result === 'object' && result !== null && !Array.isArray(result)) this.#answer(ask, { jsonrpc: '2.0', id: ask.id, result: result as Record<string, unknown> });
      else this.#answer(ask, errorResponse(ask.id, ErrorCodes.InternalError, result === undefined ? `the ${MODERN_VERSION} client's retry carried no inputResponses["${key}"]` : `the ${MODERN_VERSION} client's inputResponses["${key}"] is not a result object`));
    }
    call.asked.clear();
    return this.#turn(call);
  }

  #answer(ask: Ask, response: JsonRpcResponse): void {
    void this.#host.fromClient(this.#id, { ...response, id: ask.id });
  }

  #deliver(message: JsonRpcMessage): void {
    if (isResponse(message)) {
      const resolve = message.id === null ? undefined : this.#pending.get(message.id);
      if (resolve === undefined) return;
      this.#pending.delete(message.id!);
      resolve(message);
      return;
    }
    if (isRequest(message)) return this.#asked(message);
    // The server gave up a question: the client's answer to it will go nowhere.
    if (message.method === 'notifications/cancelled') {
      const id = message.params?.['requestId'];
      for (const asks of [this.#call?.fresh, this.#call?.asked]) for (const [key, ask] of asks ?? []) if (ask.id === id) asks!.delete(key);
    }
    // Progress (the host gives it back under the client's own token) goes on the request's response stream.
    if (message.method === 'notifications/progress') {
      if (this.#relay !== undefined) this.#relay(message);
      else this.#progress.push(message);
      this.#progressed?.();
    }
    // Other notifications (list changes) are the listen stream's: a request's own stream carries only what relates to it.
  }

  /**
   * A server's question. Questions the server sends together (one read of
   * its output) become one input_required: the turn waits for the I/O
   * already arrived to be handled (setImmediate), and no longer, so a lone
   * question costs no timer. One sent later waits for the next turn.
   */
  #asked(request: JsonRpcRequest): void {
    const refuse = (why: string): void => void this.#host.fromClient(this.#id, errorResponse(request.id, ErrorCodes.MethodNotFound, why));
    const call = this.#call;
    const capability = INPUT_CAPABILITY[request.method];
    if (call === undefined || call.answer !== undefined) return refuse(`no call of this ${MODERN_VERSION} client's is waiting that could carry ${request.method} to it as input_required: refused`);
    if (capability === undefined) return refuse(`${request.method} cannot be asked of a ${MODERN_VERSION} client (input_required carries sampling, elicitation and roots only): refused`);
    if (this.#capabilities[capability] === undefined) return refuse(`the client whose request ${request.method} serves did not declare the ${capability} capability`);
    call.fresh.set(`${capability}-${++this.#asks}`, { id: request.id, method: request.method, params: request.params ?? {} });
    call.gathering ??= setImmediate(() => {
      call.gathering = undefined;
      call.wake?.();
    });
  }
}

/**
 * The URIs a listen request asks to hear of that the SDK's router honours:
 * only when the server offers `resources.subscribe` (as the router checks).
 */
function resourceSubscriptions(params: Record<string, unknown> | undefined, intro: Introduction): string[] {
  const resources = intro.capabilities['resources'] as { subscribe?: unknown } | undefined;
  const asked = (params?.['notifications'] as { resourceSubscriptions?: unknown } | undefined)?.resourceSubscriptions;
  if (resources?.subscribe !== true || !Array.isArray(asked)) return [];
  return asked.filter((uri): uri is string => typeof uri === 'string');
}

/**
 * Who a 2026-07-28 client is, for its place in the per-client queues: the
 * hash of its credentials, and the name its envelope's clientInfo gives
 * (apiary's endpoint token is one for every client of the machine, so the
 * token alone would put them all in one queue). Not a security boundary: a
 * client that renames itself per request gets no more than 2025 clients
 * that open many sessions.
 */
function shareOf(principal: string, params: Record<string, unknown> | undefined): string {
  const info = (params?.['_meta'] as Record<string, unknown> | undefined)?.[`${ENVELOPE_PREFIX}clientInfo`];
  const name = (info as { name?: unknown } | undefined)?.name;
  return `modern:${principal}:${typeof name === 'string' ? name : ''}`;
}

/** -32022, listing both revisions apiary speaks. */
function unsupported(res: ServerResponse, id: Id | null, requested: string | undefined): void {
  writeJson(res, 400, {
    jsonrpc: '2.0',
    id,
    error: { code: ModernErrorCodes.UnsupportedProtocolVersion, message: `Unsupported protocol version${requested ? `: ${requested}` : ''}`, data: { supported: SUPPORTED_VERSIONS, ...(requested ? { requested } : {}) } },
  });
}

function requestedVersion(req: IncomingMessage, body: unknown): string | undefined {
  const meta = (body as { params?: { _meta?: Record<string, unknown> } } | null)?.params?._meta;
  const claimed = meta?.[`${ENVELOPE_PREFIX}protocolVersion`];
  if (typeof claimed === 'string') return claimed;
  return header(req, 'mcp-protocol-version');
}

function idOf(body: unknown): Id | null {
  const id = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as { id?: unknown }).id : undefined;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}

function writeJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

/** The SDK's answer, with both revisions listed where it lists only the modern one (discover, -32022); a stream goes out as it comes. */
async function writeResponse(res: ServerResponse, response: Response): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, key) => {
    if (key !== 'content-length') headers[key] = value;
  });
  if (response.headers.get('content-type')?.includes('text/event-stream') && response.body !== null) return writeStream(res, response.status, headers, response.body);
  const text = await response.text();
  res.writeHead(response.status, headers).end(response.headers.get('content-type')?.includes('application/json') ? withBothVersions(text) : text);
}

/**
 * An event stream (a listen subscription, a call's progress) written frame
 * by frame: it may stay open for as long as the client listens. The client
 * gone, the stream is cancelled, which ends the subscription at the SDK.
 */
async function writeStream(res: ServerResponse, status: number, headers: Record<string, string>, body: ReadableStream<Uint8Array>): Promise<void> {
  res.writeHead(status, headers);
  res.flushHeaders();
  const reader = body.getReader();
  res.on('close', () => void reader.cancel().catch(() => undefined));
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || res.destroyed) break;
      res.write(value);
    }
  } catch {
    // The stream broke (the endpoint closing): the client sees its end.
  }
  res.end();
}

function withBothVersions(text: string): string {
  let body: { result?: Record<string, unknown>; error?: { code?: number; data?: Record<string, unknown> } };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    return text;
  }
  if (Array.isArray(body?.result?.['supportedVersions'])) body.result['supportedVersions'] = SUPPORTED_VERSIONS;
  else if (body?.error?.code === ModernErrorCodes.UnsupportedProtocolVersion) body.error.data = { ...body.error.data, supported: SUPPORTED_VERSIONS };
  else return text;
  return JSON.stringify(body);
}
