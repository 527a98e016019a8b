/**
 * A hosted MCP server that needs a login, made of real parts on 127.0.0.1:
 * oidc-provider 8.8.1 as its authorization server (dynamic registration, the
 * devInteractions login and consent pages, refresh tokens, revocation, short
 * access tokens) and an MCP SDK server that accepts only that server's JWTs
 * (jose), answering 401 with the RFC 9728 challenge otherwise. Small on
 * purpose: the oidc17 provider fixture serves the gateway's own identity.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import Provider from 'oidc-provider';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { memoryAdapter, type Stored } from './oidc-provider.js';

export interface AuthServerOptions {
  /** Access-token lifetime in seconds (default 300). */
  accessTokenTtl?: number;
  /** Pre-registered clients (oidc-provider metadata); dynamic registration is on either way. */
  clients?: Record<string, unknown>[];
}

export interface AuthServer {
  issuer: string;
  /** Successful token grants by type (authorization_code, refresh_token). */
  grants: Record<string, number>;
  /** Dynamic registrations served. */
  registrations: number;
  /** How many refresh tokens the provider holds now. */
  refreshTokens(): number;
  /** Forget every refresh token, as an administrator revoking the grant would. */
  revokeRefreshTokens(): void;
  /** Stop answering (the port closed), and answer again on the same port with everything it held. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  close(): Promise<void>;
}

export async function startAuthServer(options: AuthServerOptions = {}): Promise<AuthServer> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const key = { ...(await exportJWK(privateKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const store = new Map<string, Stored>();
  const provider = new Provider(issuer, {
    adapter: memoryAdapter(store),
    clients: options.clients ?? [],
    jwks: { keys: [key] },
    scopes: ['openid', 'offline_access', 'mcp'],
    claims: { openid: ['sub'] },
    cookies: { keys: ['oauth-as-test-cookie-key'] },
    clientDefaults: { id_token_signed_response_alg: 'ES256', grant_types: ['authorization_code'], response_types: ['code'] },
    ttl: { AccessToken: options.accessTokenTtl ?? 300, AuthorizationCode: 60, Grant: 3600, Interaction: 600, Session: 600, IdToken: 300, RefreshToken: 3600 },
    findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub }) }),
    pkce: { required: () => true },
    // Refresh tokens for every client allowed the grant (the default also wants offline_access and consent).
    issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) => client.grantTypeAllowed('refresh_token'),
    features: {
      devInteractions: { enabled: true },
      registration: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx: unknown, _client: unknown, oneOf?: string) => oneOf,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => ({
          scope: 'mcp',
          audience: resource,
          accessTokenTTL: options.accessTokenTtl ?? 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
  const grants: Record<string, number> = {};
  const counts = { registrations: 0 };
  provider.on('grant.success', (ctx) => {
    const type = String((ctx as { oidc: { params?: { grant_type?: unknown } } }).oidc.params?.grant_type);
    grants[type] = (grants[type] ?? 0) + 1;
  });
  provider.on('registration_create.success', () => void counts.registrations++);
  const handler = provider.callback();
  server.on('request', (req, res) => handler(req, res));
  return {
    issuer,
    grants,
    get registrations() {
      return counts.registrations;
    },
    refreshTokens: () => [...store.keys()].filter((k) => k.startsWith('RefreshToken:')).length,
    revokeRefreshTokens() {
      for (const k of [...store.keys()]) if (k.startsWith('RefreshToken:')) store.delete(k);
    },
    pause: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    resume: () => new Promise<void>((resolve) => server.listen(Number(new URL(issuer).port), '127.0.0.1', resolve)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface ProtectedServer {
  /** The MCP endpoint: http://127.0.0.1:PORT/mcp */
  url: string;
  /** Calls answered with a valid token, and requests refused with 401. */
  accepted: number;
  refused: number;
  close(): Promise<void>;
}

/**
 * An MCP server (SDK, stateless) with one tool, `whoami`, that accepts only
 * the issuer's JWTs for its own URL. `echoToken`: a second tool, `token`,
 * that says the access token it was sent (a careless server).
 */
export async function startProtectedServer(issuer: string, options: { echoToken?: boolean } = {}): Promise<ProtectedServer> {
  const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`), { cooldownDuration: 0 });
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const url = `${origin}/mcp`;
  const metadataUrl = `${origin}/.well-known/oauth-protected-resource/mcp`;
  const counts = { accepted: 0, refused: 0 };
  const refuse = (res: ServerResponse, error?: string): void => {
    counts.refused++;
    const params = [`resource_metadata="${metadataUrl}"`, 'scope="mcp"', ...(error === undefined ? [] : [`error="${error}"`])];
    res.writeHead(401, { 'WWW-Authenticate': `Bearer ${params.join(', ')}`, 'Content-Type': 'application/json' }).end('{"error":"unauthorized"}');
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      if (req.url === '/.well-known/oauth-protected-resource/mcp' || req.url === '/.well-known/oauth-protected-resource') {
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ resource: url, authorization_servers: [issuer], scopes_supported: ['mcp'], bearer_methods_supported: ['header'] }));
        return;
      }
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (token === undefined) return refuse(res);
      let subject: string;
      try {
        const { payload } = await jwtVerify(token, jwks, { issuer, audience: url, clockTolerance: 0 });
        subject = String(payload.sub);
      } catch {
        return refuse(res, 'invalid_token');
      }
      counts.accepted++;
      const mcp = new McpServer({ name: 'hosted', version: '1' });
      mcp.registerTool('whoami', { description: 'The subject of the token' }, () => ({ content: [{ type: 'text', text: subject }] }));
      if (options.echoToken === true) mcp.registerTool('token', { description: 'The access token it was sent' }, () => ({ content: [{ type: 'text', text: `sent: ${token}` }] }));
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on('close', () => void transport.close());
      await mcp.connect(transport);
      await transport.handleRequest(req, res);
    })();
  });
  return {
    url,
    get accepted() {
      return counts.accepted;
    },
    get refused() {
      return counts.refused;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The provider's devInteractions pages in a real browser: any login and password, then consent. */
export async function logInAndConsent(page: Page, authorizationUrl: string, login = 'alice'): Promise<void> {
  await page.goto(authorizationUrl);
  await logInOnPage(page, login);
}

/** The same, on a page already opened at the provider's login (a tab the console opened). */
export async function logInOnPage(page: Page, login = 'alice'): Promise<void> {
  await page.waitForSelector('input[name=login]');
  await page.fill('input[name=login]', login);
  await page.fill('input[name=password]', 'any');
  await page.click('button[type=submit]');
  await page.waitForSelector('button[type=submit]');
  await page.click('button[type=submit]');
}

/** The authorization server and the hosted server it protects, started before a file's tests and closed after. */
export function useHostedServer(options: AuthServerOptions = {}): { as(): AuthServer; hosted(): ProtectedServer } {
  let as: AuthServer | undefined;
  let hosted: ProtectedServer | undefined;
  beforeAll(async () => {
    as = await startAuthServer(options);
    hosted = await startProtectedServer(as.issuer);
  });
  afterAll(async () => {
    await hosted?.close();
    await as?.close();
  });
  return { as: () => as!, hosted: () => hosted! };
}
