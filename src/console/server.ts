/**
 * The web console, served by the controller on 127.0.0.1: the built page
 * (no CDN, works offline), the JSON API and its event stream. Every request
 * passes the Host allowlist; the API and its stream need a session token
 * (traded for a one-time login code) or the API token, as a bearer. Cookies
 * are never read: see auth.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from '../util/logger.js';
import type { KeyStore } from '../crypto/keys.js';
import { ApiaryError, messageOf } from '../errors.js';
import type { McpView } from '../mcp/gateway.js';
import { routeApi, type ApiContext } from './api.js';
import type { CatalogOptions } from '../catalog/catalog.js';
import { RegistryCache } from '../catalog/registry-cache.js';
import { ConsoleAuth, LOGIN_CODE_MS, rememberedPort } from './auth.js';
import { Feed, type FeedSource } from './feed.js';
import { LastKnownTools } from './last-tools.js';
import { AuditVerifier } from './audit-api.js';
import { PendingLogins } from './connect-api.js';
import { loopbackRefusal } from '../util/loopback.js';
import { bearerToken } from '../util/tokens.js';
import { EmptyBody, LoginBody, readBodyAs } from './bodies.js';
import { checkStateChange, HttpError, SECURITY_HEADERS, sendError, sendJson } from './http.js';

export interface ConsoleBackend extends FeedSource {
  mcpView(name: string): McpView | undefined;
}

export interface ConsoleOptions {
  dir: string;
  stateDir: string;
  keys: KeyStore;
  /** The Catalog page's sources (up --catalog, --registry); the bundled catalog by default. */
  catalog?: CatalogOptions;
  logger: Logger;
  backend: ConsoleBackend;
  version: string;
  /** A port asked for (`--ui-port`); otherwise the last one, if free, else any free one. */
  port?: number;
  /** Where the built page is (dist/console); found beside the CLI when not given. */
  assetsDir?: string;
}

const ASSET_TYPES: Record<string, string> = {
  '/': 'text/html; charset=utf-8',
  '/app.js': 'text/javascript; charset=utf-8',
  '/app.css': 'text/css; charset=utf-8',
  '/favicon.svg': 'image/svg+xml',
};

/** dist/console, found from the running script (bin/apiary, the bundle, or a test runner inside the checkout). */
export function findAssetsDir(): string | undefined {
  const starts = [process.argv[1] ? dirname(resolve(process.argv[1])) : undefined, process.cwd()].filter((s): s is string => s !== undefined);
  for (const start of starts) {
    for (let dir = start; ; dir = dirname(dir)) {
      for (const candidate of [join(dir, 'dist', 'console'), join(dir, 'console')]) {
        if (existsSync(join(candidate, 'index.html')) && existsSync(join(candidate, 'app.js'))) return candidate;
      }
      if (dirname(dir) === dir) break;
    }
  }
  return undefined;
}

export class ConsoleServer {
  readonly #opts: ConsoleOptions;
  readonly #auth: ConsoleAuth;
  readonly #feed: Feed;
  readonly #assets = new Map<string, Buffer>();
  /** The Catalog page's sources, with one cache of registry answers for every request. */
  readonly #catalog: CatalogOptions;
  /** API answers still open (the streams, mostly), by the bearer that opened them: a sign-out ends its own. */
  readonly #open = new Map<string, Set<ServerResponse>>();
  /** The tools each server last listed, for its page once nothing runs. */
  readonly #lastTools = new LastKnownTools();
  readonly #auditVerifier = new AuditVerifier();
  readonly #logins: PendingLogins;
  #unobserveTools: (() => void) | undefined;
  #notingTools = false;
  #server: Server | undefined;
  #port = 0;

  constructor(options: ConsoleOptions) {
    this.#opts = options;
    this.#auth = new ConsoleAuth(options.stateDir);
    this.#feed = new Feed(options.backend);
    this.#logins = new PendingLogins(options.logger);
    this.#catalog = { cache: new RegistryCache(), ...options.catalog };
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** A fresh link a person opens to sign in: it works once, within LOGIN_CODE_MS. */
  loginLink(): Promise<string> {
    return this.#auth.loginLink();
  }

  get apiToken(): string {
    return this.#auth.apiToken;
  }

  async start(): Promise<void> {
    const assetsDir = this.#opts.assetsDir ?? findAssetsDir();
    if (assetsDir === undefined) {
      throw new ApiaryError('NotFound', 'the console page is not built (dist/console is missing)', { hints: ['Build it with: npm run build', 'Or run without the console: apiary up --no-ui'] });
    }
    for (const [path, file] of [['/', 'index.html'], ['/app.js', 'app.js'], ['/app.css', 'app.css'], ['/favicon.svg', 'favicon.svg']] as const) {
      const content = await readFile(join(assetsDir, file)).catch(() => undefined);
      if (content !== undefined) this.#assets.set(path, content);
    }
    this.#server = createServer((req, res) => void this.#handle(req, res));
    // A stream that a page leaves open must not hold the controller at exit.
    this.#server.keepAliveTimeout = 5_000;
    this.#port = await this.#listen();
    await this.#auth.publish(this.url, this.#port);
    this.#feed.start();
    this.#unobserveTools = this.#opts.backend.observe(() => this.#noteTools());
    this.#noteTools();
  }

  async #listen(): Promise<number> {
    const server = this.#server!;
    const tryPort = (port: number): Promise<number> =>
      new Promise((resolvePort, reject) => {
        const onError = (err: Error): void => {
          server.off('listening', onListening);
          reject(err);
        };
        const onListening = (): void => {
          server.off('error', onError);
          resolvePort((server.address() as { port: number }).port);
        };
        server.once('error', onError);
        server.once('listening', onListening);
        server.listen(port, '127.0.0.1');
      });
    if (this.#opts.port !== undefined) {
      return tryPort(this.#opts.port).catch((err: unknown) => {
        throw new ApiaryError('StartFailed', `the console cannot listen on 127.0.0.1:${this.#opts.port} (${messageOf(err)})`, { hints: ['Pick another with --ui-port, or leave it out to use a free one; --no-ui runs without the console.'] });
      });
    }
    const remembered = await rememberedPort(this.#opts.stateDir);
    if (remembered !== undefined) {
      try {
        return await tryPort(remembered);
      } catch {
        this.#opts.logger.info('the console port used last time is taken; using another', { port: remembered });
      }
    }
    return tryPort(0);
  }

  /** Once per burst of changes: what the gateway knows of each declared server's tools. */
  #noteTools(): void {
    if (this.#notingTools) return;
    this.#notingTools = true;
    queueMicrotask(() => {
      this.#notingTools = false;
      const { backend } = this.#opts;
      const names = new Set(backend.snapshot().documents.flatMap((d) => (d.kind === 'MCPServer' && d.name !== undefined ? [d.name] : [])));
      for (const name of names) this.#lastTools.note(name, backend.mcpView(name)?.tools);
      this.#lastTools.keepOnly(names);
    });
  }

  async stop(): Promise<void> {
    this.#unobserveTools?.();
    this.#logins.cancelAll();
    this.#feed.stop();
    const server = this.#server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((done) => server.close(() => done()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const [header, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(header, value);
    try {
      // A preflight is refused whoever sends it: nothing is answered to another origin.
      if (req.method === 'OPTIONS') throw new HttpError(405, 'MethodNotAllowed', 'no cross-origin requests');
      // DNS rebinding, other names and pages elsewhere get 403, as at the MCP endpoints; on its own port only.
      const refused = loopbackRefusal(req, this.#port);
      if (refused !== undefined) throw new HttpError(403, 'Forbidden', `${refused} (DNS rebinding protection)`);
      const host = req.headers.host ?? '';
      const url = new URL(req.url ?? '/', `http://${host}`);
      if (req.method !== 'GET' && req.method !== 'HEAD') checkStateChange(req, host);
      // GET /login and /logout are the page (an old bookmarked link lands on the sign-in screen).
      if (url.pathname === '/login' && req.method !== 'GET') return await this.#login(req, res);
      if (url.pathname === '/logout' && req.method !== 'GET') return await this.#logout(req, res);
      if (url.pathname.startsWith('/api/')) {
        const bearer = bearerToken(req);
        if (bearer === undefined || !this.#auth.allows(bearer)) {
          throw new HttpError(401, 'Unauthorized', 'sign in first: open the login link that `apiary ui` prints', ['apiary ui']);
        }
        this.#track(bearer, res);
        return await routeApi(this.#apiContext(), req, res, url.pathname);
      }
      return this.#asset(req, res, url.pathname);
    } catch (err) {
      if (!(err instanceof HttpError) && !(err instanceof ApiaryError)) this.#opts.logger.warn('console request failed', { path: req.url?.split('?')[0], error: messageOf(err) });
      sendError(res, err);
    }
  }

  #apiContext(): ApiContext {
    const { dir, stateDir, keys, version, backend } = this.#opts;
    return { dir, stateDir, keys, version, feed: this.#feed, mcpView: (name) => backend.mcpView(name), lastTools: this.#lastTools, catalog: this.#catalog, auditVerifier: this.#auditVerifier, logins: this.#logins };
  }

  /**
   * The page's trade of the code in its address for a session token (a
   * same-origin JSON POST: checkStateChange has refused any other). The
   * token goes back in the body, never in a cookie.
   */
  async #login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') throw new HttpError(405, 'MethodNotAllowed', 'sign in with POST');
    const session = await this.#auth.login((await readBodyAs(req, LoginBody)).code);
    if (session === undefined) {
      throw new HttpError(401, 'LoginExpired', `this login link was already used or is over ${LOGIN_CODE_MS / 60_000} minutes old: each link signs in once`, ['apiary ui']);
    }
    sendJson(res, 200, { token: session });
  }

  async #logout(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') throw new HttpError(405, 'MethodNotAllowed', 'sign out with POST');
    await readBodyAs(req, EmptyBody);
    const bearer = bearerToken(req);
    await this.#auth.logout(bearer);
    // Its streams end too: a stream opened before the sign-out must not go on being fed. The API token is never signed out.
    if (bearer !== undefined && !this.#auth.allows(bearer)) for (const open of this.#open.get(bearer) ?? []) open.destroy();
    sendJson(res, 200, { signedOut: true });
  }

  #track(bearer: string, res: ServerResponse): void {
    const open = this.#open.get(bearer) ?? new Set<ServerResponse>();
    this.#open.set(bearer, open);
    open.add(res);
    res.once('close', () => {
      open.delete(res);
      if (open.size === 0) this.#open.delete(bearer);
    });
  }

  #asset(req: IncomingMessage, res: ServerResponse, path: string): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'MethodNotAllowed', `${req.method} is not allowed here`);
    // The page is one document: any other path (a deep link such as /servers/x) gets it too.
    const key = this.#assets.has(path) ? path : path.includes('.') ? undefined : '/';
    const content = key === undefined ? undefined : this.#assets.get(key);
    if (key === undefined || content === undefined) throw new HttpError(404, 'NotFound', `no such file: ${path}`);
    res.writeHead(200, { 'Content-Type': ASSET_TYPES[key]!, 'Content-Length': content.length, 'Cache-Control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : content);
  }
}
