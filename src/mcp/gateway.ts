/**
 * The MCP side of every server, owned by the controller: for stdio servers a
 * Bridge (one upstream session per process) behind an HttpEndpoint that
 * lives as long as the resource, so its URL survives restarts; for HTTP
 * servers an HttpProbe. Reconcilers ask it to converge and read its view.
 */
import { appendFile } from 'node:fs/promises';
import type { Transport } from '../api/manifests.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { messageOf } from '../errors.js';
import type { ObservedProcess } from '../runtime/runtime.js';
import type { StateLayout } from '../state/layout.js';
import { FILE_MODE } from '../util/atomic.js';
import { Aggregate, type AggregateMember, type RemoteMember } from './aggregate.js';
import { Bridge, toolDefinitions, toolStatus, type BridgeStatus, type ToolPins } from './bridge.js';
import { writeObservedTools } from '../state/observed-tools.js';
import { MODERN_PROTOCOL_VERSION } from './era.js';
import type { HealthFailure, HealthOptions } from './health.js';
import { HttpEndpoint } from './http-endpoint.js';
import { HttpProbe, type ProbeOptions } from './http-probe.js';
import { AGGREGATE_PORT_KEY, PortRegistry, upstreamPortKey } from './ports.js';
import { compileToolFilter, EXPOSE_ALL, refuseFilteredCall, withExposedTools, type ToolFilter, type ToolFilterSpec } from './tool-filter.js';
import { HttpProxy, type RemoteTarget } from './http-proxy.js';
import type { OAuthSettings } from './oauth-client.js';
import { OAuthRemote, type AuthorizationProblem } from './oauth-remote.js';
import { OAuthTokenStore, type MasterKeySource } from '../state/oauth-tokens.js';
import { defaultAccess, Gatekeeper } from './gatekeeper.js';
import type { AccessConfig } from '../api/gate.js';
import type { NamedSecret } from '../api/secret-redactor.js';
import { EgressRedaction, NO_REDACTION, type ServerRedaction } from './egress-redaction.js';
import { PinnedTools } from './pinned-tools.js';
import { toolsListed, type ToolsListed } from './upstream-sessions.js';
import { withPage, type ToolDefinition } from '../api/tool-lock.js';

/** How the log names the aggregate endpoint (audit records and resource metadata say `*`). */
const AGGREGATE_LABEL = '(aggregate)';

export interface McpView extends BridgeStatus {
  url?: string;
  /** A hosted server's login: why apiary cannot send it a valid token now. */
  authorization?: AuthorizationProblem;
  /** Why the endpoint is not listening (e.g. the port is taken). */
  endpointError?: string;
}

interface Entry {
  transport: Transport;
  port: number;
  health: HealthOptions;
  bridge?: Bridge;
  endpoint?: HttpEndpoint;
  endpointError?: string;
  probe?: HttpProbe;
  /** HTTP servers: apiary's proxy on the stable port, in front of the server's internal one. */
  proxy?: HttpProxy;
  upstreamPort?: number;
  /** HTTP and hosted servers: what clients see of the tools (spec.tools, and the pins judged on what the probe lists). */
  filter?: ToolFilter;
  pinned?: PinnedTools;
  /** The last listing judged, as JSON: the same one again (every client's tools/list) is neither written nor judged again. */
  listing?: string;
  /** That listing: a page of a paged answer is taken into it (withPage). */
  definitions?: ToolDefinition[];
  /** A hosted server (spec.remote): the fingerprint of its URL and headers, to notice a change. */
  remoteHash?: string;
  /** Being suspended or deleted: no longer one of the aggregate's members, while its process stops. */
  withdrawn?: boolean;
  /** A hosted server with spec.remote.auth: its token, kept fresh. */
  oauth?: OAuthRemote;
}

/** A hosted server as the gateway fronts it: headers hold resolved secret values (kept in memory only). */
export interface RemoteServer extends RemoteTarget {
  transport: 'streamable-http' | 'sse';
  /** The secret values in url and headers, kept out of every message the probe writes. */
  secrets: readonly string[];
  /** Fingerprint of url and headers, secret values only through a keyed hash. */
  hash: string;
  /** spec.remote.auth: log in with the tokens `apiary connect` sealed, read with this machine's key. */
  oauth?: { settings: OAuthSettings; key: MasterKeySource };
}

/** How long fronting a hosted server waits for its login's first token (a refresh may be under way). */
const OAUTH_START_WAIT_MS = 2_000;

export interface GatewayOptions {
  clock: Clock;
  logger: Logger;
  layout: StateLayout;
  onChange(name: string): void;
  /** The ports servers were last seen on, for rebuilding a damaged ports file. */
  recoverPorts?: () => Record<string, number>;
  /** The process `pid` is failing (pings, or a protocol error): it is to be restarted. */
  onUnhealthy(name: string, pid: number, message: string, reason?: HealthFailure): void;
  /** The bearer token every endpoint requires; absent: no authentication (up --no-auth). */
  token?: string;
  /** A server sent (or logged) the value of this secret key: it was replaced (at most once a minute per server and key). */
  onSecretRedacted?(name: string, secret: string, key: string): void;
}

export class Gateway {
  readonly #opts: GatewayOptions;
  readonly #entries = new Map<string, Entry>();
  #aggregate: { aggregate: Aggregate; endpoint: HttpEndpoint } | undefined;
  readonly ports: PortRegistry;
  /** Who may call, asked by every endpoint of this gateway (the token's default until the controller configures a Gateway manifest's). */
  readonly gate: Gatekeeper;
  readonly #redaction: EgressRedaction;

  constructor(options: GatewayOptions) {
    this.#opts = options;
    this.#redaction = new EgressRedaction(options.clock, (name, secret, key) => options.onSecretRedacted?.(name, secret, key));
    this.gate = new Gatekeeper(defaultAccess(options.token));
    this.ports = new PortRegistry(options.layout.root, {
      onProblem: (file, error) => options.logger.warn('ports file damaged; rewriting it (from the servers\' status when it cannot be read)', { file, error }),
      ...(options.recoverPorts ? { recover: options.recoverPorts } : {}),
    });
  }

  /** What a server offers may have changed: its reconcile, and the aggregate's clients, hear of it. */
  #changed(name: string): void {
    this.#opts.onChange(name);
    this.#aggregate?.aggregate.changed();
  }

  /** The Gateway manifest's and the policies' rules, for every endpoint from the next request on; `token` is kept from the options. */
  configure(config: Omit<AccessConfig, 'token'>): void {
    this.gate.configure({ ...config, ...(this.#opts.token !== undefined ? { token: this.#opts.token } : {}) });
  }

  /** The secret values the server is given now: kept out of what it sends its clients and of its log lines. */
  setSecrets(name: string, secrets: readonly NamedSecret[]): void {
    this.#redaction.set(name, secrets);
  }

  /** A line of the server's own output (its stderr, copied by the runtime), with its secrets replaced: for its log. */
  redactLine(name: string, line: string): string {
    return this.#redaction.line(name, line);
  }

  /** Makes sure the server's MCP plumbing exists for this transport and port. */
  async ensure(name: string, transport: Transport, port: number, health: HealthOptions, tools?: ToolFilterSpec, upstreamPort?: number, pins?: ToolPins): Promise<void> {
    let entry = this.#entries.get(name);
    if (entry !== undefined && (entry.transport !== transport || entry.port !== port || entry.upstreamPort !== upstreamPort || entry.remoteHash !== undefined)) {
      await this.remove(name);
      entry = undefined;
    }
    if (entry === undefined) {
      entry = { transport, port, health, ...(upstreamPort !== undefined ? { upstreamPort } : {}) };
      this.#entries.set(name, entry);
    }
    entry.health = health;
    this.#restore(entry);
    if (transport !== 'stdio') return this.#ensureProxy(name, entry, compileToolFilter(tools), undefined, pins);
    if (entry.bridge === undefined) {
      const bridge = new Bridge({
        name,
        clock: this.#opts.clock,
        health,
        onChange: () => this.#changed(name),
        onUnhealthy: (message) => {
          const pid = entry!.bridge?.status().pid;
          if (pid !== undefined) this.#opts.onUnhealthy(name, pid, message);
        },
        onProtocolError: (message, pid) => this.#opts.onUnhealthy(name, pid, message, 'ProtocolError'),
        onNoise: (line) => void appendFile(this.#opts.layout.logFile(name), `[stdout, not JSON-RPC] ${this.#redaction.line(name, line)}
`, { mode: FILE_MODE }).catch(() => undefined),
        redact: (message) => this.#redaction.message(name, message),
        onToolDefinitions: (definitions) => this.#keepListed(name, definitions),
      });
      // What the server says of its own lists reaches the aggregate's clients too (a modern one holds no session at the bridge).
      bridge.watchLists(() => this.#aggregate?.aggregate.memberListsChanged());
      entry.bridge = bridge;
    }
    entry.bridge.setToolFilter(compileToolFilter(tools));
    entry.bridge.setPins(pins);
    entry.bridge.setHealth(health);
    if (entry.endpoint === undefined) {
      const endpoint = new HttpEndpoint(entry.bridge, port, this.#endpointOptions(name));
      try {
        await endpoint.listen();
        entry.endpoint = endpoint;
        delete entry.endpointError;
        this.#opts.logger.info('MCP endpoint listening', { server: name, url: endpoint.url });
      } catch (err) {
        entry.endpointError = listenError(err, port);
      }
    }
  }

  /**
   * A hosted server (spec.remote) at apiary's own stable URL: the proxy adds
   * its headers (the token and spec.tools as for any server), and the probe
   * says whether it answers. A changed URL or header value (a rotated secret)
   * takes effect at once, without a new port.
   */
  async ensureRemote(name: string, port: number, remote: RemoteServer, health: HealthOptions, tools?: ToolFilterSpec, pins?: ToolPins): Promise<void> {
    let entry = this.#entries.get(name);
    if (entry !== undefined && (entry.transport !== remote.transport || entry.port !== port || entry.remoteHash === undefined)) {
      await this.remove(name);
      entry = undefined;
    }
    if (entry === undefined) {
      entry = { transport: remote.transport, port, health };
      this.#entries.set(name, entry);
    }
    entry.health = health;
    this.#restore(entry);
    const oauth = await this.#ensureOAuth(name, entry, remote);
    const target: RemoteTarget = { url: remote.url, label: remote.label, headers: oauth?.headers ?? remote.headers, ...(oauth !== undefined ? { reauthorize: (sent) => oauth.unauthorized(sent), fetch: oauth.fetch } : {}) };
    if (entry.remoteHash !== remote.hash) entry.proxy?.setRemote(target);
    await this.#ensureProxy(name, entry, compileToolFilter(tools), target, pins);
    if (entry.probe === undefined || entry.remoteHash !== remote.hash) {
      void entry.probe?.stop();
      const hosted = entry;
      // Nothing to restart: a hosted server that stops answering is reported, and probed again.
      entry.probe = this.#probe(name, hosted, { url: remote.url, label: remote.label, secrets: oauth?.secrets ?? remote.secrets, headers: target.headers, ...(oauth !== undefined ? { fetch: oauth.fetch } : {}) }, 0, (message) => {
        this.#opts.logger.warn('hosted server not answering', { server: name, reason: message });
        void hosted.probe?.stop();
        delete hosted.probe;
        this.#opts.onChange(name);
      });
    }
    entry.remoteHash = remote.hash;
  }

  /**
   * A hosted server's OAuth token, one keeper per fronting (made again when
   * the URL, headers or auth change): its headers object is what the proxy
   * and the probe send, updated in place at each refresh.
   */
  async #ensureOAuth(name: string, entry: Entry, remote: RemoteServer): Promise<OAuthRemote | undefined> {
    if (entry.oauth !== undefined && (remote.oauth === undefined || entry.remoteHash !== remote.hash)) {
      entry.oauth.stop();
      delete entry.oauth;
      this.#redaction.set(name, [], 'login');
    }
    if (remote.oauth === undefined || entry.oauth !== undefined) return entry.oauth;
    const oauth: OAuthRemote = new OAuthRemote({
      name,
      store: new OAuthTokenStore(this.#opts.layout, remote.oauth.key),
      settings: remote.oauth.settings,
      baseHeaders: remote.headers,
      baseSecrets: remote.secrets,
      clock: this.#opts.clock,
      logger: this.#opts.logger,
      onChange: () => {
        entry.proxy?.setRemote({ url: remote.url, label: remote.label, headers: oauth.headers, reauthorize: (sent) => oauth.unauthorized(sent), fetch: oauth.fetch });
        this.#redaction.set(name, loginSecrets(oauth.headers), 'login');
        this.#opts.onChange(name);
      },
    });
    entry.oauth = oauth;
    // The stored token is read at once; a refresh due now at a slow authorization server does not hold the reconcile up.
    await Promise.race([oauth.start(), new Promise((resolve) => this.#opts.clock.setTimeout(() => resolve(undefined), OAUTH_START_WAIT_MS))]);
    this.#redaction.set(name, loginSecrets(oauth.headers), 'login');
    return oauth;
  }

  /** What a server listed, whole, kept for `apiary tools lock|diff|approve` (`<state>/tools/NAME.json`). */
  #keepListed(name: string, definitions: ToolDefinition[]): void {
    void writeObservedTools(this.#opts.layout, name, definitions).catch((err: unknown) => this.#opts.logger.warn('cannot keep the tools a server listed', { server: name, error: messageOf(err) }));
  }

  /**
   * An HTTP server's stable URL: apiary's proxy, with the token, spec.tools
   * and the pins, in front of the server's internal port (or a hosted
   * server's URL); what it sends back is redacted as a stdio server's is.
   */
  async #ensureProxy(name: string, entry: Entry, filter: ToolFilter, remote?: RemoteTarget, pins?: ToolPins): Promise<void> {
    const upstream = remote ?? entry.upstreamPort;
    if (entry.proxy === undefined && upstream !== undefined) {
      // What the probe found of the server's era: a 2026-07-28 server's 2025 clients are served by apiary.
      const speaksModern = (): boolean => entry.probe?.status().protocolVersion === MODERN_PROTOCOL_VERSION;
      const proxy = new HttpProxy(entry.port, upstream, {
        name,
        speaksModern,
        gate: this.gate,
        redaction: this.#redaction.forServer(name),
        // What a client's tools/list finds (a server may change its tools without a restart or list_changed) is judged too.
        onToolsListed: (tools, whole) => this.#probeListed(name, entry, toolDefinitions(tools), whole),
      });
      try {
        await proxy.listen();
        entry.proxy = proxy;
        delete entry.endpointError;
        this.#opts.logger.info('MCP endpoint listening', { server: name, url: httpUrl(entry.transport, entry.port), ...(remote ? { remote: remote.label } : { upstreamPort: entry.upstreamPort }) });
      } catch (err) {
        entry.endpointError = listenError(err, entry.port);
      }
    }
    entry.pinned ??= new PinnedTools(name);
    const changed = entry.pinned.configure(filter, pins);
    this.#toolsJudged(name, entry, changed || entry.filter === undefined);
  }

  /** What clients see of an HTTP server's tools, at its proxy (the aggregate reads entry.filter); `changed`: its status and the aggregate hear of it. */
  #toolsJudged(name: string, entry: Entry, changed: boolean): void {
    entry.filter = entry.pinned?.filter ?? EXPOSE_ALL;
    entry.proxy?.setToolFilter(entry.filter);
    if (changed) this.#changed(name);
  }

  /**
   * What an HTTP server listed (to its probe, or in a client's tools/list): kept when new, and judged against the pins.
   * `whole` false: one page of a paged answer, whose tools replace or join those listed before, so that a tool changed on a
   * later page is withheld before the page passes. Removals are learnt only from a whole listing: the probe walks every
   * page itself at the handshake and after list_changed, where gathering a client's walk would need each session's cursors.
   */
  #probeListed(name: string, entry: Entry, listed: ToolDefinition[], whole = true): void {
    const redacted = this.#redaction.message(name, listed);
    const definitions = whole ? redacted : withPage(entry.definitions ?? [], redacted);
    const listing = JSON.stringify(definitions);
    if (listing === entry.listing) return;
    entry.listing = listing;
    entry.definitions = definitions;
    this.#keepListed(name, definitions);
    const changed = entry.pinned?.listed(definitions) ?? false;
    if (this.#entries.get(name) === entry) this.#toolsJudged(name, entry, changed);
  }

  /** Connects the server's current process (new pid: new upstream session). */
  attach(name: string, observed: ObservedProcess): void {
    const entry = this.#entries.get(name);
    if (entry === undefined || observed.stopping) return;
    if (entry.transport === 'stdio') {
      if (entry.bridge === undefined || observed.stdio === undefined) return;
      // The config hash keys the era verdict of a process that exited on the probe (a pod's link has none: '' is one per server, and a wrong verdict is forgotten when initialize is refused).
      if (entry.bridge.status().pid !== observed.pid) entry.bridge.attach(observed.stdio.stdin, observed.stdio.stdout, observed.pid, observed.configHash);
      return;
    }
    if (entry.probe?.pid === observed.pid) return;
    void entry.probe?.stop();
    // The probe talks to the server directly, behind the proxy.
    entry.probe = this.#probe(name, entry, { url: httpUrl(entry.transport, entry.upstreamPort ?? entry.port) }, observed.pid, (message) => this.#opts.onUnhealthy(name, observed.pid, message));
  }

  /** Readiness and liveness of an HTTP server (one apiary runs, pid; or a hosted one, pid 0) through an MCP session of apiary's own. */
  #probe(name: string, entry: Entry, at: Pick<ProbeOptions, 'url' | 'label' | 'secrets' | 'headers' | 'fetch'>, pid: number, onUnhealthy: (message: string) => void): HttpProbe {
    const transport = entry.transport === 'sse' ? 'sse' : 'streamable-http';
    return new HttpProbe(
      { ...at, name, transport, clock: this.#opts.clock, health: entry.health, onChange: () => this.#changed(name), onToolsChanged: () => entry.proxy?.toolsChanged(), onToolDefinitions: (definitions) => this.#probeListed(name, entry, definitions), onUnhealthy },
      pid,
    );
  }

  /**
   * A rolling update: a new process for the server is initialized beside the
   * serving one, and takes over at promote(). Only stdio servers: apiary
   * holds their sessions, so clients can move without noticing.
   */
  prepare(name: string, observed: ObservedProcess): void {
    const bridge = this.#entries.get(name)?.bridge;
    if (bridge === undefined || observed.stdio === undefined || observed.stopping) return;
    bridge.prepare(observed.stdio.stdin, observed.stdio.stdout, observed.pid, observed.configHash);
  }

  /** The initialized new process serves from now on; false when it is not initialized (yet). */
  promote(name: string): boolean {
    return this.#entries.get(name)?.bridge?.promote() ?? false;
  }

  /** Resolves true once the replaced process `pid` has answered what it held, false after `timeoutMs`. */
  drained(name: string, pid: number, timeoutMs: number): Promise<boolean> {
    return this.#entries.get(name)?.bridge?.drained(pid, timeoutMs) ?? Promise.resolve(true);
  }

  /** The process is gone. */
  detach(name: string, pid: number, reason: string): void {
    const entry = this.#entries.get(name);
    if (entry === undefined) return;
    if (entry.bridge?.status().pid === pid) entry.bridge.detach(reason);
    else entry.bridge?.retire(pid, reason);
    if (entry.probe?.pid === pid) {
      void entry.probe.stop();
      delete entry.probe;
    }
  }

  /** No process is coming soon: clients get this message at once instead of waiting. */
  unavailable(name: string, message: string): void {
    this.#entries.get(name)?.bridge?.markUnavailable(message);
  }

  view(name: string): McpView | undefined {
    const entry = this.#entries.get(name);
    if (entry === undefined) return undefined;
    if (entry.transport === 'stdio') {
      return {
        ...(entry.bridge?.status() ?? { state: 'down', sessions: 0 }),
        ...(entry.endpoint ? { url: entry.endpoint.url } : {}),
        ...(entry.endpointError ? { endpointError: entry.endpointError } : {}),
      };
    }
    // What the server said of itself (its tools' descriptions) holds none of its secret values either.
    const probed = this.#redaction.message(name, entry.probe?.status() ?? { state: 'down' as const, sessions: 0 });
    const authorization = entry.oauth?.problem();
    return {
      ...probed,
      ...(authorization !== undefined ? { authorization } : {}),
      ...(probed.tools !== undefined ? toolStatus(probed.tools, entry.filter ?? EXPOSE_ALL) : {}),
      ...(entry.pinned?.status() ?? {}),
      url: httpUrl(entry.transport, entry.port),
      ...(entry.endpointError ? { endpointError: entry.endpointError } : {}),
    };
  }

  /** The servers whose MCP session is ready now, for the aggregate endpoint: stdio ones by their bridge, HTTP ones through the probe's session. */
  readyMembers(): Map<string, AggregateMember> {
    const ready = new Map<string, AggregateMember>();
    for (const [name, entry] of this.#entries) {
      if (entry.withdrawn === true) continue;
      if (entry.bridge?.isReady()) ready.set(name, entry.bridge);
      else if (entry.probe?.status().state === 'ready') {
        const judged = entry;
        ready.set(name, httpMember(entry.probe, () => judged.filter ?? EXPOSE_ALL, { redaction: this.#redaction.forServer(name), onToolsListed: (tools, whole) => this.#probeListed(name, judged, toolDefinitions(tools), whole) }));
      }
    }
    return ready;
  }

  /** An endpoint's gate, and where what a request's handling threw is told: the log, by its message (the request got 500). */
  #endpointOptions(server: string): { gate: Gatekeeper; name: string; onError: (error: unknown) => void } {
    return {
      gate: this.gate,
      name: server === AGGREGATE_LABEL ? '*' : server,
      onError: (error) => this.#opts.logger.error('MCP request failed inside apiary', { server, error: messageOf(error) }),
    };
  }

    /** Serves every Ready server's tools at one URL, on the port remembered for it; returns the URL, or why not. */
  async startAggregate(version: string, port?: number): Promise<{ url: string } | { error: string }> {
    const aggregate = new Aggregate(this, version, { logger: this.#opts.logger });
    const chosen = port ?? (await this.ports.portFor(AGGREGATE_PORT_KEY));
    const endpoint = new HttpEndpoint(aggregate, chosen, this.#endpointOptions(AGGREGATE_LABEL));
    try {
      await endpoint.listen();
    } catch (err) {
      return { error: `cannot listen on 127.0.0.1:${chosen}: ${messageOf(err)}` };
    }
    this.#aggregate = { aggregate, endpoint };
    return { url: endpoint.url };
  }

  /**
   * The server is to stop (suspended, deleted): the aggregate drops it now,
   * and its clients hear list_changed at once, not after the process's stop
   * (which may take the whole grace). Its own endpoint serves until remove().
   */
  withdraw(name: string): void {
    const entry = this.#entries.get(name);
    if (entry === undefined || entry.withdrawn === true) return;
    entry.withdrawn = true;
    this.#aggregate?.aggregate.changed();
  }

  /** Wanted again before it was removed (unsuspended in the same pass): back in the aggregate. */
  #restore(entry: Entry): void {
    if (entry.withdrawn !== true) return;
    delete entry.withdrawn;
    this.#aggregate?.aggregate.changed();
  }

  async remove(name: string): Promise<void> {
    const entry = this.#entries.get(name);
    if (entry === undefined) return;
    this.#entries.delete(name);
    this.#aggregate?.aggregate.changed();
    entry.bridge?.close();
    await entry.endpoint?.close();
    await entry.proxy?.close();
    await entry.probe?.stop();
    entry.oauth?.stop();
  }

  /**
   * A server that is gone (its manifest deleted): its endpoint closes and its
   * ports leave ports.json. A suspended or restarted server keeps them (its
   * URL must survive that), so this is for deletion only.
   */
  async release(name: string): Promise<void> {
    await this.remove(name);
    this.#redaction.forget(name);
    await this.ports.forget(name);
    await this.ports.forget(upstreamPortKey(name));
  }

  /** Where the aggregate endpoint listens, once it does. */
  get aggregateUrl(): string | undefined {
    return this.#aggregate?.endpoint.url;
  }

  async closeAggregate(): Promise<void> {
    this.#aggregate?.aggregate.close();
    await this.#aggregate?.endpoint.close();
    this.#aggregate = undefined;
  }

  async closeAll(): Promise<void> {
    await this.closeAggregate();
    await Promise.all([...this.#entries.keys()].map((name) => this.remove(name)));
  }
}

/** What the gateway gives an HTTP member: the server's redaction, and who judges a whole tools/list result against the pins. */
export interface MemberHooks {
  redaction?: ServerRedaction;
  onToolsListed?: ToolsListed;
}

/**
 * An HTTP server as the aggregate sees it: a session of each client's own
 * with the server, behind the server's spec.tools and pins (`filter`: as
 * they are now; a whole listing a session gets is judged before it is
 * filtered); what the server sends (answers, progress, its questions) with
 * its secret values taken out.
 */
export function httpMember(probe: HttpProbe, filter: ToolFilter | (() => ToolFilter), hooks: MemberHooks = {}): RemoteMember {
  const current = typeof filter === 'function' ? filter : () => filter;
  const redaction = hooks.redaction ?? NO_REDACTION;
  return {
    key: probe,
    tools: () => (probe.status().tools ?? []).filter((t) => current().exposes(t.name)),
    async openSession(capabilities, onRequest, options) {
      const session = await probe.openSession(capabilities, (method, params, signal) => onRequest(method, redaction.message(params), signal), options);
      return {
        close: () => session.close(),
        async request(method, params, timeoutMs, signal, onProgress) {
          const refused = method === 'tools/call' ? refuseFilteredCall(current(), 0, params['name']) : undefined;
          if (refused !== undefined) return refused;
          const answer = redaction.message(await session.request(method, params, timeoutMs, signal, onProgress && ((progress) => onProgress(redaction.message(progress)))));
          if (method !== 'tools/list') return answer;
          toolsListed(hooks.onToolsListed, params, answer);
          return withExposedTools(current(), answer) ?? answer;
        },
      };
    },
  };
}

/**
 * The access token apiary's login sends a hosted server (spec.remote.auth):
 * a server that echoes it gets it replaced as any secret value, named by
 * where it comes from, as no Secret holds it.
 */
function loginSecrets(headers: Record<string, string>): NamedSecret[] {
  const token = /^Bearer (.+)$/.exec(headers['Authorization'] ?? '')?.[1];
  return token === undefined ? [] : [{ secret: 'spec.remote.auth', key: 'access_token', value: token }];
}

/** Why an endpoint (apiary's own, or the proxy in front of an HTTP server) cannot listen, for status. */
function listenError(err: unknown, port: number): string {
  return (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? `port ${port} is already in use on 127.0.0.1` : `cannot listen on 127.0.0.1:${port}: ${messageOf(err)}`;
}

export function httpUrl(transport: Transport, port: number): string {
  return `http://127.0.0.1:${port}/${transport === 'sse' ? 'sse' : 'mcp'}`;
}
