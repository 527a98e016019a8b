/**
 * The loopback redirect of an OAuth login (RFC 8252 §7.3): a one-shot
 * listener on 127.0.0.1 that waits for the browser to come back with the
 * authorization code. Only a request that carries this login's `state` ends
 * the wait: a stray or forged request to the port is answered 400 and
 * ignored, so it can neither finish nor abort someone's login.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiaryError } from '../errors.js';

export const REDIRECT_PATH = '/callback';

export interface LoopbackRedirect {
  /** http://127.0.0.1:PORT/callback */
  readonly redirectUri: string;
  /** The callback's query (code, state, iss), or an ApiaryError (the server's error, a timeout). */
  readonly result: Promise<URLSearchParams>;
  close(): void;
}

export interface LoopbackOptions {
  /** Expected `state`; the only value that ends the wait. */
  state: string;
  /** A port to try first (the one a registered client's redirect names); taken: any free port. */
  preferredPort?: number;
  timeoutMs: number;
  /** Shown in the browser tab when the redirect arrives. */
  label: string;
  /** Ends the wait early (a console stopping, a login started again): the result is an error saying so. */
  signal?: AbortSignal;
}

export async function listenForRedirect(options: LoopbackOptions): Promise<LoopbackRedirect> {
  let settle: { resolve(q: URLSearchParams): void; reject(e: Error): void } | undefined;
  const result = new Promise<URLSearchParams>((resolve, reject) => (settle = { resolve, reject }));
  result.catch(() => undefined);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== REDIRECT_PATH) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    if (url.searchParams.get('state') !== options.state) {
      res.writeHead(400, { 'Content-Type': 'text/plain' }).end('This is not the login apiary is waiting for.\n');
      return;
    }
    const error = url.searchParams.get('error');
    const page = error === null ? `apiary: ${options.label} is connected. You may close this tab.` : `apiary: the login for ${options.label} failed (${error}).`;
    res.writeHead(error === null ? 200 : 400, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'close' }).end(`<!doctype html><title>apiary</title><p>${escapeHtml(page)}</p>\n`);
    if (error === null) settle?.resolve(url.searchParams);
    else settle?.reject(new ApiaryError('AuthorizationFailed', `the authorization server refused the login: ${error}${describe(url.searchParams.get('error_description'))}`));
  });
  const port = await listenOn(server, options.preferredPort);
  const timer = setTimeout(() => settle?.reject(new ApiaryError('Timeout', `no login came back within ${Math.round(options.timeoutMs / 1000)} s`)), options.timeoutMs);
  timer.unref();
  const cancelled = (): void => settle?.reject(new ApiaryError('AuthorizationFailed', `the login for ${options.label} was cancelled before it came back`));
  if (options.signal?.aborted === true) cancelled();
  options.signal?.addEventListener('abort', cancelled, { once: true });
  const close = (): void => {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', cancelled);
    server.closeAllConnections();
    server.close();
  };
  void result.then(close, close);
  return { redirectUri: `http://127.0.0.1:${port}${REDIRECT_PATH}`, result, close };
}

async function listenOn(server: Server, preferred: number | undefined): Promise<number> {
  const attempt = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  if (preferred !== undefined) {
    try {
      return await attempt(preferred);
    } catch {
      // Taken: any port will do for an authorization server that follows RFC 8252 §7.3.
    }
  }
  return attempt(0);
}

function describe(text: string | null): string {
  return text === null || text === '' ? '' : ` (${text.slice(0, 300)})`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
