/**
 * What every endpoint enforces per caller (issue 26, items 3, 4 and 6), in
 * one place: which tools, prompts and resources a caller sees in a list
 * answer, whether a call may go on (policy, then rate limit), the audit
 * record and the telemetry span of each call, and which caller a 2025
 * session belongs to. spec.tools still filters per server, before this.
 *
 * Two uses, one set of helpers over the AccessConfig a request started with
 * (`admit`, `complete`):
 * - GatedHost wraps an endpoint's SessionHost (a Bridge, the Aggregate, the
 *   proxy's upstream or legacy sessions): every 2025 session and every
 *   2026-07-28 request, fast path included, goes through its fromClient, so
 *   nothing reaches a server past it unchecked;
 * - the proxy's pass-through path (a 2025 client of a 2025 HTTP server)
 *   calls the helpers on the bodies it reads and the answers it rewrites.
 *
 * The default config (no policies, mode token or none, no limiter, no audit,
 * no telemetry) is `inert`: requests then pass without being tracked, so a
 * user who never writes a Gateway pays one check per request.
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { AccessKind, Decision } from '../api/access.js';
import { auditTime, recordOf, type AuditedRequest, type AuditOutcome } from '../api/audit.js';
import { NO_TELEMETRY, type AccessConfig, type Caller, type RequestSpan } from '../api/gate.js';
import type { Deliver } from './bridge.js';
import { ANONYMOUS_CALLER, callerOf } from './gatekeeper.js';
import { SEPARATOR, splitResourceUri } from './aggregate.js';
import { ErrorCodes, errorResponse, isNotification, isRequest, isResponse, type Id, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse } from './jsonrpc.js';
import type { ListKind } from './list-watch.js';
import { RATE_LIMITED_CODE, rateLimitError } from './rate-limit-error.js';
import type { SessionHost, SessionOptions } from './modern.js';

/** The JSON-RPC code of a call a policy forbids (fixed for every part of step 17; rate-limit-error.ts has the 429). */
export const FORBIDDEN_CODE = 403;

/** A name as the endpoint's client wrote it, made the member server's and that server's own name. */
export interface Routed {
  server: string;
  name: string;
}

/**
 * How an endpoint names what it serves: a server's own endpoint serves one
 * server under its own names; the aggregate serves every member as
 * `<server>__<name>` and `apiary://<server>/<uri>`, and a policy is asked
 * about the member and the member's own name.
 */
export interface Naming {
  /** What audit records and spans say before a call is routed (a server's name; `*` at the aggregate). */
  readonly label: string;
  /** The one server a server's own endpoint serves (undefined at the aggregate). */
  readonly server?: string;
  route(kind: AccessKind, name: string): Routed | undefined;
}

export function serverNaming(server: string): Naming {
  return { label: server, server, route: (_kind, name) => ({ server, name }) };
}

export const AGGREGATE_NAMING: Naming = {
  label: '*',
  route(kind, name) {
    if (kind === 'resource') {
      const split = splitResourceUri(name);
      return split === undefined ? undefined : { server: split.server, name: split.uri };
    }
    const cut = name.indexOf(SEPARATOR);
    return cut <= 0 ? undefined : { server: name.slice(0, cut), name: name.slice(cut + SEPARATOR.length) };
  },
};

/** Who sent a request, as the endpoint knows it. */
export interface Requester {
  caller: Caller;
  /** `name/version` of the client's clientInfo. */
  client?: string;
  protocolVersion?: string;
  /** A 2025 session's id (2026-07-28 requests have none). */
  sessionId?: string;
}

/** A request let through, to be completed when its answer goes out (or its client goes away). */
export interface Tracked {
  config: AccessConfig;
  requester: Requester;
  naming: Naming;
  method: string;
  /** What the audit record is built from: the request, with the member's own name at the aggregate. */
  audited: AuditedRequest;
  routed?: Routed;
  decision?: Decision;
  started: number;
  /** When it arrived (ms since the epoch; the record's ISO time is made when it is written). */
  time: number;
  span: RequestSpan;
  /** A list answer keeps only what the caller may see. */
  list?: { kind: AccessKind; field: string };
  /** The HTTP+SSE session whose event stream may carry the answer instead of the POST (the pass-through's). */
  legacySession?: string;
  /** Completed: its record and span are written (an answer seen twice is recorded once). */
  done?: boolean;
}

export type Admission = { pass: JsonRpcRequest } | { forward: JsonRpcRequest; tracked: Tracked } | { answer: JsonRpcResponse };

const LISTS: Readonly<Record<string, { kind: AccessKind; field: string }>> = {
  'tools/list': { kind: 'tool', field: 'tools' },
  'prompts/list': { kind: 'prompt', field: 'prompts' },
  'resources/list': { kind: 'resource', field: 'resources' },
  // A template is matched by its uriTemplate against the resource globs: the template text is the resource's name until a
  // client fills it in, and `file:///*` covers `file:///{path}` as it covers what it expands to (a read is still decided
  // on the URI read, so a template listed never opens a resource a rule denies).
  'resources/templates/list': { kind: 'resource', field: 'resourceTemplates' },
};

/** The methods decided per call, and what they name. */
const DECIDED: Readonly<Record<string, { kind: AccessKind; field: 'name' | 'uri' }>> = {
  'tools/call': { kind: 'tool', field: 'name' },
  'prompts/get': { kind: 'prompt', field: 'name' },
  'resources/read': { kind: 'resource', field: 'uri' },
  'resources/subscribe': { kind: 'resource', field: 'uri' },
};

/** The calls that spend rate-limit tokens and leave an audit record. */
const AUDITED = new Set(['tools/call', 'prompts/get', 'resources/read']);

/** Nothing to enforce, record or trace: the config of a user who never wrote a Gateway. */
export function inert(config: AccessConfig): boolean {
  return config.mode !== 'oidc' && config.policies.policies === 0 && config.limiter === undefined && config.audit === undefined && config.telemetry === NO_TELEMETRY;
}

/** `<policy> (<file>:<line>)`: where the rule that decided is written. */
export function ruleText(decision: Decision | undefined): string | undefined {
  const rule = decision?.rule;
  return rule === undefined ? undefined : `${rule.policy} (${rule.file}:${rule.line})`;
}

/** What a call names and how a policy is asked about it; undefined for a method that is not decided. */
function target(method: string, params: Record<string, unknown>): { kind: AccessKind; name: unknown } | undefined {
  const decided = DECIDED[method];
  if (decided !== undefined) return { kind: decided.kind, name: params[decided.field] };
  if (method !== 'completion/complete') return undefined;
  // A completion reads a prompt's or a resource template's arguments: asked as that prompt or resource.
  const ref = params['ref'] as { type?: unknown; name?: unknown; uri?: unknown } | undefined;
  if (ref?.type === 'ref/prompt') return { kind: 'prompt', name: ref.name };
  if (ref?.type === 'ref/resource') return { kind: 'resource', name: ref.uri };
  return undefined;
}

/**
 * Whether a request goes on (with the trace context to continue upstream in
 * its `_meta`), is answered here (forbidden, over a limit), or is none of
 * this layer's business (`pass`: ping, initialize, notifications...).
 * `requestId`: the id the client gave, when `request` carries another (a
 * 2026-07-28 request forwarded over a session of apiary's).
 */
export function admit(config: AccessConfig, requester: Requester, naming: Naming, request: JsonRpcRequest, requestId: Id = request.id): Admission {
  const list = LISTS[request.method];
  const params = request.params ?? {};
  const named = list === undefined ? target(request.method, params) : undefined;
  if (list === undefined && named === undefined) return { pass: request };
  const base = { config, requester, naming, method: request.method, started: performance.now(), time: Date.now() };
  if (list !== undefined) {
    const span = startSpan(config, requester, naming.label, request, requestId, undefined);
    return { forward: withUpstreamMeta(request, span), tracked: { ...base, audited: { method: request.method, id: requestId }, span, list } };
  }
  const { kind, name } = named!;
  // A name apiary cannot read is refused: a policy cannot judge it, and a lenient server might still read ["env"] as env.
  if (typeof name !== 'string') return { answer: errorResponse(request.id, ErrorCodes.InvalidParams, `${request.method} needs its ${kind === 'resource' ? 'uri' : 'name'} as a string`) };
  const routed = naming.route(kind, name);
  // The aggregate answers a name that routes to no server itself (it names no server): nothing of a member's to decide.
  if (routed === undefined) return { pass: request };
  const unjudgeable = kind === 'resource' && judged(config) ? uriFlaw(routed.name) : undefined;
  if (unjudgeable !== undefined) return { answer: errorResponse(request.id, ErrorCodes.InvalidParams, `${request.method}: the URI ${unjudgeable}, which a policy cannot judge as the server would read it; send the URI as resources/list gives it`) };
  const audited = auditedRequest(request, requestId, routed, naming);
  const decision = decide(config, requester.caller.subject, kind, routed);
  const span = startSpan(config, requester, routed.server, request, requestId, routed.name);
  const tracked: Tracked = { ...base, audited, routed, decision, span };
  if (decision.effect === 'Deny') return { answer: finish(tracked, forbidden(request.id, kind, routed, decision), 'denied') };
  const limited = AUDITED.has(request.method) ? config.limiter?.take(requester.caller.key, routed.server, kind === 'tool' ? routed.name : undefined) : undefined;
  if (limited !== undefined) return { answer: finish(tracked, rateLimitError(request.id, limited, routed.server, kind === 'tool' ? routed.name : undefined), 'rate_limited') };
  return { forward: withUpstreamMeta(request, span), tracked };
}

/** Whether policies decide here (mode oidc, or any AccessPolicy): only then is a name's spelling apiary's business. */
function judged(config: AccessConfig): boolean {
  return config.mode === 'oidc' || config.policies.policies > 0;
}

/**
 * What makes a resource URI mean another than it says: a `.` or `..` path segment (also percent-encoded, or between
 * backslashes, which a file URL reads as slashes), or a control character or space a URL parser drops. A server reading
 * the URI as a URL (the SDK's McpServer does) resolves those, so `demo://docs/x/../secret` reads `demo://docs/secret`
 * while a policy, which matches the text, judged `demo://docs/x/*`.
 */
function uriFlaw(uri: string): string | undefined {
  if ([...uri].some((c) => c.charCodeAt(0) < 0x20 || c === '\x7f') || uri !== uri.trim()) return 'holds a control character or a space at an end';
  const path = uri.replace(/^[a-z][a-z0-9+.-]*:/i, '').split(/[?#]/, 1)[0]!;
  const segments = percentDecoded(path).split(/[/\\]/);
  return segments.some((s) => s === '.' || s === '..') ? 'has a . or .. segment' : undefined;
}

function percentDecoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text.replace(/%2e/gi, '.');
  }
}

/**
 * The policy's decision on a call. A resource URI a URL parser spells otherwise (an upper-case scheme or host, say) is
 * also asked about as the parser spells it, and a rule that denies that spelling denies the call: the server may well
 * read it so.
 */
function decide(config: AccessConfig, subject: Caller['subject'], kind: AccessKind, routed: Routed): Decision {
  const decision = config.policies.decide(subject, { server: routed.server, kind, name: routed.name });
  if (kind !== 'resource' || decision.effect === 'Deny') return decision;
  const canonical = canonicalUri(routed.name);
  if (canonical === undefined || canonical === routed.name) return decision;
  const other = config.policies.decide(subject, { server: routed.server, kind, name: canonical });
  return other.effect === 'Deny' && other.reason === 'rule' ? other : decision;
}

function canonicalUri(uri: string): string | undefined {
  try {
    return new URL(uri).href;
  } catch {
    return undefined;
  }
}

/** The answer going out, as the caller may see it (a list filtered), its record and span done. `undefined`: the client went away first. */
export function complete(tracked: Tracked, response: JsonRpcResponse | undefined, why?: string): JsonRpcResponse | undefined {
  const shown = response !== undefined && tracked.list !== undefined && response.error === undefined ? visibleAnswer(tracked, response) : response;
  if (tracked.done === true) return shown;
  tracked.done = true;
  if (response === undefined) {
    finish(tracked, undefined, 'error', why ?? 'the client went away before the answer');
    return undefined;
  }
  const outcome: AuditOutcome = response.error !== undefined ? 'error' : (response.result as { isError?: unknown } | undefined)?.isError === true ? 'tool_error' : 'ok';
  return finish(tracked, shown, outcome);
}

/** A list answer with only what the caller may use; at the aggregate, each member's items asked about under the member's own names. */
function visibleAnswer(tracked: Tracked, response: JsonRpcResponse): JsonRpcResponse {
  const { kind, field } = tracked.list!;
  const result = response.result as Record<string, unknown> | undefined;
  const items = result?.[field];
  if (!Array.isArray(items)) return response;
  const key = field === 'resourceTemplates' ? 'uriTemplate' : kind === 'resource' ? 'uri' : 'name';
  const nameOf = (item: unknown): string => String((item as Record<string, unknown> | null)?.[key]);
  const kept = visibleItems(tracked.naming, tracked.config, tracked.requester.caller, kind, items, nameOf);
  return kept.length === items.length ? response : ({ ...response, result: { ...result, [field]: kept } } as JsonRpcResponse);
}

/** One server's items asked about at once; the aggregate's grouped by the member they route to, each group asked about once. */
function visibleItems(naming: Naming, config: AccessConfig, caller: Caller, kind: AccessKind, items: unknown[], nameOf: (item: unknown) => string): unknown[] {
  if (naming.server !== undefined) return config.policies.visible(caller.subject, naming.server, kind, items, nameOf);
  const groups = new Map<string, { names: Map<unknown, string>; items: unknown[] }>();
  for (const item of items) {
    const routed = naming.route(kind, nameOf(item));
    // An item that names no member (not the aggregate's making) is not shown: nothing could allow it.
    if (routed === undefined) continue;
    let group = groups.get(routed.server);
    if (group === undefined) groups.set(routed.server, (group = { names: new Map(), items: [] }));
    group.names.set(item, routed.name);
    group.items.push(item);
  }
  const kept = new Set<unknown>();
  for (const [server, group] of groups) for (const item of config.policies.visible(caller.subject, server, kind, group.items, (i) => group.names.get(i)!)) kept.add(item);
  return items.filter((item) => kept.has(item));
}

function auditedRequest(request: JsonRpcRequest, requestId: Id, routed: Routed, naming: Naming): AuditedRequest {
  if (naming.label !== AGGREGATE_NAMING.label) return { method: request.method, params: request.params, id: requestId };
  // At the aggregate the record names the member's own tool, prompt or resource (the server is its own field).
  const field = DECIDED[request.method]?.field ?? 'name';
  return { method: request.method, params: { ...request.params, [field]: routed.name }, id: requestId };
}

function forbidden(id: Id, kind: AccessKind, routed: Routed, decision: Decision): JsonRpcResponse {
  const rule = ruleText(decision);
  return {
    jsonrpc: '2.0',
    id,
    error: { code: FORBIDDEN_CODE, message: `Forbidden by policy: ${kind} "${routed.name}" of server "${routed.server}"`, data: rule !== undefined ? { rule } : { reason: decision.reason } },
  };
}

function startSpan(config: AccessConfig, requester: Requester, server: string, request: JsonRpcRequest, requestId: Id, name: string | undefined): RequestSpan {
  if (config.telemetry === NO_TELEMETRY) return NO_TELEMETRY.startRequest({ method: request.method, server });
  const meta = request.params?.['_meta'];
  return config.telemetry.startRequest({
    method: request.method,
    server,
    ...(name !== undefined ? { name } : {}),
    requestId,
    ...(requester.protocolVersion !== undefined ? { protocolVersion: requester.protocolVersion } : {}),
    ...(requester.sessionId !== undefined ? { sessionId: requester.sessionId } : {}),
    ...(typeof meta === 'object' && meta !== null ? { meta: meta as Record<string, unknown> } : {}),
  });
}

/** The trace context to continue upstream, in the request's `_meta`; the request untouched when there is none (the default). */
function withUpstreamMeta(request: JsonRpcRequest, span: RequestSpan): JsonRpcRequest {
  const extra = span.upstreamMeta();
  if (Object.keys(extra).length === 0) return request;
  const meta = request.params?.['_meta'] as Record<string, unknown> | undefined;
  return { ...request, params: { ...request.params, _meta: { ...meta, ...extra } } };
}

/** The record (for an audited call) and the span end with the answer; returns the answer. */
function finish<R extends JsonRpcResponse | undefined>(tracked: Tracked, answer: R, outcome: AuditOutcome, why?: string): R {
  const error = answer?.error;
  const code = error?.code;
  tracked.span.end(outcome, error !== undefined ? { code: error.code, message: error.message } : why !== undefined ? { message: why } : undefined);
  const audit = tracked.config.audit;
  if (audit !== undefined && AUDITED.has(tracked.method)) {
    const { requester, decision } = tracked;
    // The sink never fails a call for the disk; one closed under a request in flight (a stop) must not stop its answer either.
    try {
      audit.append(
      recordOf(tracked.audited, {
        time: auditTime(tracked.time),
        subject: requester.caller.audit,
        client: requester.client,
        server: tracked.routed?.server ?? '*',
        decision: decision?.effect === 'Deny' ? 'deny' : 'allow',
        rule: ruleText(decision),
        durationMs: performance.now() - tracked.started,
        outcome,
        code,
      }),
    );
    } catch {
      // The answer goes out all the same: the log's owner reports its own failures.
    }
  }
  return answer;
}

/**
 * `Retry-After` for an HTTP answer that carries a rate-limit error (the JSON-RPC error is what clients read; the header is
 * for whatever sits between), nothing otherwise.
 */
export function retryAfterHeader(messages: readonly unknown[]): Record<string, string> {
  for (const m of messages) {
    const error = (m as { error?: { code?: unknown; data?: { retryAfterSeconds?: unknown } } } | null)?.error;
    if (error?.code === RATE_LIMITED_CODE && typeof error.data?.retryAfterSeconds === 'number') return { 'Retry-After': String(error.data.retryAfterSeconds) };
  }
  return {};
}

/** `name/version` of a clientInfo, when it has a name. */
export function clientOf(info: unknown): string | undefined {
  const { name, version } = (info ?? {}) as { name?: unknown; version?: unknown };
  if (typeof name !== 'string') return undefined;
  return typeof version === 'string' ? `${name}/${version}` : name;
}

interface GatedSession {
  requester: Requester;
  ephemeral: boolean;
  /** The client's id for a 2026-07-28 request, forwarded under the short session's own. */
  requestId?: Id;
  deliver: Deliver;
  /** Its requests let through and not yet answered, by its id. */
  open: Map<Id, Tracked>;
  /** Its tasks/list requests not yet answered: the answer keeps only the caller's own tasks. */
  taskLists: Set<Id>;
  config: AccessConfig;
}

/** The methods that name one task (MCP tasks, 2025-11-25): answered for the caller that created the task only. */
const TASK_METHODS = new Set(['tasks/get', 'tasks/result', 'tasks/cancel']);

/** Tasks remembered per endpoint, with who created each; past it the oldest is forgotten (refused to its creator too: closed, never open). */
export const MAX_TASKS = 4096;

function notYourTask(id: Id, method: string, taskId: unknown): JsonRpcResponse {
  if (typeof taskId !== 'string') return errorResponse(id, ErrorCodes.InvalidParams, `${method} needs its taskId as a string`);
  return errorResponse(id, ErrorCodes.InvalidParams, `no task ${JSON.stringify(taskId)} of yours at this server`);
}

/** The task a CreateTaskResult (a task-augmented request's answer) names. */
function createdTask(response: JsonRpcResponse): string | undefined {
  const taskId = (response.result as { task?: { taskId?: unknown } } | undefined)?.task?.taskId;
  return typeof taskId === 'string' ? taskId : undefined;
}

/**
 * An endpoint's SessionHost with the caller's rules in front of it. A
 * session belongs to the caller that opened it (`ownedBy`); each request is
 * admitted with the config of the moment it arrives, and completed with the
 * same one when its answer comes back through the session.
 */
export class GatedHost implements SessionHost {
  readonly #inner: SessionHost;
  readonly #config: () => AccessConfig;
  readonly #naming: Naming;
  readonly #sessions = new Map<string, GatedSession>();
  /**
   * Who created each task, by its id. A Bridge holds one session with its server for every client, and a server keeps
   * tasks per session: without this, any caller could list, read and cancel every other caller's tasks there.
   */
  readonly #tasks = new Map<string, string>();
  readonly watchLists?: (listener: (kind: ListKind) => void) => () => void;

  constructor(inner: SessionHost, config: () => AccessConfig, naming: Naming) {
    this.#inner = inner;
    this.#config = config;
    this.#naming = naming;
    if (inner.watchLists !== undefined) this.watchLists = inner.watchLists.bind(inner);
  }

  /** The host behind, for apiary's own sessions (the listen streams' resource watch, which subscribes only what its listeners may read). */
  get inner(): SessionHost {
    return this.#inner;
  }

  /** The URIs of `uris` the caller may subscribe to now (a 2026-07-28 listen stream's resourceSubscriptions). */
  subscribable(caller: Caller, uris: readonly string[]): string[] {
    const config = this.#config();
    if (inert(config)) return [...uris];
    return uris.filter((uri) => {
      const routed = this.#naming.route('resource', uri);
      if (routed === undefined || (judged(config) && uriFlaw(routed.name) !== undefined)) return false;
      return decide(config, caller.subject, 'resource', routed).effect === 'Allow';
    });
  }

  openSession(deliver: Deliver, options: SessionOptions = {}): string {
    const { caller, protocolVersion, client, requestId, ...inner } = options;
    const session: GatedSession = {
      requester: { caller: caller ?? ANONYMOUS_CALLER, ...(protocolVersion !== undefined ? { protocolVersion } : {}), ...(client !== undefined ? { client } : {}) },
      ephemeral: inner.ephemeral === true,
      ...(requestId !== undefined ? { requestId } : {}),
      deliver,
      open: new Map(),
      taskLists: new Set(),
      config: this.#config(),
    };
    const id = this.#inner.openSession((message, related) => this.#deliver(session, message, related), inner);
    if (!session.ephemeral) {
      session.requester.sessionId = id;
      session.config.telemetry.sessions(this.#naming.label, 1);
    }
    this.#sessions.set(id, session);
    return id;
  }

  hasSession(id: string): boolean {
    return this.#inner.hasSession(id);
  }

  /** Whether `caller` may use the session: only the caller (key) that opened it; another gets 404, as for an unknown session. */
  ownedBy(id: string, caller: Caller): boolean {
    const session = this.#sessions.get(id);
    return session === undefined || session.requester.caller.key === caller.key;
  }

  /**
   * A request of the session's owner authenticated anew (each HTTP request carries its token): what it may do is what
   * this token says (a group the provider no longer lists, a scope), not what the one that opened the session said.
   */
  authenticated(id: string, caller: Caller): void {
    const session = this.#sessions.get(id);
    // A new requester, not the old one changed: calls in flight keep the caller they were decided for in their records.
    if (session !== undefined && session.requester.caller.key === caller.key) session.requester = { ...session.requester, caller };
  }

  closeSession(id: string): void {
    const session = this.#sessions.get(id);
    this.#sessions.delete(id);
    if (session !== undefined) {
      for (const tracked of session.open.values()) complete(tracked, undefined, 'the client closed its session before the answer');
      session.open.clear();
      if (!session.ephemeral) session.config.telemetry.sessions(this.#naming.label, -1);
    }
    this.#inner.closeSession(id);
  }

  fromClient(sessionId: string, message: JsonRpcMessage): Promise<void> {
    const session = this.#sessions.get(sessionId);
    if (session === undefined) return this.#inner.fromClient(sessionId, message);
    if (isRequest(message)) return this.#request(sessionId, session, message);
    if (isNotification(message) && message.method === 'notifications/cancelled' && session.open.size > 0) {
      const id = message.params?.['requestId'] as Id | undefined;
      const tracked = id === undefined ? undefined : session.open.get(id);
      if (tracked !== undefined) {
        session.open.delete(id!);
        complete(tracked, undefined, 'cancelled by the client');
      }
    }
    return this.#inner.fromClient(sessionId, message);
  }

  #request(sessionId: string, session: GatedSession, request: JsonRpcRequest): Promise<void> {
    if (request.method === 'initialize') this.#introduced(session, request.params);
    const config = this.#config();
    if (inert(config)) return this.#inner.fromClient(sessionId, request);
    // Answers are matched to calls by id: a second request under an id in flight would take the first's record (and leave one unaudited).
    if (session.open.has(request.id) || session.taskLists.has(request.id)) {
      session.deliver(idInUse(request.id), request.id);
      return Promise.resolve();
    }
    if (request.method === 'tasks/list') session.taskLists.add(request.id);
    const taskId = TASK_METHODS.has(request.method) ? request.params?.['taskId'] : undefined;
    if (TASK_METHODS.has(request.method) && (typeof taskId !== 'string' || this.#tasks.get(taskId) !== session.requester.caller.key)) {
      session.deliver(notYourTask(request.id, request.method, taskId), request.id);
      return Promise.resolve();
    }
    const admitted = admit(config, session.requester, this.#naming, request, session.requestId ?? request.id);
    if ('pass' in admitted) return this.#inner.fromClient(sessionId, admitted.pass);
    if ('answer' in admitted) {
      session.deliver(admitted.answer, request.id);
      return Promise.resolve();
    }
    session.open.set(request.id, admitted.tracked);
    return this.#inner.fromClient(sessionId, admitted.forward);
  }

  /** A client's initialize says who it is (a 2026-07-28 request's short session is introduced with its envelope's clientInfo). */
  #introduced(session: GatedSession, params: Record<string, unknown> | undefined): void {
    const client = clientOf(params?.['clientInfo']);
    if (client !== undefined && session.requester.client === undefined) session.requester.client = client;
    const version = params?.['protocolVersion'];
    if (typeof version === 'string' && session.requester.protocolVersion === undefined) session.requester.protocolVersion = version;
  }

  #deliver(session: GatedSession, message: JsonRpcMessage, related?: Id): void {
    if (this.#tasks.size > 0 && isNotification(message) && message.method === 'notifications/tasks/status' && !this.#mayHear(session, message.params?.['taskId'])) return;
    if ((session.open.size === 0 && session.taskLists.size === 0) || !isResponse(message) || message.id === null) return session.deliver(message, related);
    if (session.taskLists.delete(message.id)) return session.deliver(this.#ownTasks(session, message), related);
    const tracked = session.open.get(message.id);
    if (tracked === undefined) return session.deliver(message, related);
    session.open.delete(message.id);
    const taskId = createdTask(message);
    if (taskId !== undefined) this.#created(taskId, tracked.requester.caller.key);
    session.deliver(complete(tracked, message)!, related);
  }

  #created(taskId: string, owner: string): void {
    if (this.#tasks.size >= MAX_TASKS) this.#tasks.delete(this.#tasks.keys().next().value!);
    this.#tasks.set(taskId, owner);
  }

  /** A task's status goes to its creator's sessions only (one the gate does not know of: to whom the host sends it). */
  #mayHear(session: GatedSession, taskId: unknown): boolean {
    const owner = typeof taskId === 'string' ? this.#tasks.get(taskId) : undefined;
    return owner === undefined || owner === session.requester.caller.key;
  }

  /** A tasks/list answer with the caller's own tasks only. */
  #ownTasks(session: GatedSession, response: JsonRpcResponse): JsonRpcResponse {
    const result = response.result as { tasks?: unknown } | undefined;
    if (!Array.isArray(result?.tasks)) return response;
    const mine = result.tasks.filter((t) => this.#tasks.get(String((t as { taskId?: unknown } | null)?.taskId)) === session.requester.caller.key);
    return { ...response, result: { ...result, tasks: mine } } as JsonRpcResponse;
  }
}

/** What a 2025 client said of itself at initialize. */
type Introduction = Pick<Requester, 'client' | 'protocolVersion'>;

/** Sessions whose client's introduction is remembered on the pass-through path; past it the oldest is forgotten (its records lose the client name). */
const MAX_INTRODUCTIONS = 4096;

/**
 * The caller's rules where the proxy passes a 2025 client's messages to a
 * 2025 HTTP server as they are: the body is admitted request by request (a
 * batch with one refused is answered whole, as for spec.tools), and each
 * answer is completed as it passes back, on the POST's own answer, or on the
 * legacy transport's event stream for its session.
 */
export class PassThroughGate {
  readonly #naming: Naming;
  /** What each session's client said at initialize, by the session id the client sends (the server's, or the legacy transport's). */
  readonly #introductions = new Map<string, Introduction>();
  /** initialize requests whose session id comes with the server's answer. */
  readonly #introducing = new WeakMap<IncomingMessage, Introduction>();
  /** The legacy transport's calls, answered on its GET stream: by its session. */
  readonly #legacy = new Map<string, Map<Id, Tracked>>();
  /**
   * Who opened each session the server gave out through this proxy (its caller's key), by the id the client sends: the
   * server's sessions are not bound to apiary's callers, so another caller sending the id would use (or DELETE) it.
   */
  readonly #owners = new Map<string, string>();

  constructor(naming: Naming) {
    this.#naming = naming;
  }

  /** The body to forward and the requests it carries to complete, or the refusal to answer with instead. */
  admit(req: IncomingMessage, config: AccessConfig, value: unknown): { refusal: unknown } | { value: unknown; tracked: Map<Id, Tracked> | undefined } {
    const legacy = legacySessionOf(req);
    const session = legacy ?? headerOf(req, 'mcp-session-id');
    const requester: Requester = { caller: callerOf(req), ...(session !== undefined ? { ...this.#introductions.get(session), sessionId: session } : {}) };
    const messages = Array.isArray(value) ? (value as unknown[]) : [value];
    const tracked = new Map<Id, Tracked>();
    const refusals: (JsonRpcResponse | undefined)[] = [];
    const inFlight = legacy === undefined ? undefined : this.#legacy.get(legacy);
    const out = messages.map((m, i) => {
      if (!isRequestLike(m)) return m;
      // Answers are matched to calls by id: one id twice (in this batch, or still awaited on the legacy session) would lose a record.
      if (tracked.has(m.id) || inFlight?.has(m.id) === true) {
        refusals[i] = idInUse(m.id);
        return m;
      }
      if (m.method === 'initialize') this.#introduce(req, legacy, m.params);
      const admitted = admit(config, requester, this.#naming, m);
      if ('answer' in admitted) refusals[i] = admitted.answer;
      if ('pass' in admitted) return admitted.pass;
      if ('answer' in admitted) return m;
      tracked.set(m.id, admitted.tracked);
      return admitted.forward;
    });
    if (refusals.length > 0) {
      this.gone(tracked, 'not sent: another request in its batch was refused');
      if (!Array.isArray(value)) return { refusal: refusals[0] };
      return { refusal: messages.map((m, i) => refusals[i] ?? errorResponse(null, ErrorCodes.InvalidRequest, 'not sent: another request in this batch was refused by policy or a rate limit')) };
    }
    const body = Array.isArray(value) ? out : out[0];
    if (tracked.size === 0) return { value: body, tracked: undefined };
    if (legacy === undefined) return { value: body, tracked };
    /*
     * Answered on the session's event stream (the POST gets 202), as the URL says; or on the POST itself, where a
     * Streamable HTTP server's router takes that URL for its endpoint (/mcp/?sessionId=1): judged wherever it comes.
     */
    const open = this.#legacy.get(legacy) ?? new Map<Id, Tracked>();
    for (const [id, t] of tracked) {
      t.legacySession = legacy;
      open.set(id, t);
    }
    this.#legacy.set(legacy, open);
    return { value: body, tracked };
  }

  #introduce(req: IncomingMessage, legacy: string | undefined, params: Record<string, unknown> | undefined): void {
    const client = clientOf(params?.['clientInfo']);
    const version = params?.['protocolVersion'];
    const introduction: Introduction = { ...(client !== undefined ? { client } : {}), ...(typeof version === 'string' ? { protocolVersion: version } : {}) };
    if (legacy !== undefined) this.#remember(legacy, introduction);
    else this.#introducing.set(req, introduction);
  }

  #remember(session: string, introduction: Introduction): void {
    if (this.#introductions.size >= MAX_INTRODUCTIONS) this.#introductions.delete(this.#introductions.keys().next().value!);
    this.#introductions.set(session, introduction);
  }

  /**
   * The server's answer names the session its client will send: the session is the requester's (the first caller seen
   * with it), and an initialize's introduction is kept under it.
   */
  sessionFrom(req: IncomingMessage, upstream: ClientRequest): void {
    const introduction = this.#introducing.get(req);
    upstream.once('response', (answer) => {
      const session = answer.headers['mcp-session-id'];
      if (typeof session !== 'string') return;
      this.#own(session, callerOf(req).key);
      if (introduction !== undefined) this.#remember(session, introduction);
    });
  }

  /** A legacy (HTTP+SSE) session's stream, opened by this request, named its session: the session is the requester's. */
  legacyOpened(req: IncomingMessage, session: string): void {
    this.#own(session, callerOf(req).key);
  }

  #own(session: string, key: string): void {
    if (this.#owners.has(session)) return;
    if (this.#owners.size >= MAX_INTRODUCTIONS) this.#owners.delete(this.#owners.keys().next().value!);
    this.#owners.set(session, key);
  }

  /**
   * Whether the request may use the sessions it names (its Mcp-Session-Id, its legacy sessionId): each one another
   * caller opened is as unknown to this one as a made-up id (404, as at apiary's own endpoints). An id apiary never saw
   * given out (a session from before this controller) is the server's to judge.
   */
  mayUse(req: IncomingMessage): boolean {
    const key = callerOf(req).key;
    for (const session of [legacySessionOf(req), headerOf(req, 'mcp-session-id')]) {
      const owner = session === undefined ? undefined : this.#owners.get(session);
      if (owner !== undefined && owner !== key) return false;
    }
    return true;
  }

  /** A session deleted by its client. */
  forget(req: IncomingMessage): void {
    const session = headerOf(req, 'mcp-session-id');
    if (session === undefined) return;
    this.#introductions.delete(session);
    this.#owners.delete(session);
  }

  /** The requests a legacy session's stream answers. */
  legacy(session: string | undefined): Map<Id, Tracked> | undefined {
    return session === undefined ? undefined : this.#legacy.get(session);
  }

  /** Completes an answer to a tracked request as it passes (undefined when nothing is tracked there). */
  answered(tracked: Map<Id, Tracked> | undefined): ((message: unknown) => unknown) | undefined {
    if (tracked === undefined || tracked.size === 0) return undefined;
    return (message) => {
      const m = message as { id?: unknown; method?: unknown; result?: unknown; error?: unknown } | null;
      if (m === null || typeof m !== 'object' || m.method !== undefined || (typeof m.id !== 'string' && typeof m.id !== 'number')) return message;
      const t = tracked.get(m.id);
      if (t === undefined) return message;
      tracked.delete(m.id);
      if (t.legacySession !== undefined) this.#legacy.get(t.legacySession)?.delete(m.id);
      return complete(t, message as JsonRpcResponse);
    };
  }

  /** What is still open there went unanswered: its client went away (or it was never sent). */
  gone(tracked: Map<Id, Tracked> | undefined, why?: string): void {
    for (const t of tracked?.values() ?? []) {
      // A POST of the HTTP+SSE transport ends at once (202): its calls are still awaited on the session's stream.
      if (tracked === this.#legacy.get(t.legacySession ?? '') || !this.#awaitedOnStream(t)) complete(t, undefined, why);
    }
    tracked?.clear();
  }

  #awaitedOnStream(t: Tracked): boolean {
    const id = t.audited.id;
    return t.legacySession !== undefined && id !== undefined && id !== null && this.#legacy.get(t.legacySession)?.get(id) === t;
  }

  /** A legacy session's stream closed: its open calls end, and its introduction is forgotten. */
  closed(session: string): void {
    this.gone(this.#legacy.get(session), 'the client closed its event stream before the answer');
    this.#legacy.delete(session);
    this.#introductions.delete(session);
    this.#owners.delete(session);
  }
}

/** A request sent under the id of one still in flight (JSON-RPC ids are unique per session): refused, never sent. */
function idInUse(id: Id): JsonRpcResponse {
  return errorResponse(id, ErrorCodes.InvalidRequest, `request id ${JSON.stringify(id)} is in use by a request still in flight on this session; use a new id`);
}

function isRequestLike(m: unknown): m is JsonRpcRequest {
  const o = m as { method?: unknown; id?: unknown } | null;
  return typeof o === 'object' && o !== null && typeof o.method === 'string' && (typeof o.id === 'string' || typeof o.id === 'number');
}

/** The legacy transport's session a POST names: its `sessionId` query, on whatever path the server's endpoint event gave (`/messages`, `/message`). */
function legacySessionOf(req: IncomingMessage): string | undefined {
  const url = req.url ?? '/';
  if (!url.includes('sessionId=') || url.split('?')[0] === '/mcp') return undefined;
  return new URL(url, 'http://proxy').searchParams.get('sessionId') ?? undefined;
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
