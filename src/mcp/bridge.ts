/**
 * One upstream MCP session per server process, shared by many clients.
 * apiary initializes the server itself, answers each client's `initialize`
 * from that session, remaps JSON-RPC ids (and progress tokens) so clients
 * cannot collide, routes responses, notifications and server-to-client
 * requests to the right client, and after a restart initializes the new
 * process so clients carry on. A request caught by a restart gets a clear
 * error, never a hang.
 *
 * A rolling update needs no restart: the new process is initialized beside
 * the serving one (prepare), then takes new requests (promote) while the
 * old one finishes those it holds (drained), so clients keep their sessions
 * and never see an error for it.
 */
import { randomUUID } from 'node:crypto';
import { InitializeResultSchema, LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS, type InitializeResult } from '@modelcontextprotocol/sdk/types.js';
import type { Readable, Writable } from 'node:stream';
import type { Clock, Timer } from '../util/clock.js';
import { envelope, isInputRequired, MODERN_PROTOCOL_VERSION, readDiscover, type Discovered, type Era } from './era.js';
import { DEFAULT_HEALTH, type HealthOptions } from './health.js';
import { listChangedKind, ListWatchers, type ListKind } from './list-watch.js';
import {
  ErrorCodes,
  errorResponse,
  isNotification,
  isRequest,
  isResponse,
  type Id,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from './jsonrpc.js';
import { capabilityFor, inputRound, MAX_INPUT_ROUNDS, refusedAnswer, retryParams, tooManyRounds, type InputAsk } from './mrtr.js';
import { EXPOSE_ALL, pinnedFilter, refuseFilteredCall, withExposedTools, type ToolFilter, type ToolPins } from './tool-filter.js';
import { digests, pinnedFields, withPage, type ToolDefinition, type ToolDrift } from '../api/tool-lock.js';
import { allPages } from './paged-list.js';
import { StdioUpstream } from './upstream.js';
import { APIARY_VERSION } from '../util/version.js';

export const APIARY_CLIENT_INFO = { name: 'apiary', version: APIARY_VERSION };
/** What apiary asks servers for; they answer with the version they speak. */
export /** Where a listen stream's notifications say which subscription they belong to. */
const SUBSCRIPTION_ID = 'io.modelcontextprotocol/subscriptionId';

const PROTOCOL_VERSION = LATEST_PROTOCOL_VERSION;

export type UpstreamState = 'down' | 'initializing' | 'ready' | 'failed';


export interface BridgeStatus {
  state: UpstreamState;
  pid?: number;
  serverInfo?: { name: string; version: string };
  protocolVersion?: string;
  /** How many tools clients see (after spec.tools). */
  toolCount?: number;
  /** The tools spec.tools keeps from clients. */
  filteredTools?: string[];
  /** The tools the server listed at its handshake (names and first lines of descriptions, for people to read). */
  tools?: ToolSummary[];
  /** How the tools listed at the handshake differ from the server's entry in tools.lock.yaml (only when they do). */
  drift?: ToolDrift;
  /** The drifted tools kept from clients (spec.tools.onDrift Withhold). */
  withheldTools?: string[];
  message?: string;
  sessions: number;
  /** A new process being initialized beside the serving one (a rolling update). */
  next?: { pid: number; state: UpstreamState; message?: string };
}

export interface ToolSummary {
  name: string;
  description?: string;
  /** Kept from clients by spec.tools. */
  filtered?: boolean;
}

/** What is worth showing of a tools/list result: names, and descriptions cut to a readable length. */
export function summarizeTools(tools: readonly unknown[]): ToolSummary[] {
  return tools.flatMap((t) => {
    const { name, description } = (t ?? {}) as { name?: unknown; description?: unknown };
    if (typeof name !== 'string') return [];
    const text = typeof description === 'string' ? description.trim().slice(0, 300) : '';
    return [{ name, ...(text ? { description: text } : {}) }];
  });
}

/** The tools as clients see them through a filter: counts, and each tool marked when the filter keeps it from them. */
export function toolStatus(listed: readonly ToolSummary[], filter: ToolFilter): Pick<BridgeStatus, 'toolCount' | 'filteredTools' | 'tools'> {
  const tools = listed.map((t) => (filter.exposes(t.name) ? t : { ...t, filtered: true }));
  const filtered = tools.filter((t) => t.filtered).map((t) => t.name);
  return { toolCount: tools.length - filtered.length, ...(filtered.length > 0 ? { filteredTools: filtered } : {}), tools };
}

/** Where a client session's messages go: responses carry the id of the client's request they answer. */
export type Deliver = (message: JsonRpcMessage, relatedRequestId?: Id) => void;

interface Session {
  id: string;
  deliver: Deliver;
  capabilities?: Record<string, unknown>;
  /**
   * A session for one request (a 2026-07-28 client's): opening and closing it
   * is no change the owner must hear of, and a modern server's
   * `input_required` reaches it as it is (its client retries by itself).
   */
  ephemeral?: boolean;
  /** Its client's place at the server: its own, or one it shares with the client's other sessions (see Share). */
  share: Share;
}

/**
 * One client's requests at the server now, and those waiting their turn.
 * A 2025 client's session has one of its own; a 2026-07-28 client opens a
 * session for each request, so its sessions share one, found by the key its
 * endpoint gives (who the client is), and one client's flood fills only its
 * own share however many requests it sends at once.
 */
interface Share {
  key?: string;
  /** Open sessions using it: a keyed share is forgotten with its last one. */
  sessions: number;
  inFlight: number;
  waiting: Array<{ session: string; request: JsonRpcRequest }>;
}

/**
 * Requests one client may have at the server at once; the rest wait in its
 * own queue. The server reads its stdin in order, so without this a client
 * that floods it puts every other client's request (a ping) behind its own.
 */
export const MAX_IN_FLIGHT_PER_CLIENT = 8;

/** A request at a server process: a client's (under apiary's id), or apiary's own. `upstream` is the process it went to. */
type Pending = ClientPending | { kind: 'internal'; upstream: StdioUpstream; resolve: (r: JsonRpcResponse) => void; timer?: Timer };

/**
 * A client's request at a process. `params` are those it was sent with
 * (progress token remapped, no envelope), kept for a modern server's retry;
 * `round`: how many rounds of input the client has answered for it (MRTR).
 */
interface ClientPending {
  kind: 'client';
  upstream: StdioUpstream;
  session: string;
  id: Id;
  method?: string;
  progressToken?: string;
  params?: Record<string, unknown>;
  round?: number;
}

/**
 * A 2025 client's request that a modern server answered with
 * `input_required`: its questions are out at the client as server-to-client
 * requests (`waiting`, by the id the client was given), and the request
 * holds its client's place until the answers are in and it is sent again.
 */
interface InputExchange {
  pending: ClientPending;
  requestState?: string;
  answers: Record<string, unknown>;
  waiting: Map<string, InputAsk>;
}

/** What a process answered to apiary's handshake (for a modern server, `init` is made from its DiscoverResult). */
/** `respawn`: the process cannot be talked to any more (the probe spoiled it): it is given up, and its owner starts another. */
type Handshake = { init: InitializeResult; tools: ToolSummary[]; definitions: ToolDefinition[] } | { error: string; respawn?: true };

export type { ToolPins } from './tool-filter.js';

/** The pinned fields of each tool in a tools/list result (those with a name). */
export function toolDefinitions(tools: readonly unknown[]): ToolDefinition[] {
  return tools.flatMap((t) => {
    const tool = (t ?? {}) as Record<string, unknown>;
    return typeof tool['name'] === 'string' ? [pinnedFields(tool as unknown as ToolDefinition)] : [];
  });
}

/** What the era probe found: a modern server, or a legacy one (and its answer to initialize when the probe already sent it). */
type Probed = { era: 'modern'; discovered: Discovered } | { era: 'legacy'; initialize?: JsonRpcResponse } | { error: string };

/** apiary's initialize, as a client of a legacy server. */
const INITIALIZE_PARAMS = {
  protocolVersion: PROTOCOL_VERSION,
  capabilities: { roots: { listChanged: true }, sampling: {}, elicitation: {} },
  clientInfo: APIARY_CLIENT_INFO,
};

/** The client capabilities a modern server may ask input of (MRTR): those of a client's that a request to it declares. */
const INPUT_CAPABILITIES = ['sampling', 'elicitation', 'roots'] as const;

/** A new process beside the serving one, initialized before it takes over. */
interface Candidate {
  upstream: StdioUpstream;
  pid: number;
  state: UpstreamState;
  message?: string;
  handshake?: Extract<Handshake, { init: InitializeResult }>;
}

export interface BridgeOptions {
  name: string;
  clock: Clock;
  /** Non-JSON lines the server printed on stdout (for its log). */
  onNoise?: (line: string) => void;
  /** Each message the server sends, before anything of it goes towards a client: the gateway takes its secret values out. */
  redact?: (message: JsonRpcMessage) => JsonRpcMessage;
  onChange?: () => void;
  /** Too many failed pings in a row. */
  onUnhealthy?: (message: string) => void;
  /** The serving process `pid` broke MCP's stdio framing (a message over the cap): it can no longer be read, and must be restarted. */
  onProtocolError?: (message: string, pid: number) => void;
  health?: HealthOptions;
  /** How long a request waits for a (re)starting server before it fails. */
  readyWaitMs?: number;
  /** The whole definitions of the tools a process listed at its handshake (for `apiary tools lock|diff|approve`). */
  onToolDefinitions?: (definitions: ToolDefinition[]) => void;
}

/** Requests during which a server never asks its client anything (listing, pinging, subscribing, setting levels). */
const NEVER_ASKS_BACK = /^(ping|logging\/setLevel|.*\/list|resources\/(subscribe|unsubscribe))$/;

function canAskBack(method: string | undefined): boolean {
  return method !== undefined && !NEVER_ASKS_BACK.test(method);
}

/** Where a server-to-client request goes, or why it goes nowhere. */
type AskedSession =
  | { session: Session }
  | { refused: 'none' }
  | { refused: 'ambiguous'; callers: number }
  | { refused: 'undeclared'; capability: string };

/** What the server is told when apiary does not pass its request on. */
function refusal(method: string, asked: Exclude<AskedSession, { session: Session }>): string {
  switch (asked.refused) {
    case 'none':
      return `no client has a request in flight that ${method} could serve`;
    case 'ambiguous':
      return `${asked.callers} clients have requests in flight that ${method} could serve, and stdio does not say which one it is for: refused rather than sent to the wrong client`;
    case 'undeclared':
      return `the client whose request ${method} serves did not declare the ${asked.capability} capability`;
  }
}

export class Bridge {
  readonly #opts: BridgeOptions;
  readonly #sessions = new Map<string, Session>();
  /** The 2026-07-28 listen streams at this server's endpoint, told of list changes with the sessions. */
  readonly #listWatchers = new ListWatchers();
  readonly #pending = new Map<number, Pending>();
  /** Server-to-client requests in flight: downstream id -> (session, the process that asked, its id). */
  readonly #serverRequests = new Map<string, { session: string; upstream: StdioUpstream; upstreamId: Id }>();
  readonly #progress = new Map<string, { session: string; token: string | number }>();
  /** The shares of clients whose sessions share one (2026-07-28 clients'), by their key. */
  readonly #shares = new Map<string, Share>();
  /**
   * The URIs clients subscribed to, each with who did. The process has one
   * session for all of them: a 2025 server is asked to subscribe at a URI's
   * first subscriber and to unsubscribe at its last one's leaving (never at
   * one client's unsubscribe while another still listens). A 2026-07-28
   * server has no resources/subscribe: the URIs are asked for on one listen
   * stream of apiary's to it, opened again whenever the set changes.
   */
  readonly #resourceSubs = new Map<string, Set<string>>();
  #resourceListen: { upstream: StdioUpstream; id: number } | undefined;
  /** 2025 clients' requests waiting for their answers to a modern server's questions, and each question out by its id. */
  readonly #exchanges = new Set<InputExchange>();
  readonly #inputAsks = new Map<string, InputExchange>();
  #nextId = 1;
  #upstream: StdioUpstream | undefined;
  #state: UpstreamState = 'down';
  #pid: number | undefined;
  #init: InitializeResult | undefined;
  #tools: ToolSummary[] | undefined;
  #definitions: ToolDefinition[] | undefined;
  /** Their digests, computed once per listing (every reconcile sets the pins again). */
  #digests: { name: string; digest: string }[] | undefined;
  /** The listing's JSON, to tell a new listing from the same one cheaply. */
  #listing: string | undefined;
  /** spec.tools; #filter is it with the drifted tools withheld. */
  #specFilter: ToolFilter = EXPOSE_ALL;
  #pins: ToolPins | undefined;
  #drift: ToolDrift | undefined;
  #filter: ToolFilter = EXPOSE_ALL;
  #message: string | undefined;
  #readyWaiters: (() => void)[] = [];
  #healthTimer: Timer | undefined;
  #failures = 0;
  #everReady = false;
  #next: Candidate | undefined;
  #health: HealthOptions | undefined;
  /** Replaced processes still finishing client requests, and who waits for them to be done. */
  readonly #draining = new Map<StdioUpstream, { pid: number; waiters: (() => void)[] }>();
  /** The era of each process whose handshake is done: what its requests carry, and how its liveness is checked. */
  readonly #eras = new WeakMap<StdioUpstream, Era>();
  /**
   * Configurations (process config hashes) whose process exited on the
   * server/discover probe: a 2025 server that does not tolerate an unknown
   * method. Their next processes go straight to initialize, or every restart
   * would die on the probe again. Kept here because the bridge outlives the
   * processes of its server; keyed by configuration because an edit (another
   * command, another version) may be a server of the other era.
   */
  readonly #legacyConfigs = new Set<string>();

  constructor(options: BridgeOptions) {
    this.#opts = options;
    this.#health = options.health;
  }

  /** spec.healthCheck changed: the next ping follows it (no restart). */
  setHealth(health: HealthOptions): void {
    this.#health = health;
  }

  status(): BridgeStatus {
    return {
      state: this.#state,
      sessions: this.#sessions.size,
      ...(this.#pid !== undefined ? { pid: this.#pid } : {}),
      ...(this.#init ? { serverInfo: { name: this.#init.serverInfo.name, version: this.#init.serverInfo.version }, protocolVersion: this.#init.protocolVersion } : {}),
      ...this.#toolStatus(),
      ...(this.#drift !== undefined ? { drift: this.#drift } : {}),
      ...(this.#drift !== undefined && this.#pins?.withhold === true ? { withheldTools: [...this.#drift.changed, ...this.#drift.added] } : {}),
      ...(this.#message !== undefined ? { message: this.#message } : {}),
      ...(this.#next ? { next: { pid: this.#next.pid, state: this.#next.state, ...(this.#next.message !== undefined ? { message: this.#next.message } : {}) } } : {}),
    };
  }

  /** What the tools look like to clients: counts, and each tool marked when spec.tools filters it. */
  #toolStatus(): Pick<BridgeStatus, 'toolCount' | 'filteredTools' | 'tools'> {
    return this.#tools === undefined ? {} : toolStatus(this.#tools, this.#filter);
  }

  /** spec.tools, enforced here: a change tells connected clients their tool list changed (no restart). */
  setToolFilter(filter: ToolFilter): void {
    this.#specFilter = filter;
    this.#applyFilter();
  }

  /** tools.lock.yaml's entry for this server (undefined: none, the tools are not judged). Takes effect at once, no restart. */
  setPins(pins: ToolPins | undefined): void {
    this.#pins = pins;
    this.#applyFilter();
  }

  /**
   * The drift of the tools the serving process listed, and the filter
   * clients get: spec.tools, and under Withhold the changed and new tools
   * kept from them too. A change tells connected clients their list changed.
   */
  #applyFilter(): void {
    if (this.#pins !== undefined && this.#definitions !== undefined) this.#digests ??= digests(this.#definitions);
    const { filter, drift } = pinnedFilter(this.#opts.name, this.#specFilter, this.#pins, this.#digests);
    const driftChanged = JSON.stringify(drift) !== JSON.stringify(this.#drift);
    this.#drift = drift;
    if (filter.key === this.#filter.key) {
      this.#filter = filter;
      if (driftChanged) this.#opts.onChange?.();
      return;
    }
    this.#filter = filter;
    if (this.#state === 'ready' && this.#init?.capabilities?.['tools'] !== undefined) this.#broadcast({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
    this.#opts.onChange?.();
  }

  #set(state: UpstreamState, message?: string): void {
    this.#state = state;
    this.#message = message;
    if (state === 'ready' || state === 'failed' || state === 'down') for (const w of this.#readyWaiters.splice(0)) w();
    this.#opts.onChange?.();
  }

  // ---- the server process ----

  /** A new process: talk to it over its stdio and initialize it. `config` (its config hash) keys the era verdict of a process that exited on the probe. */
  attach(stdin: Writable, stdout: Readable, pid: number, config?: string): void {
    this.detach('replaced');
    this.#pid = pid;
    this.#init = undefined;
    this.#tools = undefined;
    this.#setDefinitions(undefined);
    this.#applyFilter();
    this.#failures = 0;
    const upstream = this.#connect(stdin, stdout, pid);
    this.#upstream = upstream;
    this.#set('initializing', 'waiting for the MCP initialize handshake');
    const slow = (message: string): void => {
      if (this.#upstream === upstream && this.#state === 'initializing') this.#set('initializing', message);
    };
    void this.#handshake(upstream, slow, config).then((result) => {
      if (this.#upstream !== upstream) return;
      if ('error' in result && result.respawn === true) this.#protocolError(upstream, pid, result.error);
      else if ('error' in result) this.#set('failed', result.error);
      else this.#serve(result);
    });
  }

  #connect(stdin: Writable, stdout: Readable, pid: number): StdioUpstream {
    const upstream: StdioUpstream = new StdioUpstream(stdin, stdout, {
      onMessage: (m) => this.#fromUpstream(upstream, this.#opts.redact?.(m) ?? m),
      onNoise: (line) => this.#opts.onNoise?.(line),
      onProtocolError: (message) => this.#protocolError(upstream, pid, message),
      // Whatever part the process plays by then: serving, starting beside, or replaced.
      onClose: () => {
        if (this.#upstream === upstream) this.detach('the server closed its stdio');
        else this.retire(pid, this.#next?.upstream === upstream ? 'the new process closed its stdio' : 'the replaced process closed its stdio before answering');
      },
    });
    return upstream;
  }

  /**
   * A process that broke the framing is given up at once, whatever part it
   * plays: what it holds fails, clearly; the serving one is also restarted
   * (by whoever owns the process), a new one fails its rollout.
   */
  #protocolError(upstream: StdioUpstream, pid: number, message: string): void {
    if (this.#upstream === upstream) {
      this.#opts.onProtocolError?.(message, pid);
      this.detach(message);
      return;
    }
    const next = this.#next;
    if (next?.upstream !== upstream) {
      this.retire(pid, message);
      return;
    }
    next.state = 'failed';
    next.message = message;
    this.#failPending(upstream, message);
    this.#opts.onChange?.();
  }

  /**
   * apiary's own handshake with a process. First the era, probed as the
   * spec's stdio transport says: a modern server answers server/discover,
   * and needs nothing more; a legacy one gets initialize and initialized.
   * Then the tools it lists. `slow` is told when a step goes unanswered past
   * the health timeout.
   */
  async #handshake(upstream: StdioUpstream, slow: (message: string) => void, config?: string): Promise<Handshake> {
    const remembered = config !== undefined && this.#legacyConfigs.has(config);
    const probed: Probed = remembered ? { era: 'legacy' } : await this.#probe(upstream, slow, config);
    if ('error' in probed) return probed;
    this.#eras.set(upstream, probed.era);
    if (probed.era === 'modern') {
      const { capabilities, serverInfo, instructions } = probed.discovered;
      // What legacy clients' initialize is answered with. serverInfo is only a SHOULD in a DiscoverResult; clients need one.
      const init = { protocolVersion: MODERN_PROTOCOL_VERSION, capabilities, serverInfo: serverInfo ?? { name: this.#opts.name, version: 'unknown' }, ...(instructions !== undefined ? { instructions } : {}) } as InitializeResult;
      return this.#listTools(upstream, init, slow);
    }
    const answer = probed.initialize ?? (await this.#handshakeStep(upstream, 'initialize', INITIALIZE_PARAMS, slow));
    // The remembered verdict may be wrong (the process that exited on the probe crashed for another reason): the next process is probed again.
    if (answer.error && remembered) this.#legacyConfigs.delete(config);
    // A process the probe itself spoiled (supergateway opens its upstream session on the first message, then refuses
    // initialize as a second one): as for one that exits on the probe, its next process is not probed.
    if (answer.error && !remembered && probed.initialize === undefined && config !== undefined) {
      this.#legacyConfigs.add(config);
      return { error: `initialize failed after the server/discover probe (${answer.error.message}); its next process gets initialize at once, as a 2025 server`, respawn: true };
    }
    if (answer.error || answer.result === undefined) return { error: `initialize failed: ${answer.error?.message ?? 'no result'}` };
    // Checked against the SDK's schema: what apiary answers every client's initialize with must be whole.
    const parsed = InitializeResultSchema.safeParse(answer.result);
    if (!parsed.success) return { error: `initialize failed: the answer is not an MCP InitializeResult (${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? 'invalid'})` };
    upstream.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return this.#listTools(upstream, parsed.data, slow);
  }

  async #listTools(upstream: StdioUpstream, init: InitializeResult, slow: (message: string) => void): Promise<Handshake> {
    if (init.capabilities?.['tools'] === undefined) return { init, tools: [], definitions: [] };
    // Every page walked: the pins judge (and `apiary tools lock` pins) a tool on a later page as one on the first.
    let failed: string | undefined;
    const listed = await allPages(async (cursor) => {
      const tools = await this.#handshakeStep(upstream, 'tools/list', this.#paramsFor(upstream, cursor === undefined ? {} : { cursor }), slow);
      if (tools.error) failed = tools.error.message;
      const result = tools.result as { tools?: unknown[]; nextCursor?: unknown } | undefined;
      return { items: result?.tools ?? [], ...(tools.error === undefined && typeof result?.nextCursor === 'string' ? { nextCursor: result.nextCursor } : {}) };
    });
    if (failed !== undefined) return { error: `tools/list failed: ${failed}` };
    return { init, tools: summarizeTools(listed), definitions: toolDefinitions(listed) };
  }

  /**
   * The era probe: server/discover with the envelope. A DiscoverResult (or
   * UnsupportedProtocolVersion naming 2026-07-28) is a modern server; any
   * other error is a legacy one, and so is silence past
   * healthCheck.timeoutSeconds: initialize goes to the same process then
   * (2025 servers tolerate the unknown method before it). A modern server
   * that is merely slow to start still answers the probe before it reads
   * initialize (stdin is read in order), so its late DiscoverResult wins.
   */
  async #probe(upstream: StdioUpstream, slow: (message: string) => void, config?: string): Promise<Probed> {
    const limitMs = (this.#health ?? DEFAULT_HEALTH).timeoutMs;
    const discover = this.#call(upstream, 'server/discover', this.#paramsFor(upstream, {}, 'modern'));
    const answer = await this.#within(discover, limitMs);
    if (answer !== undefined) return this.#probed(upstream, answer, config);
    if (!this.#live(upstream)) return { error: 'the process was given up during the era probe' };
    slow(`no answer to server/discover within ${limitMs / 1000}s (healthCheck.timeoutSeconds); trying initialize, as for a 2025 server`);
    const initialize = this.#call(upstream, 'initialize', INITIALIZE_PARAMS);
    const first = await new Promise<{ discover: JsonRpcResponse } | { initialize: JsonRpcResponse }>((resolve) => {
      void discover.then((r) => {
        if (readDiscover(r).era === 'modern') resolve({ discover: r });
      });
      void initialize.then((r) => resolve({ initialize: r }));
    });
    if ('discover' in first) return this.#probed(upstream, first.discover, config);
    // Slow to start, then gone on the probe it read first: as for one that exits at once.
    if (upstream.closed && config !== undefined) this.#legacyConfigs.add(config);
    return { era: 'legacy', initialize: first.initialize };
  }

  /** The era an answer to the probe says; a process that exited on the probe is remembered as legacy for its configuration. */
  async #probed(upstream: StdioUpstream, answer: JsonRpcResponse, config?: string, again = true): Promise<Probed> {
    if (upstream.closed) {
      if (config !== undefined) this.#legacyConfigs.add(config);
      return { error: 'the server exited on the server/discover probe; its next process gets initialize at once (a 2025 server)' };
    }
    if (!this.#live(upstream)) return { error: 'the process was given up during the era probe' };
    const verdict = readDiscover(answer);
    if (verdict.era === 'legacy') return { era: 'legacy' };
    if (verdict.discovered !== undefined) return { era: 'modern', discovered: verdict.discovered };
    // UnsupportedProtocolVersion that lists 2026-07-28 all the same: asked once more, for the capabilities.
    if (!again) return { error: `server/discover failed: ${answer.error?.message ?? 'no DiscoverResult'}` };
    return this.#probed(upstream, await this.#call(upstream, 'server/discover', this.#paramsFor(upstream, {}, 'modern')), config, false);
  }

  /** The process still plays a part here (serving, or starting beside): one given up is not talked to any more. */
  #live(upstream: StdioUpstream): boolean {
    return !upstream.closed && (this.#upstream === upstream || this.#next?.upstream === upstream);
  }

  /** The answer, or undefined when none came within `ms` (the request stays pending: a late answer still resolves it). */
  #within(answer: Promise<JsonRpcResponse>, ms: number): Promise<JsonRpcResponse | undefined> {
    return new Promise((resolve) => {
      const timer = this.#opts.clock.setTimeout(() => resolve(undefined), ms);
      void answer.then((r) => {
        timer.cancel();
        resolve(r);
      });
    });
  }

  /**
   * A request's params as the process's era wants them: a modern server
   * needs the envelope in every request's _meta. Its client capabilities are
   * apiary's own ({}), plus those a client declared that a modern server may
   * ask input of (sampling, elicitation, roots): the server must not ask for
   * one the request does not declare.
   */
  #paramsFor(upstream: StdioUpstream, params: Record<string, unknown> | undefined, era = this.#eras.get(upstream), client?: Record<string, unknown>): Record<string, unknown> | undefined {
    if (era !== 'modern') return params;
    const capabilities: Record<string, unknown> = {};
    for (const key of INPUT_CAPABILITIES) if (client?.[key] !== undefined) capabilities[key] = client[key];
    const meta = params?.['_meta'] as Record<string, unknown> | undefined;
    return { ...params, _meta: { ...meta, ...envelope(capabilities, APIARY_CLIENT_INFO) } };
  }

  /**
   * One request of the handshake. Past spec.healthCheck.timeoutSeconds the
   * status says which step the server has not answered; the request is not
   * given up, because a server that starts slowly (an npx download, a cold
   * cache) still serves once it answers, and a rollout has its own deadline.
   */
  async #handshakeStep(upstream: StdioUpstream, method: string, params: Record<string, unknown> | undefined, slow: (message: string) => void): Promise<JsonRpcResponse> {
    const limitMs = (this.#health ?? DEFAULT_HEALTH).timeoutMs;
    const timer = this.#opts.clock.setTimeout(() => slow(`no answer to ${method} within ${limitMs / 1000}s (healthCheck.timeoutSeconds); still waiting for it`), limitMs);
    try {
      return await this.#call(upstream, method, params);
    } finally {
      timer.cancel();
    }
  }

  /** The current process answered the handshake: it serves clients from now on. */
  #serve({ init, tools, definitions }: Extract<Handshake, { init: InitializeResult }>): void {
    this.#init = init;
    this.#tools = tools;
    this.#setDefinitions(definitions);
    this.#applyFilter();
    this.#opts.onToolDefinitions?.(definitions);
    const restarted = this.#everReady;
    this.#everReady = true;
    this.#set('ready');
    this.#scheduleHealth();
    if (this.#upstream !== undefined) this.#listenUpstream(this.#upstream, init);
    this.#renewSubscriptions();
    // Clients of the previous process may hold stale lists.
    if (restarted) {
      const caps = init.capabilities ?? {};
      for (const kind of ['tools', 'resources', 'prompts'] as const) {
        if (caps[kind] !== undefined) this.#broadcast({ jsonrpc: '2.0', method: `notifications/${kind}/list_changed` });
      }
    }
  }

  /**
   * A 2026-07-28 server tells of its list changes only on a
   * `subscriptions/listen` stream: apiary opens one to the serving process,
   * for the lists it says change, and passes what comes on it to every
   * client as the server's own news. It lasts as long as the process.
   */
  #listenUpstream(upstream: StdioUpstream, init: InitializeResult): void {
    if (this.#eras.get(upstream) !== 'modern') return;
    const caps = (init.capabilities ?? {}) as Record<string, { listChanged?: boolean } | undefined>;
    const notifications: Record<string, boolean> = {};
    for (const kind of ['tools', 'prompts', 'resources'] as const) if (caps[kind]?.listChanged === true) notifications[`${kind}ListChanged`] = true;
    if (Object.keys(notifications).length === 0) return;
    void this.#call(upstream, 'subscriptions/listen', this.#paramsFor(upstream, { notifications }));
  }

  /**
   * A client (un)subscribes a resource: the set changes, and the server
   * hears of it only when the URI gains its first subscriber or loses its
   * last (a 2025 server's answer is then the client's; a 2026-07-28 server's
   * listen stream asks for the new set); otherwise apiary answers.
   */
  async #subscribe(session: Session, request: JsonRpcRequest): Promise<void> {
    const uri = request.params?.['uri'];
    if (typeof uri !== 'string') return session.deliver(errorResponse(request.id, ErrorCodes.InvalidParams, `${request.method} needs params.uri, a string`), request.id);
    const subscribing = request.method === 'resources/subscribe';
    const had = this.#resourceSubs.has(uri);
    const subscribers = this.#resourceSubs.get(uri) ?? new Set<string>();
    if (subscribing) subscribers.add(session.id);
    else subscribers.delete(session.id);
    if (subscribers.size > 0) this.#resourceSubs.set(uri, subscribers);
    else this.#resourceSubs.delete(uri);
    const upstream = this.#upstream;
    if (had === this.#resourceSubs.has(uri) || upstream === undefined) return session.deliver({ jsonrpc: '2.0', id: request.id, result: {} }, request.id);
    if (this.#eras.get(upstream) === 'modern') {
      session.deliver({ jsonrpc: '2.0', id: request.id, result: {} }, request.id);
      return this.#listenResources();
    }
    const answer = await this.#call(upstream, request.method, this.#paramsFor(upstream, request.params));
    // Refused by the server: the client is not subscribed after all.
    if (answer.error !== undefined && subscribing && subscribers.delete(session.id) && subscribers.size === 0) this.#resourceSubs.delete(uri);
    this.#sessions.get(session.id)?.deliver({ ...answer, id: request.id }, request.id);
  }

  /** Whether resources/(un)subscribe is apiary's to serve: always for a 2025 server, for a 2026-07-28 one that offers subscriptions. */
  #servesSubscriptions(method: string): boolean {
    if (method !== 'resources/subscribe' && method !== 'resources/unsubscribe') return false;
    const upstream = this.#upstream;
    if (upstream === undefined) return false;
    if (this.#eras.get(upstream) !== 'modern') return true;
    const resources = (this.#init?.capabilities as Record<string, { subscribe?: boolean } | undefined> | undefined)?.['resources'];
    return resources?.subscribe === true;
  }

  /** A process starts serving (a restart, a rollout's promote): it knows nothing of the subscriptions, so it is asked for them all. */
  #renewSubscriptions(): void {
    this.#listenResources();
    const upstream = this.#upstream;
    if (upstream === undefined || this.#eras.get(upstream) === 'modern') return;
    for (const uri of this.#resourceSubs.keys()) void this.#call(upstream, 'resources/subscribe', this.#paramsFor(upstream, { uri }));
  }

  /** The listen stream for the subscribed URIs, at the serving process: the previous one ended (cancelled), a new one for the set as it is. */
  #listenResources(): void {
    const previous = this.#resourceListen;
    this.#resourceListen = undefined;
    if (previous !== undefined && this.#pending.delete(previous.id)) {
      previous.upstream.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: previous.id, reason: 'the subscribed resources changed' } });
    }
    const upstream = this.#upstream;
    if (upstream === undefined || this.#eras.get(upstream) !== 'modern' || this.#resourceSubs.size === 0) return;
    const id = this.#nextId++;
    this.#resourceListen = { upstream, id };
    // It lasts until cancelled or the process ends; its end (an answer) forgets it.
    this.#pending.set(id, { kind: 'internal', upstream, resolve: () => void (this.#resourceListen?.id === id && (this.#resourceListen = undefined)) });
    const params = this.#paramsFor(upstream, { notifications: { resourceSubscriptions: [...this.#resourceSubs.keys()] } });
    upstream.send({ jsonrpc: '2.0', id, method: 'subscriptions/listen', ...(params !== undefined ? { params } : {}) });
  }

  /** A session gone: its subscriptions go with it (a URI it was the last subscriber of is unsubscribed at the server). */
  #unsubscribeAll(sessionId: string): void {
    const emptied: string[] = [];
    for (const [uri, subscribers] of this.#resourceSubs) {
      if (!subscribers.delete(sessionId) || subscribers.size > 0) continue;
      this.#resourceSubs.delete(uri);
      emptied.push(uri);
    }
    const upstream = this.#upstream;
    if (emptied.length === 0 || upstream === undefined) return;
    if (this.#eras.get(upstream) === 'modern') return this.#listenResources();
    for (const uri of emptied) void this.#call(upstream, 'resources/unsubscribe', this.#paramsFor(upstream, { uri }));
  }

  // ---- rolling updates ----

  /** A new process beside the serving one: initialized now, serving once promoted. */
  prepare(stdin: Writable, stdout: Readable, pid: number, config?: string): void {
    if (this.#next?.pid === pid) return;
    if (this.#next !== undefined) this.retire(this.#next.pid, 'replaced by a newer process');
    const upstream = this.#connect(stdin, stdout, pid);
    const candidate: Candidate = { upstream, pid, state: 'initializing', message: 'waiting for the MCP initialize handshake' };
    this.#next = candidate;
    this.#opts.onChange?.();
    const slow = (message: string): void => {
      if (this.#next !== candidate || candidate.state !== 'initializing') return;
      candidate.message = message;
      this.#opts.onChange?.();
    };
    void this.#handshake(upstream, slow, config).then((result) => {
      // Given up already (it broke the framing): that is what it failed of.
      if (this.#next !== candidate || candidate.state === 'failed') return;
      if ('error' in result) {
        candidate.state = 'failed';
        candidate.message = result.error;
      } else {
        candidate.state = 'ready';
        delete candidate.message;
        candidate.handshake = result;
      }
      this.#opts.onChange?.();
    });
  }

  /**
   * The initialized new process takes every request from now on; the one it
   * replaces keeps its requests in flight until they are answered (see
   * drained). False when there is no initialized new process.
   */
  promote(): boolean {
    const next = this.#next;
    if (next?.state !== 'ready' || next.handshake === undefined) return false;
    this.#next = undefined;
    const old = this.#upstream;
    if (old !== undefined && this.#pid !== undefined) this.#draining.set(old, { pid: this.#pid, waiters: [] });
    this.#healthTimer?.cancel();
    this.#healthTimer = undefined;
    this.#upstream = next.upstream;
    this.#pid = next.pid;
    this.#failures = 0;
    this.#serve(next.handshake);
    if (old !== undefined) this.#checkDrained(old);
    return true;
  }

  /** Resolves true when the replaced process `pid` has answered every client request it holds, false after `timeoutMs`. */
  drained(pid: number, timeoutMs: number): Promise<boolean> {
    const entry = [...this.#draining.entries()].find(([, d]) => d.pid === pid);
    if (entry === undefined || this.#inFlightAt(entry[0]) === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = this.#opts.clock.setTimeout(() => resolve(false), timeoutMs);
      entry[1].waiters.push(() => {
        timer.cancel();
        resolve(true);
      });
    });
  }

  #inFlightAt(upstream: StdioUpstream): number {
    let count = 0;
    for (const pending of this.#pending.values()) if (pending.kind === 'client' && pending.upstream === upstream) count++;
    return count;
  }

  #checkDrained(upstream: StdioUpstream): void {
    const draining = this.#draining.get(upstream);
    if (draining === undefined || this.#inFlightAt(upstream) > 0) return;
    for (const waiter of draining.waiters.splice(0)) waiter();
  }

  /**
   * A process that is not the serving one is gone or given up (a new one
   * that failed, an old one that was stopped): what it still held fails,
   * clearly. The serving process is detach()ed instead.
   */
  retire(pid: number, reason: string): void {
    if (this.#next?.pid === pid) {
      const { upstream } = this.#next;
      this.#next = undefined;
      this.#failPending(upstream, reason);
      this.#opts.onChange?.();
      return;
    }
    for (const [upstream, draining] of this.#draining) {
      if (draining.pid !== pid) continue;
      this.#draining.delete(upstream);
      this.#failPending(upstream, reason);
      for (const waiter of draining.waiters.splice(0)) waiter();
    }
  }

  /** Every request at this process fails with an error that says it is safe to retry. */
  #failPending(upstream: StdioUpstream, reason: string): void {
    for (const [id, pending] of this.#pending) {
      if (pending.upstream !== upstream) continue;
      this.#pending.delete(id);
      if (pending.kind === 'internal') {
        pending.timer?.cancel();
        pending.resolve(errorResponse(id, ErrorCodes.ServerRestarted, reason));
        continue;
      }
      if (pending.progressToken !== undefined) this.#progress.delete(pending.progressToken);
      const session = this.#sessions.get(pending.session);
      if (session === undefined) continue;
      session.share.inFlight -= 1;
      session.deliver(
        errorResponse(pending.id, ErrorCodes.ServerRestarted, `MCP server "${this.#opts.name}" stopped while handling this request (${reason}); it is safe to retry`),
        pending.id,
      );
      // A replaced process gone: what this client has waiting goes to the serving one (none serving: detach fails it).
      if (this.#upstream !== undefined) this.#pump(session.share);
    }
    for (const [downstreamId, route] of this.#serverRequests) if (route.upstream === upstream) this.#serverRequests.delete(downstreamId);
  }

  /** The process is gone: fail what was in flight, clearly. */
  detach(reason: string): void {
    const upstream = this.#upstream;
    if (upstream === undefined) return;
    this.#upstream = undefined;
    this.#healthTimer?.cancel();
    this.#healthTimer = undefined;
    this.#failPending(upstream, reason);
    for (const share of new Set([...this.#sessions.values()].map((s) => s.share))) {
      for (const { session, request } of share.waiting.splice(0)) {
        this.#sessions.get(session)?.deliver(errorResponse(request.id, ErrorCodes.ServerRestarted, `MCP server "${this.#opts.name}" stopped before this request reached it (${reason}); it is safe to retry`), request.id);
      }
    }
    this.#pid = undefined;
    this.#set('down', reason);
  }

  #call(upstream: StdioUpstream, method: string, params: Record<string, unknown> | undefined, timeoutMs?: number): Promise<JsonRpcResponse> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const pending: Pending = { kind: 'internal', upstream, resolve };
      if (timeoutMs !== undefined) {
        pending.timer = this.#opts.clock.setTimeout(() => {
          if (this.#pending.delete(id)) resolve(errorResponse(id, ErrorCodes.InternalError, `no answer to ${method} within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.#pending.set(id, pending);
      upstream.send({ jsonrpc: '2.0', id, method, ...(params !== undefined ? { params } : {}) });
    });
  }

  #scheduleHealth(): void {
    const health = this.#health;
    if (health === undefined || this.#upstream === undefined) return;
    const upstream = this.#upstream;
    // A modern server has no ping (it answers -32601): the cheapest request it must answer is server/discover.
    const modern = this.#eras.get(upstream) === 'modern';
    this.#healthTimer = this.#opts.clock.setTimeout(() => {
      void this.#call(upstream, modern ? 'server/discover' : 'ping', this.#paramsFor(upstream, {}), health.timeoutMs).then((r) => {
        if (this.#upstream !== upstream) return;
        if (r.error) {
          this.#failures += 1;
          if (this.#failures >= health.failureThreshold) {
            this.#opts.onUnhealthy?.(`${this.#failures} MCP ${modern ? 'liveness checks (server/discover)' : 'pings'} in a row failed (last: ${r.error.message})`);
            return;
          }
        } else {
          this.#failures = 0;
        }
        this.#scheduleHealth();
      });
    }, health.intervalMs);
  }

  #whenSettled(timeoutMs: number): Promise<void> {
    if (this.#state === 'ready') return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.#opts.clock.setTimeout(resolve, timeoutMs);
      this.#readyWaiters.push(() => {
        timer.cancel();
        resolve();
      });
    });
  }

  /** Waits for a starting or restarting server; true when it is ready. */
  async #ready(): Promise<boolean> {
    const wait = this.#opts.readyWaitMs ?? 10_000;
    const deadline = this.#opts.clock.now() + wait;
    while (!this.isReady() && this.#opts.clock.now() < deadline) {
      // Failed (handshake error, or the controller says no process is coming): answer at once.
      if (this.#state === 'failed') return false;
      await this.#whenSettled(deadline - this.#opts.clock.now());
    }
    return this.isReady();
  }

  isReady(): boolean {
    return this.#state === 'ready';
  }

  #unavailable(id: Id | null): JsonRpcResponse {
    const why = this.#message ? `: ${this.#message}` : '';
    return errorResponse(id, ErrorCodes.ServerUnavailable, `MCP server "${this.#opts.name}" is not ready (${this.#state}${why})`);
  }

  // ---- clients ----

  /**
   * A client session. Its capabilities come from its `initialize`, or here
   * for a session that never sends one (the aggregate's, on behalf of its
   * own client): a server's request for sampling, elicitation or roots goes
   * only to a session that declared that capability.
   */
  /**
   * `share`: who the client is, for a session that shares its client's place
   * at the server with the client's other sessions (a 2026-07-28 client's,
   * one session a request); without it the session has a place of its own.
   */
  openSession(deliver: Deliver, declared: { capabilities?: Record<string, unknown>; ephemeral?: boolean; share?: string } = {}): string {
    const id = randomUUID();
    const ephemeral = declared.ephemeral === true;
    const share = this.#joinShare(declared.share);
    this.#sessions.set(id, { id, deliver, share, ...(declared.capabilities !== undefined ? { capabilities: declared.capabilities } : {}), ...(ephemeral ? { ephemeral } : {}) });
    if (!ephemeral) this.#opts.onChange?.();
    return id;
  }

  hasSession(id: string): boolean {
    return this.#sessions.has(id);
  }

  #joinShare(key: string | undefined): Share {
    if (key === undefined) return { sessions: 1, inFlight: 0, waiting: [] };
    let share = this.#shares.get(key);
    if (share === undefined) {
      share = { key, sessions: 0, inFlight: 0, waiting: [] };
      this.#shares.set(key, share);
    }
    share.sessions += 1;
    return share;
  }

  /** A session closed: what it had at the server, or waiting, no longer counts against its share, and the next waiting may go. */
  #leaveShare(session: Session, released: number): void {
    const share = session.share;
    share.sessions -= 1;
    share.inFlight -= released;
    share.waiting = share.waiting.filter((queued) => queued.session !== session.id);
    if (share.key !== undefined && share.sessions === 0) this.#shares.delete(share.key);
    else this.#pump(share);
  }

  /** The share's waiting requests go to the server while it has room. */
  #pump(share: Share): void {
    while (share.inFlight < MAX_IN_FLIGHT_PER_CLIENT) {
      const next = share.waiting.shift();
      if (next === undefined) return;
      const session = this.#sessions.get(next.session);
      if (session !== undefined) this.#forward(session, next.request);
    }
  }

  /** Replaces where a session's messages go (an HTTP stream opened or closed). */
  setDeliver(id: string, deliver: Deliver): void {
    const session = this.#sessions.get(id);
    if (session) session.deliver = deliver;
  }

  closeSession(id: string): void {
    const closed = this.#sessions.get(id);
    if (closed === undefined) return;
    this.#sessions.delete(id);
    let released = 0;
    for (const [upstreamId, pending] of this.#pending) {
      if (pending.kind === 'client' && pending.session === id) {
        released += 1;
        this.#pending.delete(upstreamId);
        if (pending.progressToken !== undefined) this.#progress.delete(pending.progressToken);
        pending.upstream.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: upstreamId, reason: 'client session closed' } });
        this.#checkDrained(pending.upstream);
      }
    }
    for (const exchange of this.#exchanges) {
      if (exchange.pending.session !== id) continue;
      released += 1;
      this.#endExchange(exchange, 'client session closed');
    }
    this.#leaveShare(closed, released);
    this.#unsubscribeAll(id);
    // The server must not wait forever on a question to a client that is gone.
    for (const [downstreamId, route] of this.#serverRequests) {
      if (route.session !== id) continue;
      this.#serverRequests.delete(downstreamId);
      route.upstream.send(errorResponse(route.upstreamId, ErrorCodes.InternalError, 'the client this request went to has disconnected'));
    }
    if (closed.ephemeral !== true) this.#opts.onChange?.();
  }

  /** A message from a client session. */
  async fromClient(sessionId: string, message: JsonRpcMessage): Promise<void> {
    const session = this.#sessions.get(sessionId);
    if (session === undefined) return;
    if (isRequest(message)) return this.#clientRequest(session, message);
    if (isNotification(message)) return this.#clientNotification(session, message);
    if (isResponse(message)) return this.#clientResponse(session, message);
  }

  async #clientRequest(session: Session, request: JsonRpcRequest): Promise<void> {
    if (request.method === 'initialize') {
      session.capabilities = (request.params?.['capabilities'] as Record<string, unknown> | undefined) ?? {};
      if (!(await this.#ready()) || this.#init === undefined) {
        session.deliver(this.#unavailable(request.id), request.id);
        return;
      }
      const { capabilities, serverInfo, instructions } = this.#init;
      // The specification: a server that supports the version asked for MUST answer with it (older clients disconnect otherwise).
      const asked = request.params?.['protocolVersion'];
      const protocolVersion = typeof asked === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(asked) ? asked : LATEST_PROTOCOL_VERSION;
      session.deliver({ jsonrpc: '2.0', id: request.id, result: { protocolVersion, capabilities, serverInfo, ...(instructions ? { instructions } : {}) } }, request.id);
      return;
    }
    const refused = request.method === 'tools/call' ? refuseFilteredCall(this.#filter, request.id, request.params?.['name']) : undefined;
    if (refused !== undefined) {
      session.deliver(refused, request.id);
      return;
    }
    if (!(await this.#ready())) {
      session.deliver(this.#unavailable(request.id), request.id);
      return;
    }
    if (this.#servesSubscriptions(request.method)) return this.#subscribe(session, request);
    if (session.share.inFlight >= MAX_IN_FLIGHT_PER_CLIENT) {
      session.share.waiting.push({ session: session.id, request });
      return;
    }
    this.#forward(session, request);
  }

  /** Sends a client's request to the server under an id of apiary's. */
  #forward(session: Session, request: JsonRpcRequest): void {
    const upstream = this.#upstream;
    if (upstream === undefined) {
      session.deliver(this.#unavailable(request.id), request.id);
      return;
    }
    // Judged again here: a call that waited through a restart or a rollout goes to a process whose tools may differ from the pins.
    const withheld = request.method === 'tools/call' && this.#pins !== undefined ? refuseFilteredCall(this.#filter, request.id, request.params?.['name']) : undefined;
    if (withheld !== undefined) {
      session.deliver(withheld, request.id);
      this.#pump(session.share);
      return;
    }
    if (request.method === 'ping' && this.#eras.get(upstream) === 'modern') {
      // A modern server has no ping; apiary answers for it (its liveness is apiary's own discover).
      session.deliver({ jsonrpc: '2.0', id: request.id, result: {} }, request.id);
      // It took no turn at the server: one waiting may go in its place.
      this.#pump(session.share);
      return;
    }
    session.share.inFlight += 1;
    const upstreamId = this.#nextId++;
    const pending: ClientPending = { kind: 'client', upstream, session: session.id, id: request.id, method: request.method };
    let params = request.params;
    const meta = params?.['_meta'] as Record<string, unknown> | undefined;
    const token = meta?.['progressToken'];
    if (typeof token === 'string' || typeof token === 'number') {
      const mapped = `p${upstreamId}`;
      this.#progress.set(mapped, { session: session.id, token });
      pending.progressToken = mapped;
      params = { ...params, _meta: { ...meta, progressToken: mapped } };
    }
    if (params !== undefined) pending.params = params;
    params = this.#paramsFor(upstream, params, undefined, session.capabilities);
    this.#pending.set(upstreamId, pending);
    upstream.send({ jsonrpc: '2.0', id: upstreamId, method: request.method, ...(params !== undefined ? { params } : {}) });
  }

  /** A client request is done at the server (answered, cancelled, failed): its client's next one may go. */
  #settle(upstreamId: number, pending: ClientPending): void {
    this.#release(upstreamId, pending);
    this.#done(pending);
  }

  /** The request is no longer at its process (a replaced one may be drained now). */
  #release(upstreamId: number, pending: ClientPending): void {
    this.#pending.delete(upstreamId);
    if (pending.upstream !== this.#upstream) this.#checkDrained(pending.upstream);
  }

  /** The client's request is over: its place is free for the next one waiting. */
  #done(pending: ClientPending): void {
    if (pending.progressToken !== undefined) this.#progress.delete(pending.progressToken);
    const session = this.#sessions.get(pending.session);
    // A closed session gave its place back as it closed.
    if (session === undefined) return;
    session.share.inFlight -= 1;
    this.#pump(session.share);
  }

  #clientNotification(session: Session, notification: JsonRpcMessage & { method: string; params?: Record<string, unknown> }): void {
    if (notification.method === 'notifications/initialized') return;
    if (notification.method === 'notifications/cancelled') {
      // Ids are per session: a client cancels only its own requests.
      const clientId = notification.params?.['requestId'];
      // One waiting for this client's input is at no server: its questions are withdrawn, and that is all.
      for (const exchange of this.#exchanges) {
        if (exchange.pending.session !== session.id || exchange.pending.id !== clientId) continue;
        this.#endExchange(exchange, 'the request was cancelled by the client');
        this.#done(exchange.pending);
      }
      for (const [upstreamId, pending] of this.#pending) {
        if (pending.kind === 'client' && pending.session === session.id && pending.id === clientId) {
          this.#settle(upstreamId, pending);
          pending.upstream.send({ jsonrpc: '2.0', method: notification.method, params: { ...notification.params, requestId: upstreamId } });
        }
      }
      // One still waiting its turn never reached the server: it is just dropped.
      session.share.waiting = session.share.waiting.filter((queued) => queued.session !== session.id || queued.request.id !== clientId);
      return;
    }
    this.#upstream?.send(notification);
  }

  #clientResponse(session: Session, response: JsonRpcResponse): void {
    const key = String(response.id);
    const exchange = this.#inputAsks.get(key);
    if (exchange !== undefined) {
      if (exchange.pending.session === session.id) this.#inputAnswer(exchange, key, response);
      return;
    }
    const route = this.#serverRequests.get(key);
    // Only the client the request went to may answer it.
    if (route === undefined || route.session !== session.id) return;
    this.#serverRequests.delete(key);
    route.upstream.send({ ...response, id: route.upstreamId });
  }

  // ---- the server's messages ----

  #fromUpstream(upstream: StdioUpstream, message: JsonRpcMessage): void {
    if (isResponse(message)) return this.#upstreamResponse(upstream, message);
    if (isRequest(message)) return this.#upstreamRequest(upstream, message);
    if (isNotification(message)) return this.#upstreamNotification(upstream, message);
  }

  #upstreamResponse(upstream: StdioUpstream, response: JsonRpcResponse): void {
    if (typeof response.id !== 'number') return;
    const pending = this.#pending.get(response.id);
    if (pending === undefined || pending.upstream !== upstream) return;
    if (pending.kind === 'internal') {
      this.#pending.delete(response.id);
      pending.timer?.cancel();
      pending.resolve(response);
      return;
    }
    // A modern server asks for input: a 2025 client is asked it as it understands, and the request goes again with its answers.
    if (this.#eras.get(upstream) === 'modern' && isInputRequired(response) && this.#sessions.get(pending.session)?.ephemeral !== true) {
      this.#release(response.id, pending);
      this.#askInput(pending, response);
      return;
    }
    if (pending.method === 'tools/list' && upstream === this.#upstream) this.#relisted(pending.params, response);
    const answer = (pending.method === 'tools/list' && this.#filter !== EXPOSE_ALL ? withExposedTools(this.#filter, response) : undefined) ?? response;
    this.#sessions.get(pending.session)?.deliver({ ...answer, id: pending.id }, pending.id);
    this.#settle(response.id, pending);
  }

  #setDefinitions(definitions: ToolDefinition[] | undefined): void {
    this.#definitions = definitions;
    this.#digests = undefined;
    this.#listing = definitions === undefined ? undefined : JSON.stringify(definitions);
  }

  /**
   * A tools/list answer of the serving process: a server may change its
   * tools without a restart (list_changed), so what it lists now is judged
   * against the pins before the answer is filtered, and kept for `apiary
   * tools lock|diff|approve`. A page of a paged answer (asked with a cursor,
   * or with nextCursor) is taken into what was listed before (withPage): a
   * tool changed on page 2 is withheld before that page passes. Removals are
   * learnt from a whole listing (the handshake walks every page): gathering
   * a client's walk would need each session's cursors, and a client may stop
   * walking half-way.
   */
  #relisted(params: Record<string, unknown> | undefined, response: JsonRpcResponse): void {
    const result = response.result as { tools?: unknown; nextCursor?: unknown } | undefined;
    if (!Array.isArray(result?.tools)) return;
    const whole = params?.['cursor'] === undefined && result.nextCursor === undefined;
    const page = toolDefinitions(result.tools as unknown[]);
    const definitions = whole ? page : withPage(this.#definitions ?? [], page);
    if (JSON.stringify(definitions) === this.#listing) return;
    this.#setDefinitions(definitions);
    const summaries = summarizeTools(result.tools as unknown[]);
    this.#tools = whole ? summaries : withPage(this.#tools ?? [], summaries);
    this.#opts.onToolDefinitions?.(definitions);
    this.#applyFilter();
  }

  // ---- MRTR for 2025 clients: a modern server's input_required, asked and answered ----

  /**
   * Each of the server's questions goes to the client as a server-to-client
   * request beside the call it serves (on that call's stream), provided the
   * client declared what it needs; past MAX_INPUT_ROUNDS rounds, or for a
   * question the client cannot answer, the call ends with a clear error and
   * the server is not asked again.
   */
  #askInput(pending: ClientPending, response: JsonRpcResponse): void {
    const session = this.#sessions.get(pending.session);
    if (session === undefined) return;
    const round = (pending.round ?? 0) + 1;
    const asked = round > MAX_INPUT_ROUNDS ? { error: tooManyRounds(this.#opts.name) } : inputRound(this.#opts.name, response.result, session.capabilities ?? {});
    if ('error' in asked) return this.#finish(pending, errorResponse(pending.id, ErrorCodes.InternalError, asked.error));
    const exchange: InputExchange = { pending: { ...pending, round }, answers: {}, waiting: new Map(), ...(asked.requestState !== undefined ? { requestState: asked.requestState } : {}) };
    this.#exchanges.add(exchange);
    for (const ask of asked.asks) {
      const downstreamId = `apiary-${this.#nextId++}`;
      exchange.waiting.set(downstreamId, ask);
      this.#inputAsks.set(downstreamId, exchange);
    }
    // Only state to carry back (no question): the request goes again at once.
    if (exchange.waiting.size === 0) return void this.#retry(exchange);
    for (const [id, ask] of exchange.waiting) session.deliver({ jsonrpc: '2.0', id, method: ask.method, params: ask.params }, pending.id);
  }

  /** The client answered one question: with every answer in, the request goes again; an error ends the call. */
  #inputAnswer(exchange: InputExchange, id: string, response: JsonRpcResponse): void {
    const ask = exchange.waiting.get(id);
    if (ask === undefined) return;
    exchange.waiting.delete(id);
    this.#inputAsks.delete(id);
    if (response.error !== undefined || response.result === undefined) {
      this.#endExchange(exchange, 'another of the server\'s questions was answered with an error');
      return this.#finish(exchange.pending, errorResponse(exchange.pending.id, response.error?.code ?? ErrorCodes.InternalError, refusedAnswer(this.#opts.name, ask.method, response)));
    }
    exchange.answers[ask.key] = response.result;
    if (exchange.waiting.size === 0) void this.#retry(exchange);
  }

  /**
   * The same request again, on a new id, with the answers and the server's
   * state as it gave it. A modern server keeps nothing between the rounds,
   * so it goes to whichever process serves now (after a rollout, the new
   * one), once one is ready.
   */
  async #retry(exchange: InputExchange): Promise<void> {
    const ready = await this.#ready();
    // Cancelled, or its client gone, while it waited.
    if (!this.#exchanges.delete(exchange)) return;
    const { pending } = exchange;
    const session = this.#sessions.get(pending.session);
    const upstream = this.#upstream;
    if (session === undefined) return;
    if (!ready || upstream === undefined) return this.#finish(pending, this.#unavailable(pending.id));
    if (this.#eras.get(upstream) !== 'modern') {
      const why = `MCP server "${this.#opts.name}" was replaced, while this client answered its questions, by a process that does not speak ${MODERN_PROTOCOL_VERSION}; it is safe to retry`;
      return this.#finish(pending, errorResponse(pending.id, ErrorCodes.ServerRestarted, why));
    }
    const upstreamId = this.#nextId++;
    this.#pending.set(upstreamId, { ...pending, upstream });
    const params = this.#paramsFor(upstream, retryParams(pending.params, exchange.answers, exchange.requestState), undefined, session.capabilities);
    upstream.send({ jsonrpc: '2.0', id: upstreamId, method: pending.method!, ...(params !== undefined ? { params } : {}) });
  }

  /** The exchange is over: questions still out at the client are withdrawn (notifications/cancelled), so it stops asking its user. */
  #endExchange(exchange: InputExchange, reason: string): void {
    this.#exchanges.delete(exchange);
    const session = this.#sessions.get(exchange.pending.session);
    for (const id of exchange.waiting.keys()) {
      this.#inputAsks.delete(id);
      session?.deliver({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason } });
    }
    exchange.waiting.clear();
  }

  /** A client's request ends here with `answer` (not the server's). */
  #finish(pending: ClientPending, answer: JsonRpcResponse): void {
    this.#sessions.get(pending.session)?.deliver({ ...answer, id: pending.id }, pending.id);
    this.#done(pending);
  }

  #upstreamRequest(upstream: StdioUpstream, request: JsonRpcRequest): void {
    if (request.method === 'ping') {
      upstream.send({ jsonrpc: '2.0', id: request.id, result: {} });
      return;
    }
    // A process not yet serving asks nobody (clients do not know it yet).
    const asked = this.#next?.upstream === upstream ? { refused: 'none' as const } : this.#askedSession(request.method, upstream);
    if ('session' in asked) {
      const downstreamId = `apiary-${this.#nextId++}`;
      this.#serverRequests.set(downstreamId, { session: asked.session.id, upstream, upstreamId: request.id });
      asked.session.deliver({ ...request, id: downstreamId });
      return;
    }
    // apiary declared roots to the server on its clients' behalf; a request no client of its own asks about has none.
    if (request.method === 'roots/list' && asked.refused !== 'ambiguous') {
      upstream.send({ jsonrpc: '2.0', id: request.id, result: { roots: [] } });
      return;
    }
    upstream.send(errorResponse(request.id, asked.refused === 'ambiguous' ? ErrorCodes.InternalError : ErrorCodes.MethodNotFound, refusal(request.method, asked)));
  }

  /**
   * The client a server-to-client request goes to. Over stdio the wire does
   * not say which client request it serves (the SDK's relatedRequestId
   * stays inside the server), so it goes only where it cannot be anybody
   * else's: the one client with a request in flight at this process that can
   * cause one (a tool call, a prompt, a resource read: never a list or a
   * ping), and only when that client declared the capability. Sent to any
   * other client, it would carry one client's data to another.
   */
  #askedSession(method: string, upstream: StdioUpstream): AskedSession {
    const callers = new Set<string>();
    for (const pending of this.#pending.values()) {
      if (pending.kind === 'client' && pending.upstream === upstream && canAskBack(pending.method)) callers.add(pending.session);
    }
    if (callers.size === 0) return { refused: 'none' };
    if (callers.size > 1) return { refused: 'ambiguous', callers: callers.size };
    const session = this.#sessions.get([...callers][0]!);
    if (session === undefined) return { refused: 'none' };
    const capability = capabilityFor(method);
    if (capability !== undefined && session.capabilities?.[capability] === undefined) return { refused: 'undeclared', capability };
    return { session };
  }

  #upstreamNotification(upstream: StdioUpstream, notification: JsonRpcMessage & { method: string; params?: Record<string, unknown> }): void {
    if (notification.method === 'notifications/progress') {
      const token = notification.params?.['progressToken'];
      const route = typeof token === 'string' ? this.#progress.get(token) : undefined;
      if (route === undefined) return;
      const relatedId = [...this.#pending.values()].find((p) => p.kind === 'client' && p.progressToken === token);
      this.#sessions.get(route.session)?.deliver({ ...notification, params: { ...notification.params, progressToken: route.token } }, relatedId?.kind === 'client' ? relatedId.id : undefined);
      return;
    }
    if (notification.method === 'notifications/cancelled') {
      const upstreamId = notification.params?.['requestId'];
      for (const [downstreamId, route] of this.#serverRequests) {
        if (route.upstream === upstream && route.upstreamId === upstreamId) {
          this.#serverRequests.delete(downstreamId);
          this.#sessions.get(route.session)?.deliver({ ...notification, params: { ...notification.params, requestId: downstreamId } });
        }
      }
      return;
    }
    // apiary's own listen stream with a modern server: its acknowledgement is apiary's, its news goes out untagged (each listener gets its own tag).
    if (notification.method === 'notifications/subscriptions/acknowledged') return;
    // A resource update goes only to those subscribed to it (a modern server's came on apiary's listen stream, tagged).
    // A 2025 server's update of a URI nobody subscribed to through apiary goes to every client, as it always has.
    const updated = notification.method === 'notifications/resources/updated' ? notification.params?.['uri'] : undefined;
    const subscribers = typeof updated === 'string' ? this.#resourceSubs.get(updated) : undefined;
    if (subscribers !== undefined || (notification.method === 'notifications/resources/updated' && this.#eras.get(upstream) === 'modern')) {
      const untagged = withoutSubscriptionTag(notification);
      for (const id of subscribers ?? []) this.#sessions.get(id)?.deliver(untagged);
      return;
    }
    if (listChangedKind(notification) !== undefined && notification.params !== undefined) notification = withoutSubscriptionTag(notification);
    // Only the serving process speaks to every client; a replaced one's lists are no longer what clients see.
    if (upstream === this.#upstream || (this.#draining.has(upstream) && !notification.method.endsWith('/list_changed'))) this.#broadcast(notification);
  }

  #broadcast(message: JsonRpcMessage): void {
    for (const session of this.#sessions.values()) session.deliver(message);
    this.#listWatchers.tell(message);
  }

  /** A list change, told to 2026-07-28 listeners when 2025 sessions hear it (a filter edit, a promote, a restart, the server's own news). */
  watchLists(listener: (kind: ListKind) => void): () => void {
    return this.#listWatchers.add(listener);
  }

  /** The server will not come back soon (stuck, failed, backing off): fail requests at once, saying why. */
  markUnavailable(message: string): void {
    if (this.#upstream !== undefined) return;
    if (this.#state === 'failed' && this.#message === message) return;
    this.#set('failed', message);
  }

  /** Stops everything: the resource is gone. */
  close(): void {
    if (this.#next !== undefined) this.retire(this.#next.pid, 'the server was removed');
    for (const { pid } of [...this.#draining.values()]) this.retire(pid, 'the server was removed');
    this.detach('the server was removed');
    for (const id of [...this.#sessions.keys()]) this.closeSession(id);
  }
}

/** A list change from apiary's listen stream with a server, without that stream's subscription id (and without empty params). */
function withoutSubscriptionTag<T extends { params?: Record<string, unknown> }>(notification: T): T {
  const meta = notification.params?.['_meta'];
  if (typeof meta !== 'object' || meta === null || !(SUBSCRIPTION_ID in meta)) return notification;
  const { [SUBSCRIPTION_ID]: _tag, ...keptMeta } = meta as Record<string, unknown>;
  const { _meta: _old, ...rest } = notification.params!;
  const params = Object.keys(keptMeta).length > 0 ? { ...rest, _meta: keptMeta } : rest;
  const { params: _params, ...bare } = notification;
  return (Object.keys(params).length > 0 ? { ...bare, params } : bare) as T;
}
