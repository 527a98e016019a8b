/**
 * One MCP server made of every Ready one: tools and prompts named
 * `<server>__<name>`, resources listed with their server, calls routed to the
 * server the name says. It talks to each stdio server through that
 * server's own Bridge, as one more client session, so the bridge's rules
 * (spec.tools, fairness, readiness) hold here too; an HTTP server through
 * the gateway's session with it, behind the same spec.tools. Clients hear `list_changed` when a
 * server comes, goes, or changes what it offers.
 */
import { randomUUID } from 'node:crypto';
import { LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import { Bridge, type Deliver, type ToolSummary } from './bridge.js';
import { ErrorCodes, errorResponse, isNotification, isRequest, isResponse, type Id, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse } from './jsonrpc.js';

/** Between a server's name and its tool's: a DNS-1123 name never holds two underscores, so the first pair splits them. */
export const SEPARATOR = '__';
const CALL_TIMEOUT_MS = 120_000;
const LIST_KINDS = ['tools', 'prompts', 'resources'] as const;

/** A Ready server that is not a bridge (an HTTP server): asked directly, spec.tools already applied. */
export interface RemoteMember {
  request(method: string, params: Record<string, unknown>, timeoutMs: number): Promise<JsonRpcResponse>;
  /** What it offers now, to notice a change. */
  tools(): readonly ToolSummary[];
}

export type AggregateMember = Bridge | RemoteMember;

/** What the aggregate needs of the gateway: the servers whose MCP session is ready now. */
export interface AggregateSource {
  readyMembers(): Map<string, AggregateMember>;
}

interface Member {
  session: string;
  pending: Map<number, (response: JsonRpcResponse) => void>;
}

export class Aggregate {
  readonly #source: AggregateSource;
  readonly #version: string;
  readonly #sessions = new Map<string, Deliver>();
  /** Our own session at each member's bridge. */
  readonly #members = new Map<Bridge, Member>();
  /** Resource URI -> the server that listed it (resources keep their URIs). */
  readonly #resourceOwners = new Map<string, string>();
  #nextId = 1;
  #signature = '';
  #notifyTimer: NodeJS.Timeout | undefined;

  constructor(source: AggregateSource, version: string) {
    this.#source = source;
    this.#version = version;
  }

  // ---- the client side (HttpEndpoint calls these) ----

  openSession(deliver: Deliver): string {
    const id = randomUUID();
    this.#sessions.set(id, deliver);
    return id;
  }

  hasSession(id: string): boolean {
    return this.#sessions.has(id);
  }

  closeSession(id: string): void {
    this.#sessions.delete(id);
  }

  async fromClient(sessionId: string, message: JsonRpcMessage): Promise<void> {
    const deliver = this.#sessions.get(sessionId);
    if (deliver === undefined || !isRequest(message)) return;
    const answer = await this.#answer(message).catch((err: unknown) => errorResponse(message.id, ErrorCodes.InternalError, err instanceof Error ? err.message : String(err)));
    deliver(answer, message.id);
  }

  /** Something about the servers may have changed: tell clients their lists changed, once per burst, if they did. */
  changed(): void {
    for (const [bridge, member] of this.#members) if (!bridge.hasSession(member.session)) this.#members.delete(bridge);
    const signature = [...this.#source.readyMembers()]
      .map(([name, member]) => `${name}:${JSON.stringify(member instanceof Bridge ? (member.status().tools ?? []) : member.tools())}`)
      .sort()
      .join('|');
    if (signature === this.#signature) return;
    this.#signature = signature;
    this.#notifyTimer ??= setTimeout(() => {
      this.#notifyTimer = undefined;
      for (const kind of LIST_KINDS) this.#broadcast({ jsonrpc: '2.0', method: `notifications/${kind}/list_changed` });
    }, 50);
  }

  close(): void {
    clearTimeout(this.#notifyTimer);
    for (const [bridge, member] of this.#members) bridge.closeSession(member.session);
    this.#members.clear();
    this.#sessions.clear();
  }

  #broadcast(message: JsonRpcMessage): void {
    for (const deliver of this.#sessions.values()) deliver(message);
  }

  async #answer(request: JsonRpcRequest): Promise<JsonRpcResponse> {
    const params = request.params ?? {};
    switch (request.method) {
      case 'initialize': {
        const asked = params['protocolVersion'];
        const protocolVersion = typeof asked === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(asked) ? asked : LATEST_PROTOCOL_VERSION;
        return ok(request.id, {
          protocolVersion,
          capabilities: { tools: { listChanged: true }, prompts: { listChanged: true }, resources: { listChanged: true } },
          serverInfo: { name: 'apiary', version: this.#version },
          instructions: `Every Ready server apiary runs, in one place: tools and prompts are named <server>${SEPARATOR}<name>.`,
        });
      }
      case 'ping':
        return ok(request.id, {});
      case 'tools/list':
        return ok(request.id, { tools: await this.#gather('tools/list', 'tools', (server, t) => prefixed(server, t, 'name')) });
      case 'prompts/list':
        return ok(request.id, { prompts: await this.#gather('prompts/list', 'prompts', (server, p) => prefixed(server, p, 'name')) });
      case 'resources/list':
        return ok(request.id, {
          resources: await this.#gather('resources/list', 'resources', (server, r) => {
            if (typeof r['uri'] === 'string') this.#resourceOwners.set(r['uri'], server);
            return { ...r, name: `${server}${SEPARATOR}${String(r['name'] ?? r['uri'])}` };
          }),
        });
      case 'resources/templates/list':
        return ok(request.id, { resourceTemplates: [] });
      case 'tools/call':
      case 'prompts/get':
        return this.#route(request, String(params['name'] ?? ''));
      case 'resources/read': {
        const server = this.#resourceOwners.get(String(params['uri'] ?? ''));
        if (server === undefined) return errorResponse(request.id, ErrorCodes.InvalidParams, `no Ready server lists resource "${String(params['uri'])}" (list resources first)`);
        return this.#call(server, request.method, params, request.id);
      }
      default:
        return errorResponse(request.id, ErrorCodes.MethodNotFound, `${request.method} is not served by apiary's aggregate endpoint; use the server's own URL`);
    }
  }

  /** A call on `<server>__<name>` goes to that server as `<name>`. */
  async #route(request: JsonRpcRequest, qualified: string): Promise<JsonRpcResponse> {
    const cut = qualified.indexOf(SEPARATOR);
    if (cut <= 0) return errorResponse(request.id, ErrorCodes.InvalidParams, `"${qualified}" names no server: aggregate names are <server>${SEPARATOR}<name>`);
    const server = qualified.slice(0, cut);
    return this.#call(server, request.method, { ...request.params, name: qualified.slice(cut + SEPARATOR.length) }, request.id);
  }

  async #call(server: string, method: string, params: Record<string, unknown>, id: Id): Promise<JsonRpcResponse> {
    const member = this.#source.readyMembers().get(server);
    if (member === undefined) return errorResponse(id, ErrorCodes.ServerUnavailable, `server "${server}" is not Ready (or not known to apiary)`);
    const answer = await this.#request(member, method, params);
    return { ...answer, id };
  }

  /** Each Ready member's list, its entries renamed; a member that fails is left out, not fatal. */
  async #gather(method: string, field: string, rename: (server: string, item: Record<string, unknown>) => Record<string, unknown>): Promise<Record<string, unknown>[]> {
    const lists = await Promise.all(
      [...this.#source.readyMembers()].map(async ([server, member]) => {
        const answer = await this.#request(member, method, {}).catch(() => undefined);
        const items = (answer as { result?: Record<string, unknown> } | undefined)?.result?.[field];
        return Array.isArray(items) ? items.map((item) => rename(server, item as Record<string, unknown>)) : [];
      }),
    );
    return lists.flat();
  }

  #member(bridge: Bridge): Member {
    let member = this.#members.get(bridge);
    if (member !== undefined && bridge.hasSession(member.session)) return member;
    const pending = new Map<number, (response: JsonRpcResponse) => void>();
    const session = bridge.openSession((message) => {
      if (isResponse(message) && typeof message.id === 'number') {
        pending.get(message.id)?.(message);
        pending.delete(message.id);
      } else if (isNotification(message) && message.method.endsWith('/list_changed')) {
        this.#signature = '';
        this.changed();
      }
    });
    member = { session, pending };
    this.#members.set(bridge, member);
    return member;
  }

  #request(target: AggregateMember, method: string, params: Record<string, unknown>): Promise<JsonRpcResponse> {
    if (!(target instanceof Bridge)) return target.request(method, params, CALL_TIMEOUT_MS);
    const bridge = target;
    const member = this.#member(bridge);
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        member.pending.delete(id);
        resolve(errorResponse(id, ErrorCodes.InternalError, `${method} got no answer within ${CALL_TIMEOUT_MS / 1000} s`));
      }, CALL_TIMEOUT_MS);
      timer.unref();
      member.pending.set(id, (response) => {
        clearTimeout(timer);
        resolve(response);
      });
      void bridge.fromClient(member.session, { jsonrpc: '2.0', id, method, params });
    });
  }
}

function ok(id: Id, result: Record<string, unknown>): JsonRpcResponse {
  return { jsonrpc: '2.0', id, result } as JsonRpcResponse;
}

function prefixed(server: string, item: Record<string, unknown>, field: string): Record<string, unknown> {
  return { ...item, [field]: `${server}${SEPARATOR}${String(item[field])}` };
}
