/**
 * Readiness and liveness for servers that speak HTTP themselves
 * (streamable-http, sse): an MCP client session through the official SDK,
 * retried until the server listens; Ready once initialize and tools/list
 * succeed; then a periodic ping. The same session carries the aggregate
 * endpoint's requests to the server (request()).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError, ResultSchema, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Clock, Timer } from '../controller/clock.js';
import { messageOf } from '../errors.js';
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
        this.#opts.onUnhealthy(`${this.#failures} MCP pings in a row failed (last: ${messageOf(err)})`);
        return;
      }
    }
    this.#schedule(this.#opts.health.intervalMs);
  }

  async #connect(): Promise<void> {
    const url = new URL(this.#opts.url);
    const client = new Client(APIARY_CLIENT_INFO, { capabilities: {} });
    const init = this.#opts.headers !== undefined ? { requestInit: { headers: this.#opts.headers } } : {};
    const transport = this.#opts.transport === 'sse' ? new SSEClientTransport(url, init) : new StreamableHTTPClientTransport(url, init);
    try {
      await client.connect(transport, { timeout: this.#opts.health.timeoutMs });
      const caps = client.getServerCapabilities();
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
      this.#set('initializing', `waiting for the MCP handshake at ${this.#opts.url} (${messageOf(err)})`);
      this.#schedule(500);
    }
  }

  /**
   * One request to the server over the probe's session (for the aggregate
   * endpoint); errors come back as JSON-RPC errors. `signal` aborted: the SDK
   * tells the server the request is cancelled.
   */
  async request(method: string, params: Record<string, unknown>, timeoutMs: number, signal?: AbortSignal): Promise<JsonRpcResponse> {
    const client = this.#client;
    if (client === undefined || this.#state !== 'ready') return errorResponse(0, ErrorCodes.ServerUnavailable, `the server is not ready (${this.#message ?? this.#state})`);
    try {
      const result = await client.request({ method, params } as never, ResultSchema, { timeout: timeoutMs, ...(signal !== undefined ? { signal } : {}) });
      return { jsonrpc: '2.0', id: 0, result } as JsonRpcResponse;
    } catch (err) {
      return errorResponse(0, err instanceof McpError ? err.code : ErrorCodes.InternalError, err instanceof McpError ? err.message.replace(/^MCP error -?\d+: /, '') : messageOf(err));
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    await this.#client?.close().catch(() => undefined);
    this.#client = undefined;
  }
}
