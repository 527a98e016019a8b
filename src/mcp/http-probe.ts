/**
 * Readiness and liveness for servers that speak HTTP themselves
 * (streamable-http, sse): an MCP client session through the official SDK,
 * retried until the server listens; Ready once initialize and tools/list
 * succeed; then a periodic ping. The aggregate endpoint's clients each get
 * a session of their own with the same server (openSession()).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError, ResultSchema, ToolListChangedNotificationSchema, type ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import type { Clock, Timer } from '../util/clock.js';
import { withoutSecrets } from '../api/remote.js';
import { messageOf } from '../errors.js';
import type { MemberRequestHandler, RemoteSession } from './aggregate.js';
import { ErrorCodes, errorResponse, type JsonRpcResponse } from './jsonrpc.js';
import { APIARY_CLIENT_INFO, summarizeTools, type BridgeStatus, type ToolSummary, type UpstreamState } from './bridge.js';
import type { HealthOptions } from './health.js';

export interface ProbeOptions {
  url: string;
  transport: 'streamable-http' | 'sse';
  clock: Clock;
  health: HealthOptions;
  onChange: () => void;
  onUnhealthy: (message: string) => void;
  /** The server said its tool list changed (the probe re-reads it). */
  onToolsChanged?: () => void;
  /** Headers for every request (a hosted server's, from its manifest). */
  headers?: Record<string, string>;
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
    try {
      await this.#client.ping({ timeout: this.#opts.health.timeoutMs });
      this.#failures = 0;
    } catch (err) {
      this.#failures += 1;
      if (this.#failures >= this.#opts.health.failureThreshold) {
        this.#opts.onUnhealthy(withoutSecrets(`${this.#failures} MCP pings in a row failed (last: ${messageOf(err)})`, this.#opts.secrets ?? []));
        return;
      }
    }
    this.#schedule(this.#opts.health.intervalMs);
  }

  /** A transport to the server, with its headers. */
  #transport(): SSEClientTransport | StreamableHTTPClientTransport {
    const url = new URL(this.#opts.url);
    const init = this.#opts.headers !== undefined ? { requestInit: { headers: this.#opts.headers } } : {};
    return this.#opts.transport === 'sse' ? new SSEClientTransport(url, init) : new StreamableHTTPClientTransport(url, init);
  }

  async #connect(): Promise<void> {
    const client = new Client(APIARY_CLIENT_INFO, { capabilities: {} });
    const transport = this.#transport();
    let step = 'initialize';
    try {
      await client.connect(transport, { timeout: this.#opts.health.timeoutMs });
      const caps = client.getServerCapabilities();
      step = 'tools/list';
      const listed = caps?.tools ? (await client.listTools(undefined, { timeout: this.#opts.health.timeoutMs })).tools : [];
      this.#tools = summarizeTools(listed);
      client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
        const again = await client.listTools(undefined, { timeout: this.#opts.health.timeoutMs }).catch(() => undefined);
        if (again !== undefined) this.#tools = summarizeTools(again.tools);
        this.#opts.onChange();
        this.#opts.onToolsChanged?.();
      });
      const info = client.getServerVersion();
      if (info) this.#serverInfo = { name: info.name, version: info.version };
      this.#protocolVersion = (transport as { protocolVersion?: string }).protocolVersion;
      if (this.#stopped) {
        await client.close().catch(() => undefined);
        return;
      }
      this.#client = client;
      this.#set('ready');
      this.#schedule(this.#opts.health.intervalMs);
    } catch (err) {
      await client.close().catch(() => undefined);
      // A step that timed out is named, with the timeout, as the stdio bridge names it.
      const why = isTimeout(err) ? `no answer to ${step} within ${this.#opts.health.timeoutMs / 1000}s (healthCheck.timeoutSeconds)` : messageOf(err);
      this.#set('initializing', `waiting for the MCP handshake at ${this.#opts.label ?? this.#opts.url} (${why})`);
      this.#schedule(500);
    }
  }

  /**
   * A session of one aggregate client's with the server: it declares that
   * client's capabilities, and the server's requests on it (sampling,
   * elicitation, roots) are answered by `onRequest`, that is by that client.
   */
  async openSession(capabilities: Record<string, unknown>, onRequest: MemberRequestHandler): Promise<RemoteSession> {
    const client = new Client(APIARY_CLIENT_INFO, { capabilities: capabilities as ClientCapabilities });
    client.fallbackRequestHandler = async (request, extra) => {
      const answer = await onRequest(request.method, request.params ?? {}, extra.signal);
      // Thrown as the client said it (an McpError would put its own prefix before the message).
      if (answer.error !== undefined) throw Object.assign(new Error(answer.error.message), { code: answer.error.code, ...(answer.error.data !== undefined ? { data: answer.error.data } : {}) });
      return answer.result;
    };
    const transport = this.#transport();
    try {
      await client.connect(transport, { timeout: this.#opts.health.timeoutMs });
    } catch (err) {
      await client.close().catch(() => undefined);
      // A hosted server's error may echo its URL or headers: what reaches an aggregate client carries no secret.
      throw new Error(withoutSecrets(err instanceof McpError ? err.message.replace(/^MCP error -?\d+: /, '') : messageOf(err), this.#opts.secrets ?? []));
    }
    return {
      request: (method, params, timeoutMs, signal, onProgress) => requestOver(client, method, params, timeoutMs, this.#opts.secrets ?? [], signal, onProgress),
      close: async () => {
        // The server may free what it keeps for the session now, not when it expires.
        if (transport instanceof StreamableHTTPClientTransport) await transport.terminateSession().catch(() => undefined);
        await client.close().catch(() => undefined);
      },
    };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    await this.#client?.close().catch(() => undefined);
    this.#client = undefined;
  }
}

function isTimeout(err: unknown): boolean {
  return err instanceof McpError && err.code === (ErrorCode.RequestTimeout as number);
}

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
    const options = { timeout: timeoutMs, ...(signal !== undefined ? { signal } : {}), ...(onProgress !== undefined ? { onprogress: (p: Record<string, unknown>) => onProgress(p) } : {}) };
    const result = await client.request({ method, params } as never, ResultSchema, options);
    return { jsonrpc: '2.0', id: 0, result } as JsonRpcResponse;
  } catch (err) {
    const message = err instanceof McpError ? err.message.replace(/^MCP error -?\d+: /, '') : messageOf(err);
    return errorResponse(0, err instanceof McpError ? err.code : ErrorCodes.InternalError, withoutSecrets(message, secrets));
  }
}
