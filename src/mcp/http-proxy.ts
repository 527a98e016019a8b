/**
 * apiary's stable URL in front of a server that speaks HTTP itself
 * (streamable-http, sse): the server listens on an internal $PORT, and this
 * proxy, on the URL clients know, applies what apiary's own endpoint applies:
 * the Host/Origin checks, the bearer token, and spec.tools (a filtered tool is
 * taken out of every tools/list answer, JSON or event stream, and a
 * tools/call on it is refused). Everything else passes through as it is,
 * streams included, except a 2026-07-28 request: that one is served by the
 * ModernFront over a session of the SDK v2 client's with the server
 * (upstream-sessions.ts), which speaks to the server in its own revision.
 * And when the server speaks 2026-07-28 (its probe says so), which has no
 * 2025 sessions, a 2025 client's session is apiary's: the 2025 leg of an
 * HttpEndpoint serves it over legacy-sessions.ts, which translates.
 * On every path, what the server sends towards a client passes the
 * gateway's redaction of the secret values resolved for it: a JSON body
 * whole, an event stream event by event (it stays a stream).
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { EventSourceMessage } from 'eventsource-parser';
import { headerValueFlaw } from '../api/remote.js';
import { HttpEndpoint } from './http-endpoint.js';
import { GatedHost, inert, PassThroughGate, retryAfterHeader, serverNaming, type Tracked } from './call-gate.js';
import { defaultAccess, Gatekeeper } from './gatekeeper.js';
import { LegacySessions } from './legacy-sessions.js';
import { loopbackRefusal } from '../util/loopback.js';
import { BODY_TIMING, readBody, type BodyTiming } from '../util/read-body.js';
import { eventStreamRewriter } from './event-stream.js';
import { ErrorCodes, errorResponse, type Id } from './jsonrpc.js';
import { ModernFront, modernRoute, withSortedTools } from './modern.js';
import { NO_REDACTION, type ServerRedaction } from './egress-redaction.js';
import { EXPOSE_ALL, refuseFilteredCall, withExposedTools, type ToolFilter } from './tool-filter.js';
import { UpstreamSessions, type ToolsListed, type UpstreamTarget } from './upstream-sessions.js';

const MAX_BODY = 4 * 1024 * 1024;

/** A hosted server: its URL, and the headers apiary adds (values resolved from secrets; never logged). */
export interface RemoteTarget {
  url: string;
  /** What messages call it: origin and path as the manifest writes them (remoteLabel), never the expanded URL. */
  label: string;
  headers: Record<string, string>;
  /** A login apiary keeps (spec.remote.auth): the server refused the Authorization sent; a new token to send again with, or why there is none. */
  reauthorize?: (sent: string | undefined) => Promise<Reauthorized>;
  /** fetch for the SDK sessions with the server (the login's, which refreshes once on a 401). */
  fetch?: typeof fetch;
}

export type Reauthorized = { retry: true } | { retry: false; message: string };

export class HttpProxy {
  readonly #port: number;
  readonly #upstreamPort: number;
  #remote: { url: URL; label: string; headers: Record<string, string>; reauthorize?: RemoteTarget['reauthorize']; fetch?: typeof fetch } | undefined;
  /** Who may call, shared with the gateway's other endpoints. */
  readonly #gate: Gatekeeper;
  /** The server's name, as audit records and resource metadata give it. */
  readonly #name: string;
  #filter: ToolFilter = EXPOSE_ALL;
  #server: Server | undefined;
  /** Legacy SSE transport: session id -> the client's event stream, where its answers go (refusals too). */
  readonly #legacyStreams = new Map<string, ServerResponse>();
  readonly #bodyTiming: BodyTiming;
  readonly #modern: ModernFront;
  /** The modern front's sessions with the server, which tell its listen streams of list changes. */
  readonly #sessions: UpstreamSessions;
  /** 2025 clients' sessions, held here when the server speaks 2026-07-28 (it has none of its own). */
  readonly #legacySessions: LegacySessions;
  /** Their 2025 leg, made at the first such request (most servers speak 2025 and never need it). */
  #legacyFront: HttpEndpoint | undefined;
  /** The caller's rules on the pass-through path (2025 clients of a 2025 server). */
  readonly #passThrough: PassThroughGate;
  /** Whether the server speaks 2026-07-28, as its probe found. */
  readonly #speaksModern: () => boolean;
  /** The secret values resolved for the server, taken out of what it sends. */
  readonly #redaction: ServerRedaction;
  /** Told of each whole tools/list result (redacted) before it is filtered: the pins judge what the server lists now. */
  readonly #onToolsListed: ToolsListed | undefined;

  /** `upstream`: the internal port of a server apiary runs, or a hosted server's URL and headers. `bodyTiming`: how long a request body may take (tests shorten it). */
  constructor(
    port: number,
    upstream: number | RemoteTarget,
    options: { name?: string; token?: string; gate?: Gatekeeper; bodyTiming?: BodyTiming; speaksModern?: () => boolean; redaction?: ServerRedaction; onToolsListed?: ToolsListed } = {},
  ) {
    this.#port = port;
    this.#upstreamPort = typeof upstream === 'number' ? upstream : 0;
    if (typeof upstream !== 'number') this.setRemote(upstream);
    this.#gate = options.gate ?? new Gatekeeper(defaultAccess(options.token));
    this.#name = options.name ?? '*';
    this.#bodyTiming = options.bodyTiming ?? BODY_TIMING;
    const redaction = (this.#redaction = options.redaction ?? NO_REDACTION);
    const hooks = { redact: <M>(m: M): M => redaction.message(m), ...(options.onToolsListed ? { onToolsListed: options.onToolsListed } : {}) };
    this.#onToolsListed = options.onToolsListed;
    this.#sessions = new UpstreamSessions(() => this.#upstreamTarget(), () => this.#filter, hooks);
    const gate = this.#gate;
    this.#passThrough = new PassThroughGate(serverNaming(this.#name));
    this.#modern = new ModernFront(new GatedHost(this.#sessions, () => gate.config, serverNaming(this.#name)), { tokenRequired: () => this.#gate.authRequired });
    this.#speaksModern = options.speaksModern ?? (() => false);
    this.#legacySessions = new LegacySessions(() => this.#upstreamTarget(), () => this.#filter, options.name, hooks);
  }

  #legacyEndpoint(): HttpEndpoint {
    this.#legacyFront ??= new HttpEndpoint(this.#legacySessions, this.#port, { gate: this.#gate, name: this.#name, bodyTiming: this.#bodyTiming });
    return this.#legacyFront;
  }

  /** A 2025 client's request that apiary serves itself: the server speaks 2026-07-28, or the session is one apiary holds already. */
  #servesLegacyClient(req: IncomingMessage): boolean {
    if ((req.url ?? '/').split('?')[0] !== '/mcp') return false;
    const session = req.headers['mcp-session-id'];
    return this.#speaksModern() || (typeof session === 'string' && this.#legacySessions.hasSession(session));
  }

  /** Where a modern request's session with the server goes: the local server's /mcp, or the hosted server's URL with its headers. */
  #upstreamTarget(): UpstreamTarget {
    const remote = this.#remote;
    if (remote !== undefined) return { url: remote.url, headers: remote.headers, label: remote.label, ...(remote.fetch ? { fetch: remote.fetch } : {}) };
    return { url: new URL(`http://127.0.0.1:${this.#upstreamPort}/mcp`), headers: {}, label: `127.0.0.1:${this.#upstreamPort}` };
  }

  /**
   * A hosted server's new URL or header values (a secret rotated, an OAuth
   * token refreshed): what the next request is sent with, on the sessions
   * already open too (they hold this headers object, changed in place).
   */
  setRemote(target: RemoteTarget): void {
    const headers = this.#remote?.headers ?? {};
    for (const name of Object.keys(headers)) delete headers[name];
    Object.assign(headers, target.headers);
    const moved = this.#remote !== undefined && this.#remote.url.href !== new URL(target.url).href;
    this.#remote = { url: new URL(target.url), label: target.label, headers, ...(target.reauthorize ? { reauthorize: target.reauthorize } : {}), ...(target.fetch ? { fetch: target.fetch } : {}) };
    // Sessions kept for the next 2026-07-28 request are with the old URL's server.
    if (moved) this.#sessions.dropKept();
  }

  get upstreamPort(): number {
    return this.#upstreamPort;
  }

  /**
   * spec.tools at the proxy: a change is news to the modern listeners and to
   * the 2025 sessions apiary holds (those passed through to a 2025 server
   * hear only its news).
   */
  setToolFilter(filter: ToolFilter): void {
    const changed = filter.key !== this.#filter.key;
    this.#filter = filter;
    if (changed) this.#toolsChanged();
  }

  /** The server said its tools changed (its probe heard it): the modern listeners, and the 2025 sessions apiary holds, hear it too. */
  toolsChanged(): void {
    this.#toolsChanged();
  }

  #toolsChanged(): void {
    this.#sessions.listChanged('tools');
    this.#legacySessions.listChanged('tools');
  }

  listen(): Promise<void> {
    const server = createServer((req, res) => void this.#handle(req, res).catch((err: unknown) => this.#failed(res, err)));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', () => {
        server.off('error', reject);
        this.#server = server;
        resolve();
      });
    });
  }

  get port(): number {
    return (this.#server?.address() as AddressInfo | null)?.port ?? this.#port;
  }

  async close(): Promise<void> {
    await this.#modern.close();
    this.#sessions.dropKept();
    await this.#legacyFront?.close();
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #fail(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers }).end(JSON.stringify(errorResponse(null, ErrorCodes.InvalidRequest, message)));
  }

  /**
   * Nothing a request does may take the controller down: whatever threw is
   * answered 502 by its code alone (a message could quote a header's value).
   */
  #failed(res: ServerResponse, err: unknown): void {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (!res.headersSent) this.#fail(res, 502, `apiary could not pass this request on${typeof code === 'string' ? ` (${code})` : ''}`);
    else res.destroy();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const refused = loopbackRefusal(req);
    if (refused !== undefined) return this.#fail(res, 403, `${refused} (DNS rebinding protection)`);
    // apiary's own metadata (mode oidc), never the server's: the token a client gets is for apiary.
    const metadata = this.#gate.resourceMetadata(req, this.#name);
    if (metadata !== undefined) return this.#answer(res, 200, metadata);
    const auth = await this.#gate.authenticate(req, this.#name);
    if ('challenge' in auth) return this.#fail(res, auth.challenge.status, auth.challenge.message, auth.challenge.headers);
    let body: Buffer | undefined;
    let listsTools: boolean | 'whole' = false;
    let tracked: Map<Id, Tracked> | undefined;
    const config = this.#gate.config;
    const legacyClient = this.#servesLegacyClient(req);
    // A session the server gave another caller (a 2025 client's, passed through): unknown to this one, whatever it sends.
    if (!legacyClient && !inert(config) && !this.#passThrough.mayUse(req)) return this.#fail(res, 404, 'unknown session');
    if (req.method === 'POST') {
      const read = await readBody(req, res, { limit: MAX_BODY, timing: this.#bodyTiming });
      // A client gone mid-body has nobody to answer; a body too large or too slow is answered (413, 408).
      if (!read.ok) return read.reason === 'Aborted' ? undefined : this.#fail(res, read.status, read.message);
      body = read.body;
      const parsed = (req.url ?? '/').split('?')[0] === '/mcp' ? parseJsonBody(body) : undefined;
      const route = parsed === undefined ? undefined : modernRoute(req, parsed.value);
      if (route !== undefined) return this.#modern.serve(req, res, parsed!.value, route);
      if (legacyClient) return this.#legacyEndpoint().serve(req, res, body);
      listsTools = asksForTools(parsed?.value) ? (asksForWholeList(parsed?.value) ? 'whole' : true) : false;
      const gated = !inert(config);
      if (this.#filter !== EXPOSE_ALL || gated) {
        // What the server gets is exactly what was checked: a body apiary cannot read is refused, never passed on.
        const message = parseJsonBody(body);
        if (message === undefined) return this.#answer(res, 400, errorResponse(null, ErrorCodes.ParseError, UNREADABLE_BODY));
        const refusal = this.#refusedCall(message.value);
        if (refusal !== undefined) return this.#refuse(req, res, refusal);
        let value = message.value;
        if (gated) {
          const admitted = this.#passThrough.admit(req, config, value);
          if ('refusal' in admitted) return this.#refuse(req, res, admitted.refusal);
          value = admitted.value;
          tracked = admitted.tracked;
        }
        body = Buffer.from(asciiJson(value));
      }
    }
    if (legacyClient) return this.#legacyEndpoint().serve(req, res);
    // The legacy HTTP+SSE transport answers on its GET stream, which is where its tools/list answers are read.
    const legacyStream = req.method === 'GET' && (req.url ?? '/').split('?')[0] === '/sse';
    if (req.method === 'DELETE') this.#passThrough.forget(req);
    // A legacy stream's answers are to requests apiary did not read here: a tools/list result without nextCursor is taken as whole.
    this.#forward(req, res, body, legacyStream ? 'whole' : listsTools, tracked);
  }

  #answer(res: ServerResponse, status: number, message: unknown): void {
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(message));
  }

  /** A refused call is answered where its client listens: the legacy transport's event stream (the POST itself only gets 202), else the POST. */
  #refuse(req: IncomingMessage, res: ServerResponse, refusal: unknown): void {
    const session = new URL(req.url ?? '/', 'http://proxy').searchParams.get('sessionId');
    const stream = session === null ? undefined : this.#legacyStreams.get(session);
    if (stream !== undefined) {
      stream.write(`event: message\ndata: ${JSON.stringify(refusal)}\n\n`);
      res.writeHead(202).end('Accepted');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', ...retryAfterHeader(Array.isArray(refusal) ? refusal : [refusal]) }).end(JSON.stringify(refusal));
  }

  /** A tools/call on a filtered tool (or with no tool name apiary can check) is answered here and never reaches the server. */
  #refusedCall(message: unknown): unknown {
    const refuse = (m: unknown): unknown => {
      const { method, params, id } = (m ?? {}) as { method?: unknown; params?: { name?: unknown }; id?: unknown };
      return method === 'tools/call' ? refuseFilteredCall(this.#filter, typeof id === 'string' || typeof id === 'number' ? id : null, params?.name) : undefined;
    };
    if (!Array.isArray(message)) return refuse(message);
    const refusals = message.map(refuse);
    // A batch with a filtered call is answered whole: apiary cannot split one POST's answer between itself and the server.
    return refusals.some((r) => r !== undefined) ? message.map((m, i) => refusals[i] ?? errorResponse(null, ErrorCodes.InvalidRequest, 'not sent: another call in this batch names a filtered tool')) : undefined;
  }

  /** Where a request goes: the local server's port as it came, or the hosted server (its endpoint path for apiary's). */
  #destination(req: IncomingMessage): { send: typeof request; host: string; port: number; path: string; hostHeader: string; extra: Record<string, string> } {
    const remote = this.#remote;
    if (remote === undefined) return { send: request, host: '127.0.0.1', port: this.#upstreamPort, path: req.url ?? '/', hostHeader: `127.0.0.1:${this.#upstreamPort}`, extra: {} };
    const incoming = new URL(req.url ?? '/', 'http://apiary');
    const own = incoming.pathname === '/mcp' || incoming.pathname === '/sse';
    const path = own ? `${remote.url.pathname}${incoming.search || remote.url.search}` : `${incoming.pathname}${incoming.search}`;
    const https = remote.url.protocol === 'https:';
    return { send: https ? httpsRequest : request, host: remote.url.hostname, port: Number(remote.url.port || (https ? 443 : 80)), path, hostHeader: remote.url.host, extra: remote.headers };
  }

  /**
   * `listsTools`: the answer may hold a tools/list result, read to sort the tools by name (and filter them; 'whole': one
   * asked without a cursor, whose result without nextCursor is what the server lists, judged against the pins); `tracked`: the
   * requests the caller's rules let through, completed (a list filtered, a call recorded) as their answers pass; `retried`:
   * this is the one retry after a hosted server's 401 (its token refreshed).
   */
  #forward(req: IncomingMessage, res: ServerResponse, body: Buffer | undefined, listsTools: boolean | 'whole', tracked?: Map<Id, Tracked>, retried = false): void {
    const to = this.#destination(req);
    for (const [name, value] of Object.entries(to.extra)) {
      const flaw = headerValueFlaw(value);
      if (flaw !== undefined) return this.#fail(res, 502, `the header ${name} that spec.remote.headers sets holds ${flaw} and cannot be sent; nothing was forwarded`);
    }
    const headers: Record<string, string | string[] | undefined> = { ...req.headers, host: to.hostHeader };
    // apiary's token is for apiary; the server never sees it (a hosted server gets the headers its manifest sets).
    delete headers['authorization'];
    // An answer apiary rewrites (filter, redaction) must be one it can read: never compressed.
    delete headers['accept-encoding'];
    Object.assign(headers, to.extra);
    if (body !== undefined) {
      // The body is sent whole, with its length; a client's chunking ends here.
      delete headers['transfer-encoding'];
      headers['content-length'] = String(body.length);
    }
    const upstream = to.send({ host: to.host, port: to.port, method: req.method, path: to.path, headers }, (answer) => {
      const reauthorize = this.#remote?.reauthorize;
      // apiary's login was refused (the token expired early, or was revoked): refreshed once and sent again, never passed on.
      if (answer.statusCode === 401 && reauthorize !== undefined) {
        answer.resume();
        void reauthorize(to.extra['Authorization']).then((outcome) => {
          if (outcome.retry && !retried) return this.#forward(req, res, body, listsTools, tracked, true);
          const why = outcome.retry ? 'it refused the new token too' : outcome.message;
          if (!res.headersSent) this.#fail(res, 502, `the hosted server at ${this.#remote?.label ?? 'its URL'} refused apiary's token: ${why}`);
        });
        return;
      }
      const type = String(answer.headers['content-type'] ?? '');
      const stream = type.includes('text/event-stream');
      // Event streams are always read event by event (a filter may come later; a legacy stream must be known by its session).
      const redacting = this.#redaction.active();
      const rewriting = this.#filter !== EXPOSE_ALL || listsTools || tracked !== undefined || redacting;
      // Under redaction a text body that is no JSON (a server's error page) is read too: it may quote a value.
      const filtering = stream || (rewriting && (type.includes('application/json') || (redacting && type.startsWith('text/'))));
      const outHeaders = { ...answer.headers };
      if (filtering) delete outHeaders['content-length'];
      if (filtering && !stream) {
        // Read whole and rewritten: it goes on with its new length, as the server sent it with its own.
        const chunks: Buffer[] = [];
        let received = 0;
        let done = false;
        const finish = (): void => {
          if (done) return;
          done = true;
          const text = Buffer.from(this.#filterJsonText(Buffer.concat(chunks).toString('utf8'), this.#passThrough.answered(tracked), listsTools), 'utf8');
          res.writeHead(answer.statusCode ?? 502, { ...outHeaders, 'content-length': String(text.length) }).end(text);
        };
        // With its length given, the body is whole at its last byte: answered then, not a turn of the loop later at 'end'.
        const length = Number(answer.headers['content-length'] ?? NaN);
        answer.on('data', (d: Buffer) => {
          chunks.push(d);
          received += d.length;
          if (received === length) finish();
        });
        answer.on('end', finish);
        return;
      }
      res.writeHead(answer.statusCode ?? 502, outHeaders);
      if (!filtering) {
        answer.pipe(res);
        return;
      }
      // An event stream: each event's data rewritten as it arrives (a legacy stream's answers are its session's).
      let legacySession: string | undefined;
      const events = eventStreamRewriter(
        (text) => res.write(text),
        (data) => (rewriting ? this.#filterJsonText(data, this.#passThrough.answered(tracked ?? this.#passThrough.legacy(legacySession)), listsTools) : data),
        (event) => {
          legacySession = this.#noteLegacyStream(req, event, res) ?? legacySession;
        },
      );
      answer.setEncoding('utf8');
      answer.on('data', (chunk: string) => events.feed(chunk));
      answer.on('end', () => res.end());
    });
    upstream.on('error', (err) => {
      if (!res.headersSent) this.#fail(res, 502, this.#remote ? `the hosted server at ${this.#remote.label} is not answering (${(err as NodeJS.ErrnoException).code ?? 'no answer'})` : `the server is not answering on its port (${err.message})`);
      else res.end();
    });
    res.on('close', () => {
      upstream.destroy();
      // Calls whose answer never came back on this response: their client went away.
      this.#passThrough.gone(tracked);
    });
    this.#passThrough.sessionFrom(req, upstream);
    upstream.end(body);
  }

  /** A legacy stream's `endpoint` event names its session: a refused call on that session is answered on this stream. */
  #noteLegacyStream(req: IncomingMessage, event: EventSourceMessage, res: ServerResponse): string | undefined {
    if (event.event !== 'endpoint') return undefined;
    const session = /sessionId=([^&\s]+)/.exec(event.data)?.[1];
    if (session === undefined) return undefined;
    this.#passThrough.legacyOpened(req, session);
    this.#legacyStreams.set(session, res);
    res.on('close', () => {
      this.#legacyStreams.delete(session);
      this.#passThrough.closed(session);
    });
    return session;
  }

  /**
   * The server's secret values taken out first; then a tools/list result (alone or in a batch) with the filtered tools
   * taken out and the rest sorted by name (`listsTools`: each listing, a page or whole, is judged against the pins before);
   * an answer to a tracked request as the caller may see it (`complete`: its record and span done); anything else as it was.
   */
  #filterJsonText(text: string, complete?: (m: unknown) => unknown, listsTools: boolean | 'whole' = false): string {
    const redacting = this.#redaction.mayHold(text);
    // No value can be in it and nothing else is asked of it: it goes on as it came, unparsed.
    if (!redacting && complete === undefined && listsTools === false && this.#filter === EXPOSE_ALL) return text;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return this.#redaction.text(text);
    }
    const value = redacting ? this.#redaction.message(parsed) : parsed;
    let changed = value !== parsed;
    const filter = (m: unknown): unknown => {
      if (listsTools !== false) this.#learn(m, listsTools === 'whole');
      const completed = complete?.(m) ?? m;
      if (completed !== m) changed = true;
      m = completed;
      const filtered = withExposedTools(this.#filter, m);
      if (filtered === undefined) return m;
      changed = true;
      const answer = filtered as { result: Record<string, unknown> };
      return { ...answer, result: withSortedTools(answer.result) };
    };
    const out = Array.isArray(value) ? value.map(filter) : filter(value);
    return changed ? JSON.stringify(out) : text;
  }

  /**
   * A tools/list result: the pins judge its tools before it is filtered, a page's as a whole listing's (a tool changed on
   * page 2 is withheld as one on page 1). `askedWhole`: asked without a cursor, so without nextCursor it is all the server lists.
   */
  #learn(message: unknown, askedWhole: boolean): void {
    const result = (message as { result?: { tools?: unknown; nextCursor?: unknown } } | null)?.result;
    if (Array.isArray(result?.tools)) this.#onToolsListed?.(result.tools as unknown[], askedWhole && result.nextCursor === undefined);
  }
}

/** Whether a POST body is one tools/list request without a cursor: its answer, unless paged, is the server's whole listing. */
function asksForWholeList(body: unknown): boolean {
  const m = body as { method?: unknown; params?: { cursor?: unknown } } | null;
  return !Array.isArray(body) && m?.method === 'tools/list' && m.params?.cursor === undefined;
}

/** Whether a POST body (or an element of its batch) is a tools/list request. */
function asksForTools(body: unknown): boolean {
  const asks = (m: unknown): boolean => (m as { method?: unknown } | null)?.method === 'tools/list';
  return Array.isArray(body) ? body.some(asks) : asks(body);
}

const UNREADABLE_BODY = 'the body is not JSON in UTF-8; apiary checks every call against spec.tools and passes on only what it could read';

/**
 * A POST body as the server would read it: UTF-8 (a leading byte-order mark
 * dropped, as TextDecoder and most servers do), then JSON. Undefined when it
 * is not both: invalid bytes are refused rather than guessed at.
 */
export function parseJsonBody(body: Buffer): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body)) };
  } catch {
    return undefined;
  }
}

/**
 * JSON with every character past ASCII written as a \u escape: the same
 * message in any charset a server may assume for the body.
 */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
