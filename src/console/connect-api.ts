/**
 * The console's Connect and Disconnect for a hosted server that logs in with
 * OAuth (spec.remote.auth): the same login `apiary connect` runs, started by
 * the page. The answer is the authorization URL (the page opens it in a new
 * tab); the login finishes when the browser comes back to apiary's loopback
 * listener, the tokens are sealed in the state directory, and the controller,
 * which watches that store, turns the server Running: the page sees it on
 * its event stream. No token is ever in an answer or a log line.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { messageOf } from '../errors.js';
import { connect } from '../mcp/oauth-client.js';
import { disconnectGrant, loginOf, tokenStoreIn } from '../reconcilers/remote-login.js';
import { runningManifestDir } from '../source/directory.js';
import { ensurePrivateDir } from '../util/atomic.js';
import type { Logger } from '../util/logger.js';
import type { ApiContext } from './api.js';
import { EmptyBody, readBodyAs } from './bodies.js';
import { sendJson } from './http.js';

/**
 * A failure's words as the page may show them: every URL cut to its origin. A hosted server's URL may hold a secret
 * (a `$(VAR)` in its path or query, credentials before its host), and the page is no place for it.
 */
function originsOnly(text: string): string {
  return text.replace(/https?:\/\/[^\s"'<>)]+/gi, (url) => (URL.canParse(url) ? `${new URL(url).origin}/…` : '[a URL]'));
}

/** How long a login started from the page waits for the browser to come back (as `apiary connect`'s default). */
export const CONSOLE_LOGIN_MS = 5 * 60_000;

/** The logins the page has started and not yet seen come back, one per server. */
export class PendingLogins {
  readonly #logger: Logger;
  readonly #pending = new Map<string, { url: Promise<string>; abort: AbortController }>();
  /** Why the server's last login from the page did not finish (refused, timed out), until another starts or it succeeds. */
  readonly #failed = new Map<string, string>();

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /**
   * The authorization URL of the server's login, started now, or the one
   * already waiting (a second click opens the same login again rather than
   * racing two listeners for one redirect).
   */
  start(name: string, login: (open: (url: string) => void, signal: AbortSignal) => Promise<unknown>): Promise<string> {
    const waiting = this.#pending.get(name);
    if (waiting !== undefined) return waiting.url;
    const abort = new AbortController();
    let opened: (url: string) => void = () => undefined;
    const url = new Promise<string>((resolve) => (opened = resolve));
    const done = login(opened, abort.signal);
    const entry = { url: Promise.race([url, done.then(() => Promise.reject(new Error('the login ended before it began')))]), abort };
    this.#pending.set(name, entry);
    this.#failed.delete(name);
    done.then(
      () => this.#logger.info('connected a hosted server from the console', { server: name }),
      (err: unknown) => {
        this.#logger.warn('a login started from the console did not finish', { server: name, error: messageOf(err) });
        // A login a disconnect cancelled is no failure to show.
        if (!abort.signal.aborted) this.#failed.set(name, originsOnly(messageOf(err)));
      },
    ).finally(() => {
      if (this.#pending.get(name) === entry) this.#pending.delete(name);
    });
    return entry.url;
  }

  /** Where the server's login from the page stands: waiting for the browser, failed (why), or neither. */
  status(name: string): { waiting: boolean; failed?: string } {
    const failed = this.#failed.get(name);
    return { waiting: this.#pending.has(name), ...(failed !== undefined ? { failed } : {}) };
  }

  /** Ends the server's waiting login, if any (a disconnect). */
  cancel(name: string): void {
    this.#pending.get(name)?.abort.abort();
    this.#pending.delete(name);
  }

  /** Ends every waiting login (the console stopping): no listener outlives it. */
  cancelAll(): void {
    for (const name of [...this.#pending.keys()]) this.cancel(name);
  }
}

/** POST /api/v1/mcpservers/NAME/connect: starts the login; answers with the URL to open. */
export async function connectServer(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, [name]: string[]): Promise<void> {
  await readBodyAs(req, EmptyBody);
  const login = await loginOf(await runningManifestDir(ctx.dir, ctx.stateDir), name!, ctx.keys);
  await ensurePrivateDir(ctx.stateDir);
  const store = tokenStoreIn(ctx.stateDir, ctx.keys, true);
  const authorizationUrl = await ctx.logins.start(name!, (open, signal) =>
    connect({ name: name!, serverUrl: login.url, settings: login.settings, store, open, signal, timeoutMs: CONSOLE_LOGIN_MS }),
  );
  sendJson(res, 200, { name, authorizationUrl, waitsSeconds: CONSOLE_LOGIN_MS / 1000 });
}

/** GET /api/v1/mcpservers/NAME/connect: whether the login the page started still waits, or why it did not finish. */
export async function loginStatus(ctx: ApiContext, _req: IncomingMessage, res: ServerResponse, [name]: string[]): Promise<void> {
  sendJson(res, 200, { name, ...ctx.logins.status(name!) });
}

/** POST /api/v1/mcpservers/NAME/disconnect: as `apiary disconnect`; a login still waiting is cancelled too. */
export async function disconnectServer(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, [name]: string[]): Promise<void> {
  await readBodyAs(req, EmptyBody);
  ctx.logins.cancel(name!);
  const dir = await runningManifestDir(ctx.dir, ctx.stateDir);
  const forgotten = await disconnectGrant(dir, name!, tokenStoreIn(ctx.stateDir, ctx.keys, false), ctx.keys);
  sendJson(res, 200, { name, disconnected: forgotten !== undefined, message: forgotten === undefined ? `${name} has no tokens: nothing to forget` : `disconnected ${name}: ${forgotten}` });
}
