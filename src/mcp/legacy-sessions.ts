/**
 * 2025 clients at the proxy of an HTTP server that speaks 2026-07-28. Such a
 * server has no sessions, no initialize and no server-to-client requests
 * (a 2025 client's initialize passed through to it is refused), so apiary
 * holds the 2025 session itself: the HttpEndpoint's 2025 leg serves the
 * client over this host, and each of its requests goes to the server with
 * the SDK v2 client (pinned to 2026-07-28, declaring the client's own
 * capabilities in the envelope). When the server asks for input mid-call
 * (`input_required`), its questions go to the client as the
 * server-to-client requests it understands, and the request is sent again
 * with the answers (mrtr.ts). spec.tools applies as on the proxy's other
 * paths.
 */
import { randomUUID } from 'node:crypto';
import { Client, ProtocolError, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod';
import { headerValueFlaw } from '../api/remote.js';
import { messageOf } from '../errors.js';
import { DEFAULT_CALL_TIMEOUT_MS } from './aggregate.js';
import type { Deliver } from './bridge.js';
import { MODERN_PROTOCOL_VERSION } from './era.js';
import { ErrorCodes, errorResponse, isNotification, isRequest, isResponse, type Id, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse } from './jsonrpc.js';
import type { ListKind } from './list-watch.js';
import type { SessionHost } from './modern.js';
import { withInputAnswered, type InputAsk } from './mrtr.js';
import { refuseFilteredCall, withExposedTools, type ToolFilter } from './tool-filter.js';
import { toolsListed, type SessionHooks, type ToolsListed, type UpstreamTarget } from './upstream-sessions.js';
import { fetchWithOwnSignal } from './own-signal-fetch.js';

interface LegacySession {
  deliver: Deliver;
  /** What the client declared at initialize: the server may ask only for these. */
  capabilities: Record<string, unknown>;
  client?: Client;
  /** Its requests being answered, by its id: aborted by its cancellation. */
  open: Map<Id, AbortController>;
  /** The server's questions out at the client, by the id the client was given. */
  asks: Map<string, (answer: JsonRpcResponse) => void>;
}

/** Any result, as the server gave it: apiary passes results on, it does not validate them. */
const ANY_RESULT = z.looseObject({});

export class LegacySessions implements SessionHost {
  readonly #target: () => UpstreamTarget;
  readonly #filter: () => ToolFilter;
  readonly #sessions = new Map<string, LegacySession>();
  /** The server's name, for messages (its address when unnamed). */
  readonly #name: string | undefined;
  /** Each message of the server's on its way to the client: the gateway takes its secret values out. */
  readonly #redact: (message: JsonRpcMessage) => JsonRpcMessage;
  #nextAsk = 1;

  readonly #onToolsListed: ToolsListed | undefined;

  constructor(target: () => UpstreamTarget, filter: () => ToolFilter, name?: string, hooks: SessionHooks = {}) {
    this.#target = target;
    this.#filter = filter;
    this.#name = name;
    this.#redact = hooks.redact ?? ((m) => m);
    this.#onToolsListed = hooks.onToolsListed;
  }

  /** Everything a session delivers (answers, progress, the server's questions) is redacted on the way. */
  openSession(deliver: Deliver): string {
    const id = randomUUID();
    this.#sessions.set(id, { deliver: (message, inReplyTo) => deliver(this.#redact(message), inReplyTo), capabilities: {}, open: new Map(), asks: new Map() });
    return id;
  }

  /** What the client sees of a list changed (the proxy's spec.tools, the server's own news): every session hears it. */
  listChanged(kind: ListKind): void {
    for (const session of this.#sessions.values()) session.deliver({ jsonrpc: '2.0', method: `notifications/${kind}/list_changed` });
  }

  hasSession(id: string): boolean {
    return this.#sessions.has(id);
  }

  /** The client is gone: what it has in flight stops (the server hears of it by the closed requests), and so does its client with the server. */
  closeSession(id: string): void {
    const session = this.#sessions.get(id);
    if (session === undefined) return;
    this.#sessions.delete(id);
    for (const abort of session.open.values()) abort.abort('the client closed its session');
    session.open.clear();
    for (const answer of session.asks.values()) answer(errorResponse(null, ErrorCodes.InternalError, 'the client closed its session'));
    session.asks.clear();
    void session.client?.close().catch(() => undefined);
  }

  /** A request is answered in its own time (the endpoint does not wait for it), so a client's calls run side by side. */
  fromClient(id: string, message: JsonRpcMessage): Promise<void> {
    const session = this.#sessions.get(id);
    if (session === undefined) return Promise.resolve();
    if (isRequest(message)) void this.#serve(id, session, message);
    else if (isResponse(message)) this.#answered(session, message);
    else if (isNotification(message) && message.method === 'notifications/cancelled') session.open.get(message.params?.['requestId'] as Id)?.abort('cancelled by the client');
    return Promise.resolve();
  }

  async #serve(id: string, session: LegacySession, request: JsonRpcRequest): Promise<void> {
    const abort = new AbortController();
    session.open.set(request.id, abort);
    const answer = await this.#answer(session, request, abort.signal).catch((err: unknown) => errorResponse(request.id, ErrorCodes.InternalError, messageOf(err)));
    if (session.open.get(request.id) === abort) session.open.delete(request.id);
    // Cancelled (or the client gone): it has forgotten the request, and is not answered.
    if (answer === undefined || abort.signal.aborted || this.#sessions.get(id) !== session) return;
    session.deliver({ ...answer, id: request.id }, request.id);
  }

  async #answer(session: LegacySession, request: JsonRpcRequest, signal: AbortSignal): Promise<JsonRpcResponse | undefined> {
    if (request.method === 'initialize') return this.#connect(session, request);
    // A 2026-07-28 server has no ping: apiary answers for it.
    if (request.method === 'ping') return { jsonrpc: '2.0', id: request.id, result: {} };
    const params = request.params ?? {};
    const refused = request.method === 'tools/call' ? refuseFilteredCall(this.#filter(), request.id, params['name']) : undefined;
    if (refused !== undefined) return refused;
    const client = session.client;
    if (client === undefined) return errorResponse(request.id, ErrorCodes.InvalidRequest, 'no session with the server: initialize first');
    const answer = await withInputAnswered(params, {
      server: this.#name ?? this.#target().label,
      capabilities: session.capabilities,
      send: (sent) => send(client, request, sent, signal, progressTo(session, request)),
      ask: (ask) => this.#ask(session, request.id, ask, signal),
      signal,
    });
    if (answer === undefined || request.method !== 'tools/list') return answer;
    const redacted = this.#redact(answer) as JsonRpcResponse;
    toolsListed(this.#onToolsListed, params, redacted);
    return withExposedTools(this.#filter(), redacted) ?? redacted;
  }

  /** One of the server's questions, put to the client beside the call it serves; withdrawn (notifications/cancelled) if the call stops first. */
  #ask(session: LegacySession, callId: Id, ask: InputAsk, signal: AbortSignal): Promise<JsonRpcResponse> {
    const id = `apiary-${this.#nextAsk++}`;
    return new Promise((resolve) => {
      const withdraw = (): void => {
        if (!session.asks.delete(id)) return;
        session.deliver({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: String(signal.reason ?? 'the call stopped') } });
        resolve(errorResponse(null, ErrorCodes.InternalError, 'withdrawn'));
      };
      session.asks.set(id, (answer) => {
        signal.removeEventListener('abort', withdraw);
        resolve(answer);
      });
      signal.addEventListener('abort', withdraw, { once: true });
      session.deliver({ jsonrpc: '2.0', id, method: ask.method, params: ask.params }, callId);
    });
  }

  #answered(session: LegacySession, response: JsonRpcResponse): void {
    const key = String(response.id);
    const answer = session.asks.get(key);
    if (answer === undefined) return;
    session.asks.delete(key);
    answer(response);
  }

  /**
   * The client's initialize: a client of apiary's with the server, declaring
   * the client's capabilities, answered with the server's own introduction
   * in the 2025 revision the client asked for.
   */
  async #connect(session: LegacySession, request: JsonRpcRequest): Promise<JsonRpcResponse> {
    const target = this.#target();
    for (const [name, value] of Object.entries(target.headers)) {
      const flaw = headerValueFlaw(value);
      if (flaw !== undefined) return errorResponse(request.id, ErrorCodes.ServerUnavailable, `the header ${name} that spec.remote.headers sets holds ${flaw} and cannot be sent`);
    }
    const params = request.params ?? {};
    session.capabilities = isObject(params['capabilities']) ? params['capabilities'] : {};
    const clientInfo = isObject(params['clientInfo']) ? (params['clientInfo'] as { name: string; version: string }) : { name: 'apiary', version: '0' };
    const client = new Client(clientInfo, { capabilities: session.capabilities, versionNegotiation: { mode: { pin: MODERN_PROTOCOL_VERSION } } });
    try {
      await client.connect(new StreamableHTTPClientTransport(target.url, { requestInit: { headers: target.headers }, fetch: target.fetch ?? fetchWithOwnSignal }));
    } catch (err) {
      await client.close().catch(() => undefined);
      return errorResponse(request.id, ErrorCodes.ServerUnavailable, `the server at ${target.label} did not answer server/discover: ${messageOf(err)}`);
    }
    void session.client?.close().catch(() => undefined);
    session.client = client;
    const asked = params['protocolVersion'];
    const protocolVersion = typeof asked === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(asked) ? asked : LATEST_PROTOCOL_VERSION;
    const instructions = client.getInstructions();
    return {
      jsonrpc: '2.0',
      id: request.id,
      result: { protocolVersion, capabilities: client.getServerCapabilities() ?? {}, serverInfo: client.getServerVersion() ?? { name: target.label, version: '0' }, ...(instructions !== undefined ? { instructions } : {}) },
    };
  }
}

/** One round of the request at the server; `input_required` comes back as a result, for the loop to answer. */
async function send(client: Client, request: JsonRpcRequest, params: Record<string, unknown>, signal: AbortSignal, onprogress?: (progress: Record<string, unknown>) => void): Promise<JsonRpcResponse> {
  try {
    const options = { timeout: DEFAULT_CALL_TIMEOUT_MS, signal, allowInputRequired: true, ...(onprogress !== undefined ? { onprogress } : {}) };
    const result = await client.request({ method: request.method, params }, ANY_RESULT, options);
    return { jsonrpc: '2.0', id: request.id, result };
  } catch (err) {
    if (err instanceof ProtocolError) return { jsonrpc: '2.0', id: request.id, error: { code: err.code, message: err.message, ...(err.data !== undefined ? { data: err.data } : {}) } };
    return errorResponse(request.id, ErrorCodes.ServerUnavailable, `${request.method} did not reach the server: ${messageOf(err)}`);
  }
}

/** The SDK client uses a token of its own: progress goes back to the client under the token it gave, beside its request. */
function progressTo(session: LegacySession, request: JsonRpcRequest): ((progress: Record<string, unknown>) => void) | undefined {
  const token = (request.params?.['_meta'] as Record<string, unknown> | undefined)?.['progressToken'];
  if (typeof token !== 'string' && typeof token !== 'number') return undefined;
  return (progress) => session.deliver({ jsonrpc: '2.0', method: 'notifications/progress', params: { ...progress, progressToken: token } }, request.id);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
