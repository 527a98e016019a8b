/**
 * Readiness and liveness for servers that speak HTTP themselves
 * (streamable-http, sse): an MCP client session through the official SDK
 * (v2), retried until the server listens. The client finds the server's era
 * as the SDK's 'auto' negotiation does (server/discover, then initialize for
 * a 2025 server); Ready once that and tools/list succeed; then a periodic
 * liveness check: ping for a 2025 server, server/discover for a modern one
 * (it has no ping). The aggregate endpoint's clients each get a session of
 * their own with the same server (openSession()), in the era found here.
 */
import { Client, ProtocolError, SdkError, SdkErrorCode, SSEClientTransport, StreamableHTTPClientTransport, type ClientCapabilities, type PriorDiscovery } from '@modelcontextprotocol/client';
import * as z from 'zod';
import type { Clock, Timer } from '../util/clock.js';
import { withoutSecrets } from '../api/remote.js';
import { messageOf } from '../errors.js';
import type { MemberRequestHandler, RemoteSession, RemoteSessionOptions } from './aggregate.js';
import { ErrorCodes, errorResponse, type JsonRpcResponse } from './jsonrpc.js';
import { withInputAnswered } from './mrtr.js';
import type { ToolDefinition } from '../api/tool-lock.js';
import { APIARY_CLIENT_INFO, summarizeTools, toolDefinitions, type BridgeStatus, type ToolSummary, type UpstreamState } from './bridge.js';
import type { HealthOptions } from './health.js';
import { fetchWithOwnSignal } from './own-signal-fetch.js';

export interface ProbeOptions {
  url: string;
  /** The server's name, for messages its clients get. */
  name?: string;
  transport: 'streamable-http' | 'sse';
  clock: Clock;
  health: HealthOptions;
  onChange: () => void;
  onUnhealthy: (message: string) => void;
  /** The server said its tool list changed (the probe re-reads it). */
  onToolsChanged?: () => void;
  /** The whole definitions of the tools the server lists, at the handshake and at each re-read (for tools.lock.yaml's pins). */
  onToolDefinitions?: (definitions: ToolDefinition[]) => void;
  /** Headers for every request (a hosted server's, from its manifest). */
  headers?: Record<string, string>;
  /** How requests are sent (a hosted server apiary logs in to: one refresh on a 401); default fetch. */
  fetch?: typeof fetch;
  /** What messages call the server instead of `url` (a hosted server's may hold a secret). */
  label?: string;
  /** Values never to appear in a message (a server's error may quote them). */
  secrets?: readonly string[];
}

export class HttpProbe {
  readonly #opts: ProbeOptions;
  #client: Client | undefined;
  #state: UpstreamState = 'initializing';
  #message: string | undefined = 'waiting for the server to listen';
  #serverInfo: { name: string; version: string } | undefined;
  #protocolVersion: string | undefined;
  #tools: ToolSummary[] | undefined;
  #timer: Timer | undefined;
  #stopped = false;
  /** The client whose listen stream is open: a modern server tells of its list changes only there. */
  #listening: Client | undefined;
  #failures = 0;
  #pid: number;

  constructor(options: ProbeOptions, pid: number) {
    this.#opts = options;
    this.#pid = pid;
    this.#schedule(300);
  }

  get pid(): number {
    return this.#pid;
  }

  status(): BridgeStatus {
    return {
      state: this.#state,
      sessions: 0,
      pid: this.#pid,
      ...(this.#serverInfo ? { serverInfo: this.#serverInfo } : {}),
      ...(this.#protocolVersion ? { protocolVersion: this.#protocolVersion } : {}),
      // Counts come from the tools, through the server's filter (Gateway.view).
      ...(this.#tools !== undefined ? { tools: this.#tools } : {}),
      ...(this.#message ? { message: this.#message } : {}),
    };
  }

  #set(state: UpstreamState, message?: string): void {
    message = message === undefined ? undefined : withoutSecrets(message, this.#opts.secrets ?? []);
    if (this.#state === state && this.#message === message) return;
    this.#state = state;
    this.#message = message;
    this.#opts.onChange();
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = this.#opts.clock.setTimeout(() => void this.#tick(), ms);
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    if (this.#client === undefined) return this.#connect();
    // A listen stream the server ended is opened again at the next liveness check (a server that keeps ending it costs one request a check).
    this.#listen(this.#client);
    // A modern server has no ping (it answers -32601): the cheapest request it must answer is server/discover.
    const modern = this.#client.getProtocolEra() === 'modern';
    try {
      if (modern) await this.#client.discover({ timeout: this.#opts.health.timeoutMs });
      else await this.#client.ping({ timeout: this.#opts.health.timeoutMs });
      this.#failures = 0;
    } catch (err) {
      this.#failures += 1;
      if (this.#failures >= this.#opts.health.failureThreshold) {
        this.#opts.onUnhealthy(withoutSecrets(`${this.#failures} MCP ${modern ? 'liveness checks (server/discover)' : 'pings'} in a row failed (last: ${messageOf(err)})`, this.#opts.secrets ?? []));
        return;
      }
    }
    this.#schedule(this.#opts.health.intervalMs);
  }

  /** A transport to the server, with its headers. */
  #transport(): SSEClientTransport | StreamableHTTPClientTransport {
    const url = new URL(this.#opts.url);
    const init = { ...(this.#opts.headers !== undefined ? { requestInit: { headers: this.#opts.headers } } : {}), fetch: this.#opts.fetch ?? fetchWithOwnSignal };
    return this.#opts.transport === 'sse' ? new SSEClientTransport(url, init) : new StreamableHTTPClientTransport(url, init);
  }

  /**
   * A client in the era this server speaks: found by the SDK's 'auto'
   * negotiation, or given (`prior`, what the probe found) so a session costs
   * no probe. Over the old HTTP+SSE transport only the 2025 era exists.
   */
  #newClient(capabilities: ClientCapabilities): Client {
    const mode = this.#opts.transport === 'sse' ? 'legacy' : 'auto';
    return new Client(APIARY_CLIENT_INFO, { capabilities, versionNegotiation: { mode, probe: { timeoutMs: this.#opts.health.timeoutMs } } });
  }

  /** What the probe found of the server's era, for the sessions opened after it. */
  #prior(): PriorDiscovery | undefined {
    const discover = this.#client?.getDiscoverResult();
    if (this.#client?.getProtocolEra() === 'modern' && discover !== undefined) return { kind: 'modern', discover };
    return this.#client?.getProtocolEra() === 'legacy' ? { kind: 'legacy' } : undefined;
  }

  async #connect(): Promise<void> {
    const client = this.#newClient({});
    const transport = this.#transport();
    let step = 'the handshake (server/discover or initialize)';
    try {
      await client.connect(transport, { timeout: this.#opts.health.timeoutMs });
      const caps = client.getServerCapabilities();
      step = 'tools/list';
      // Not from a cache (a modern list result carries ttlMs): the probe reports what the server says now. Without a cursor
      // the SDK walks every page (up to its listMaxPages): a tool on a later page is pinned and judged as one on the first.
      const listed = caps?.tools ? (await client.listTools(undefined, { timeout: this.#opts.health.timeoutMs, cacheMode: 'bypass' })).tools : [];
      this.#tools = summarizeTools(listed);
      client.setNotificationHandler('notifications/tools/list_changed', async () => {
        const again = await client.listTools(undefined, { timeout: this.#opts.health.timeoutMs, cacheMode: 'bypass' }).catch(() => undefined);
        if (again !== undefined) {
          this.#tools = summarizeTools(again.tools);
          this.#opts.onToolDefinitions?.(toolDefinitions(again.tools));
        }
        this.#opts.onChange();
        this.#opts.onToolsChanged?.();
      });
      const info = client.getServerVersion();
      if (info) this.#serverInfo = { name: info.name, version: info.version };
      this.#protocolVersion = client.getNegotiatedProtocolVersion();
      if (this.#stopped) {
        await client.close().catch(() => undefined);
        return;
      }
      // Judged before Ready: a drifted tool is withheld from the first client on.
      this.#opts.onToolDefinitions?.(toolDefinitions(listed));
      this.#client = client;
      this.#listen(client);
      this.#set('ready');
      this.#schedule(this.#opts.health.intervalMs);
    } catch (err) {
      await client.close().catch(() => undefined);
      // A step that timed out is named, with the timeout, as the stdio bridge names it.
      const why = isTimeout(err) ? `no answer to ${step} within ${this.#opts.health.timeoutMs / 1000}s (healthCheck.timeoutSeconds)` : connectError(err);
      this.#set('initializing', `waiting for the MCP handshake at ${this.#opts.label ?? this.#opts.url} (${why})`);
      this.#schedule(500);
    }
  }

  /**
   * A session of one aggregate client's with the server: it declares that
   * client's capabilities, and the server's requests on it (sampling,
   * elicitation, roots) are answered by `onRequest`, that is by that client:
   * a 2025 server's as requests on the session, a 2026-07-28 server's
   * questions in `input_required` one by one (mrtr.ts) before the request is
   * sent again with the answers. `modern`: the client speaks 2026-07-28 and
   * gets `input_required` as it is.
   */
  async openSession(capabilities: Record<string, unknown>, onRequest: MemberRequestHandler, options: RemoteSessionOptions = {}): Promise<RemoteSession> {
    const client = this.#newClient(capabilities as ClientCapabilities);
    const onResourceUpdated = options.onResourceUpdated;
    if (onResourceUpdated !== undefined) client.setNotificationHandler('notifications/resources/updated', (n) => onResourceUpdated(n.params.uri));
    client.fallbackRequestHandler = async (request, ctx) => {
      const answer = await onRequest(request.method, request.params ?? {}, ctx.mcpReq.signal);
      // Thrown as the client said it (an McpError would put its own prefix before the message).
      if (answer.error !== undefined) throw Object.assign(new Error(answer.error.message), { code: answer.error.code, ...(answer.error.data !== undefined ? { data: answer.error.data } : {}) });
      return answer.result;
    };
    const transport = this.#transport();
    const prior = this.#prior();
    try {
      await client.connect(transport, { timeout: this.#opts.health.timeoutMs, ...(prior !== undefined ? { prior } : {}) });
    } catch (err) {
      await client.close().catch(() => undefined);
      // A hosted server's error may echo its URL or headers: what reaches an aggregate client carries no secret.
      throw new Error(withoutSecrets(connectError(err), this.#opts.secrets ?? []));
    }
    const server = this.#opts.name ?? this.#opts.label ?? this.#opts.url;
    return {
      request: async (method, params, timeoutMs, signal = new AbortController().signal, onProgress) => {
        if (options.modern === true) return requestOver(client, method, params, timeoutMs, this.#opts.secrets ?? [], signal, onProgress);
        const answer = await withInputAnswered(params, {
          server,
          capabilities,
          send: (sent) => requestOver(client, method, sent, timeoutMs, this.#opts.secrets ?? [], signal, onProgress),
          ask: (ask) => onRequest(ask.method, ask.params, signal),
          signal,
        });
        return answer ?? errorResponse(0, ErrorCodes.InternalError, String(signal.reason ?? 'cancelled'));
      },
      close: async () => {
        // The server may free what it keeps for the session now, not when it expires.
        if (transport instanceof StreamableHTTPClientTransport) await transport.terminateSession().catch(() => undefined);
        await client.close().catch(() => undefined);
      },
    };
  }

  /**
   * A modern server's tools/list_changed comes only on a `subscriptions/listen`
   * stream (a 2025 server's comes on its session): opened when the server
   * says its tools change, arriving at the handler set in #connect.
   */
  #listen(client: Client): void {
    if (this.#listening === client || client.getProtocolEra() !== 'modern' || client.getServerCapabilities()?.tools?.listChanged !== true) return;
    this.#listening = client;
    const lost = (): void => {
      if (this.#listening === client) this.#listening = undefined;
    };
    client.listen({ toolsListChanged: true }).then((subscription) => void subscription.closed.then(lost, lost), lost);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    await this.#client?.close().catch(() => undefined);
    this.#client = undefined;
  }
}

function isTimeout(err: unknown): boolean {
  return err instanceof SdkError && err.code === SdkErrorCode.RequestTimeout;
}

/**
 * Why a connect failed, with what the server said: the SDK's HTTP error
 * names the status only, and the body (an auth error page) is what tells a
 * person what to fix. Callers take secrets out.
 */
function connectError(err: unknown): string {
  const text = (err as { data?: { text?: unknown } } | undefined)?.data?.text;
  const message = messageOf(err);
  return typeof text === 'string' && text.trim() !== '' && !message.includes(text.trim()) ? `${message}: ${text.trim().slice(0, 300)}` : message;
}

/** Any result: apiary passes the server's answers on, it does not read them here. */
const ANY_RESULT = z.looseObject({});

/** One request over an SDK client session; errors (a timeout, a cancellation) come back as JSON-RPC errors. */
async function requestOver(
  client: Client,
  method: string,
  params: Record<string, unknown>,
  timeoutMs: number,
  secrets: readonly string[],
  signal?: AbortSignal,
  onProgress?: (progress: Record<string, unknown>) => void,
): Promise<JsonRpcResponse> {
  try {
    // input_required comes back as a result: the caller asks the client, and sends the request again.
    const options = { timeout: timeoutMs, allowInputRequired: true, ...(signal !== undefined ? { signal } : {}), ...(onProgress !== undefined ? { onprogress: (p: Record<string, unknown>) => onProgress(p) } : {}) };
    const result = await client.request({ method, params }, ANY_RESULT, options);
    return { jsonrpc: '2.0', id: 0, result } as JsonRpcResponse;
  } catch (err) {
    return errorResponse(0, err instanceof ProtocolError ? err.code : ErrorCodes.InternalError, withoutSecrets(messageOf(err), secrets));
  }
}
