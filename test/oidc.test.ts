/**
 * apiary as an OAuth 2.1 resource server (issue 26, item 2), against a real
 * OpenID provider (oidc-provider 8.8.1 on 127.0.0.1) and the MCP SDKs' own
 * OAuth clients doing the real discovery: a 401 pointing at the Protected
 * Resource Metadata, the provider's metadata, a token for the endpoint's
 * resource, the call. One provider for the file; the endpoints are a real
 * server-everything behind a Bridge and HttpEndpoint, and an HTTP server
 * behind HttpProxy that records the headers it was sent (the canary: a
 * client's token is never passed upstream).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { ClientCredentialsProvider, Client as ModernClient, StreamableHTTPClientTransport as ModernTransport, UnauthorizedError, type OAuthClientProvider } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ClientCredentialsProvider as V1ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { importJWK, SignJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicies, type PolicySource } from '../src/api/access.js';
import type { AuditRecord } from '../src/api/audit.js';
import { NO_TELEMETRY, type AccessConfig } from '../src/api/gate.js';
import { Bridge } from '../src/mcp/bridge.js';
import { Gateway } from '../src/mcp/gateway.js';
import { defaultAccess, Gatekeeper } from '../src/mcp/gatekeeper.js';
import { HttpEndpoint } from '../src/mcp/http-endpoint.js';
import { HttpProxy } from '../src/mcp/http-proxy.js';
import { createTokenVerifier, discoverJwksUri } from '../src/mcp/oidc-verifier.js';
import { StateLayout } from '../src/state/layout.js';
import { systemClock } from '../src/util/clock.js';
import { silentLogger } from '../src/util/logger.js';
import { CHROMIUM, hasChromium, launchChromium } from './helpers/browser.js';
import { makeKey, startProvider, type PrivateJwk, type TestProvider } from './helpers/oidc-provider.js';
import { tempDir } from './helpers/tmp.js';
import { INSTALL, requireTool } from './helpers/tools.js';
import { waitFor } from './helpers/wait.js';

const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');
const LOCAL_TOKEN = 'local-token-0123456789abcdef';
const SVC = { id: 'svc', secret: 'svc-secret-0123456789' };
const browser = requireTool(CHROMIUM, INSTALL.chromium, hasChromium);
/** Where the authorization-code client is sent back to (the browser's navigation there is what the test reads). */
let redirectUrl: string;

/** Everyone may do everything (what a policy allows is the enforcement's test, not this one's). */
const ALLOW_ALL: PolicySource = { name: 'all', file: 'policies.yaml', subjects: [{ authenticated: true }, { token: 'local' }], rules: [{ servers: ['*'], effect: 'Allow' }], ruleLines: [7] };

let provider: TestProvider;
let k1: PrivateJwk;
let gate: Gatekeeper;
let audit: AuditRecord[];
let endpoint: HttpEndpoint;
let proxy: HttpProxy;
let upstreamHeaders: IncomingHttpHeaders[];
let upstreamPort: number;
const closing: (() => unknown)[] = [];

function oidcConfig(requiredScopes?: string[]): AccessConfig {
  const oidc = { issuer: provider.issuer, audience: 'apiary', ...(requiredScopes !== undefined ? { requiredScopes } : {}) };
  const verifier = createTokenVerifier({ ...oidc, cooldownMs: 0 });
  closing.push(() => verifier.close());
  return { mode: 'oidc', token: LOCAL_TOKEN, oidc, verifier, policies: compilePolicies([ALLOW_ALL], 'oidc'), telemetry: NO_TELEMETRY, audit: { append: (r) => void audit.push(r) } };
}

/** server-everything over stdio behind a real Bridge, Ready. */
async function everything(): Promise<Bridge> {
  const child: ChildProcess = spawn(process.execPath, [EVERYTHING, 'stdio'], { stdio: ['pipe', 'pipe', 'ignore'] });
  closing.push(() => child.kill('SIGKILL'));
  const bridge = new Bridge({ name: 'everything', clock: systemClock, readyWaitMs: 20_000 });
  bridge.attach(child.stdin!, child.stdout!, child.pid!);
  closing.push(() => bridge.close());
  await waitFor('server-everything ready', () => bridge.isReady(), 20_000, { observe: () => bridge.status() });
  return bridge;
}

/** An MCP server over HTTP (the SDK's, stateless) that records the headers of every request it gets. */
async function recordingUpstream(): Promise<number> {
  const server: Server = createServer((req, res) => {
    upstreamHeaders.push(req.headers);
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const mcp = new McpServer({ name: 'web', version: '1.0.0' });
      mcp.registerTool('echo', { description: 'echo' }, () => ({ content: [{ type: 'text', text: 'echoed by web' }] }));
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      res.on('close', () => void transport.close());
      const text = Buffer.concat(chunks).toString('utf8');
      void mcp.connect(transport).then(() => transport.handleRequest(req, res, text === '' ? undefined : JSON.parse(text)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closing.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  k1 = await makeKey('k1');
  const landing = createServer((_req, res) => void res.end('signed in'));
  await new Promise<void>((resolve) => landing.listen(0, '127.0.0.1', resolve));
  closing.push(() => new Promise<void>((resolve) => landing.close(() => resolve())));
  redirectUrl = `http://127.0.0.1:${(landing.address() as AddressInfo).port}/callback`;
  // Every apiary endpoint is on 127.0.0.1: the provider maps each of their URLs to the one audience, as a real deployment's would.
  provider = await startProvider({
    keys: [k1],
    clients: [
      { client_id: SVC.id, client_secret: SVC.secret, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] },
      { client_id: 'app', token_endpoint_auth_method: 'none', redirect_uris: [redirectUrl], grant_types: ['authorization_code'], response_types: ['code'], application_type: 'native' },
    ],
    users: { alice: { groups: ['dev'] } },
    interactive: true,
    scopes: ['mcp', 'admin'],
    audienceOf: (resource) => (resource.startsWith('http://127.0.0.1:') ? 'apiary' : resource === 'urn:elsewhere' ? 'someone-else' : undefined),
  });
  closing.push(() => provider.close());
  audit = [];
  upstreamHeaders = [];
  gate = new Gatekeeper(oidcConfig());
  endpoint = new HttpEndpoint(await everything(), 0, { gate, name: 'everything' });
  await endpoint.listen();
  closing.push(() => endpoint.close());
  upstreamPort = await recordingUpstream();
  proxy = new HttpProxy(0, upstreamPort, { gate, name: 'web' });
  await proxy.listen();
  closing.push(() => proxy.close());
}, 60_000);

afterAll(async () => {
  for (const close of closing.reverse()) await close();
});

const proxyUrl = (): string => `http://127.0.0.1:${proxy.port}/mcp`;

function post(url: string, bearer?: string): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...(bearer !== undefined ? { Authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
  });
}

/** Signs `claims` like the provider would (its key k1 unless told), for the cases a provider will not mint. */
async function forged(claims: JWTPayload, key: PrivateJwk = k1, alg = 'ES256'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg, kid: key.kid, typ: 'at+jwt' }).sign(await importJWK(key, alg));
}

const payloadOf = (token: string): JWTPayload => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as JWTPayload;

describe('apiary as an OAuth resource server', () => {
  it('the SDK v2 client finds its way with client credentials (PRM, provider metadata, a token for the endpoint) and calls a tool, 2026-07-28 and 2025-11-25', async () => {
    for (const [url, tool, answer] of [[endpoint.url, 'echo', 'Echo: hi'], [proxyUrl(), 'echo', 'echoed by web']] as const) {
      for (const mode of [{ pin: '2026-07-28' }, 'legacy'] as const) {
        const seen: string[] = [];
        const spy: typeof fetch = async (input, init) => {
          const res = await fetch(input, init);
          seen.push(`${init?.method ?? 'GET'} ${new URL(String(input instanceof Request ? input.url : input)).pathname} ${res.status}`);
          return res;
        };
        const authProvider = new ClientCredentialsProvider({ clientId: SVC.id, clientSecret: SVC.secret, expectedIssuer: provider.issuer });
        const client = new ModernClient({ name: 'oidc-test', version: '1' }, { versionNegotiation: { mode } });
        await client.connect(new ModernTransport(new URL(url), { authProvider, fetch: spy }));
        expect(client.getNegotiatedProtocolVersion()).toBe(mode === 'legacy' ? '2025-11-25' : '2026-07-28');
        const result = await client.callTool({ name: tool, arguments: { message: 'hi' } });
        expect(result.content).toEqual([{ type: 'text', text: answer }]);
        // The discovery, in order: refused, PRM (path-suffixed), the provider's metadata, the token, accepted.
        expect(seen.slice(0, 2)).toEqual(['POST /mcp 401', 'GET /.well-known/oauth-protected-resource/mcp 200']);
        expect(seen).toContain('GET /.well-known/openid-configuration 200');
        expect(seen).toContain('POST /token 200');
        expect(seen.at(-1)).toMatch(/ \/mcp 20[02]$/);
        expect(payloadOf(authProvider.tokens()!.access_token)).toMatchObject({ iss: provider.issuer, aud: 'apiary', sub: SVC.id });
        await client.close();
      }
    }
    // The canary: the server behind the proxy never saw a client's token.
    expect(upstreamHeaders.length).toBeGreaterThan(0);
    expect(upstreamHeaders.every((h) => h.authorization === undefined)).toBe(true);
  }, 60_000);

  it('the SDK v1 client with client credentials (it must name its scope: it ignores the challenge\'s)', async () => {
    for (const url of [endpoint.url, proxyUrl()]) {
      const authProvider = new V1ClientCredentialsProvider({ clientId: SVC.id, clientSecret: SVC.secret, scope: 'mcp', expectedIssuer: provider.issuer });
      const client = new Client({ name: 'v1', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider }));
      expect((await client.listTools()).tools.map((t) => t.name)).toContain('echo');
      await client.close();
    }
    // The legacy HTTP+SSE transport finds the metadata of its own path (/sse), whose resource its URL starts with.
    const legacy = new Client({ name: 'v1-sse', version: '1' });
    await legacy.connect(new SSEClientTransport(new URL(`http://127.0.0.1:${endpoint.port}/sse`), { authProvider: new V1ClientCredentialsProvider({ clientId: SVC.id, clientSecret: SVC.secret, scope: 'mcp', expectedIssuer: provider.issuer }) }));
    expect((await legacy.callTool({ name: 'echo', arguments: { message: 'sse' } })).content).toEqual([{ type: 'text', text: 'Echo: sse' }]);
    await legacy.close();
    expect(upstreamHeaders.every((h) => h.authorization === undefined)).toBe(true);
  }, 30_000);

  it('serves Protected Resource Metadata without a token at the root and path-suffixed forms, on every endpoint, in mode oidc only', async () => {
    for (const [base, server] of [[`http://127.0.0.1:${endpoint.port}`, 'everything'], [`http://localhost:${proxy.port}`, 'web']] as const) {
      // RFC 9728 §3.3: the resource is what the well-known path was built from (the bare origin for the root form).
      for (const [path, resource] of [['', ''], ['/mcp', '/mcp'], ['/sse', '/sse']] as const) {
        const res = await fetch(`${base}/.well-known/oauth-protected-resource${path}`);
        expect(res.status).toBe(200);
        // The origin the client used (localhost here), so the SDK's same-origin check passes.
        expect(await res.json()).toEqual({ resource: `${base}${resource}`, authorization_servers: [provider.issuer], bearer_methods_supported: ['header'], resource_name: `apiary: ${server}` });
      }
    }
    const tokenGate = new Gatekeeper(defaultAccess(LOCAL_TOKEN));
    const plain = new HttpEndpoint(await everythingless(), 0, { gate: tokenGate });
    await plain.listen();
    try {
      expect((await fetch(`http://127.0.0.1:${plain.port}/.well-known/oauth-protected-resource/mcp`)).status).toBe(404);
    } finally {
      await plain.close();
    }
  });

  it('refuses with 401 and a challenge naming the metadata: no token, another issuer, another audience, expired, tampered, alg none; each is audited, none quotes the token', async () => {
    const good = await provider.clientToken(SVC.id, SVC.secret, endpoint.url);
    const claims = payloadOf(good);
    const now = Math.floor(Date.now() / 1000);
    const metadata = `resource_metadata="http://127.0.0.1:${endpoint.port}/.well-known/oauth-protected-resource/mcp"`;

    audit.length = 0;
    const none = await post(endpoint.url);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe(`Bearer ${metadata}`);

    const other = await startProvider({ keys: [await makeKey('k1')], clients: [{ client_id: SVC.id, client_secret: SVC.secret, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] }], audienceOf: () => 'apiary' });
    const fromOther = await other.clientToken(SVC.id, SVC.secret, endpoint.url).finally(() => other.close());
    const parts = good.split('.');
    const cases: [string, string, RegExp][] = [
      ['another issuer', fromOther, /signature does not verify|"iss"/],
      ['another audience', await provider.clientToken(SVC.id, SVC.secret, 'urn:elsewhere'), /'aud' claim/],
      ['expired past the skew', await forged({ ...claims, iat: now - 600, exp: now - 120 }), /expired/],
      ['tampered', `${parts[0]}.${Buffer.from(JSON.stringify({ ...claims, sub: 'admin' })).toString('base64url')}.${parts[2]}`, /signature/],
      ['alg none', `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${parts[1]}.`, /algorithm|not a signed JWT/],
    ];
    for (const [label, token, why] of cases) {
      const res = await post(endpoint.url, token);
      expect(res.status, label).toBe(401);
      const challenge = res.headers.get('www-authenticate')!;
      expect(challenge, label).toMatch(new RegExp(`^Bearer ${metadata.replace(/[.?]/g, '\\$&')}, error="invalid_token", error_description="[^"]+"$`));
      expect(challenge, label).toMatch(why);
      const body = await res.text();
      for (const piece of token.split('.').filter((p) => p.length > 8)) {
        expect(body, label).not.toContain(piece);
        expect(challenge, label).not.toContain(piece);
      }
    }
    // Within the skew is still good (30 s), and the good token itself.
    expect((await post(endpoint.url, await forged({ ...claims, iat: now - 600, exp: now - 10 }))).status).toBe(200);
    expect((await post(endpoint.url, good)).status).toBe(200);
    // Never from the query string (a URL ends up in logs and histories): that is a request without a token.
    expect((await post(`${endpoint.url}?access_token=${good}`)).status).toBe(401);

    expect(audit.map((r) => [r.subject, r.server, r.decision, r.outcome, r.code])).toEqual(Array(2 + cases.length).fill([{ kind: 'unauthenticated' }, 'everything', 'deny', 'unauthenticated', 401]));
    expect(audit[0]).toMatchObject({ method: 'POST /mcp', rule: 'no-token' });
    expect(audit.at(-1)).toMatchObject({ method: 'POST /mcp', rule: 'no-token' });
    expect(audit[2]!.rule).toMatch(/^invalid_token: the token's 'aud' claim/);
    const log = JSON.stringify(audit);
    for (const token of [good, ...cases.map(([, t]) => t)]) for (const piece of token.split('.').filter((p) => p.length > 8)) expect(log).not.toContain(piece);
    // A 2026-07-28 client says what it asks for in headers: the record has it, the body unread.
    audit.length = 0;
    const named = await fetch(endpoint.url, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Mcp-Method': 'tools/call', 'Mcp-Name': 'echo' }, body: '{}' });
    expect(named.status).toBe(401);
    expect(audit).toMatchObject([{ method: 'tools/call', name: 'echo', outcome: 'unauthenticated' }]);
  }, 30_000);

  it('keys rotated at the provider: a token signed with the new key is still validated (and the old one while its key is published)', async () => {
    const before = await provider.clientToken(SVC.id, SVC.secret, endpoint.url);
    expect((await post(endpoint.url, before)).status).toBe(200);
    const k2 = await makeKey('k2');
    provider.rotate([k2, k1]);
    try {
      const after = await provider.clientToken(SVC.id, SVC.secret, endpoint.url);
      expect(JSON.parse(Buffer.from(after.split('.')[0]!, 'base64url').toString('utf8'))).toMatchObject({ kid: 'k2' });
      expect((await post(endpoint.url, after)).status).toBe(200);
      expect((await post(endpoint.url, before)).status).toBe(200);
    } finally {
      provider.rotate([k1]);
    }
  });

  it('scopes to advertise (spec.auth.oidc.scopes): in the metadata and the 401 challenge, after the required ones; not checked in tokens', async () => {
    const advertised = oidcConfig();
    advertised.oidc = { ...advertised.oidc!, scopes: ['openid', 'mcp'] };
    gate.configure(advertised);
    try {
      expect((await post(endpoint.url)).headers.get('www-authenticate')).toContain('scope="openid mcp"');
      expect(await (await fetch(`http://127.0.0.1:${endpoint.port}/.well-known/oauth-protected-resource/mcp`)).json()).toMatchObject({ scopes_supported: ['openid', 'mcp'] });
      // A token that carries neither is still let in: advertising is not requiring.
      const plain = await provider.clientToken(SVC.id, SVC.secret, endpoint.url, 'mcp');
      expect((await post(endpoint.url, plain)).status).toBe(200);
      const both = oidcConfig(['admin']);
      both.oidc = { ...both.oidc!, scopes: ['openid', 'admin'] };
      gate.configure(both);
      expect(await (await fetch(`http://127.0.0.1:${endpoint.port}/.well-known/oauth-protected-resource`)).json()).toMatchObject({ scopes_supported: ['admin', 'openid'] });
    } finally {
      gate.configure(oidcConfig());
    }
  });

  it('a token without a required scope: 403 insufficient_scope naming the scopes; the SDK v2 client asks for them and gets in', async () => {
    gate.configure(oidcConfig(['admin']));
    try {
      audit.length = 0;
      const narrow = await provider.clientToken(SVC.id, SVC.secret, endpoint.url, 'mcp');
      const res = await post(endpoint.url, narrow);
      expect(res.status).toBe(403);
      expect(res.headers.get('www-authenticate')).toBe(
        `Bearer resource_metadata="http://127.0.0.1:${endpoint.port}/.well-known/oauth-protected-resource/mcp", error="insufficient_scope", scope="admin", error_description="the token lacks the scope admin"`,
      );
      expect(audit).toMatchObject([{ outcome: 'unauthenticated', code: 403, rule: 'insufficient_scope: the token lacks the scope admin' }]);
      // Without a token the challenge names the scope to ask for, and the metadata lists it.
      expect((await post(endpoint.url)).headers.get('www-authenticate')).toContain('scope="admin"');
      expect(await (await fetch(`http://127.0.0.1:${endpoint.port}/.well-known/oauth-protected-resource`)).json()).toMatchObject({ scopes_supported: ['admin'] });
      const client = new ModernClient({ name: 'scoped', version: '1' });
      await client.connect(new ModernTransport(new URL(endpoint.url), { authProvider: new ClientCredentialsProvider({ clientId: SVC.id, clientSecret: SVC.secret, expectedIssuer: provider.issuer }) }));
      expect((await client.callTool({ name: 'echo', arguments: { message: 'scoped' } })).content).toEqual([{ type: 'text', text: 'Echo: scoped' }]);
      await client.close();
    } finally {
      gate.configure(oidcConfig());
    }
  }, 30_000);

  it('the local token is still accepted in mode oidc (a policy names token: local), on both kinds of endpoint', async () => {
    for (const url of [endpoint.url, proxyUrl()]) expect((await post(url, LOCAL_TOKEN)).status).toBe(200);
    expect(upstreamHeaders.every((h) => h.authorization === undefined)).toBe(true);
  });

  it('the provider away: 401 now (its keys could not be fetched), and the next request after it is back is served', async () => {
    const key = await makeKey('p1');
    const clients = [{ client_id: SVC.id, client_secret: SVC.secret, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] }];
    let away = await startProvider({ keys: [key], clients, audienceOf: () => 'apiary' });
    const port = Number(new URL(away.issuer).port);
    const token = await away.clientToken(SVC.id, SVC.secret, endpoint.url);
    const problems: string[] = [];
    const verifier = createTokenVerifier({ issuer: away.issuer, audience: 'apiary', cooldownMs: 0, onUnavailable: (p) => problems.push(p) });
    await away.close();
    expect(await verifier.verify(token)).toEqual({ error: 'invalid_token', description: "the OpenID provider's keys could not be fetched (ECONNREFUSED); try again" });
    away = await startProvider({ keys: [key], clients, audienceOf: () => 'apiary', port });
    try {
      expect(await verifier.verify(token)).toMatchObject({ user: SVC.id, groups: [], scopes: ['mcp'] });
      expect(problems).toEqual(["the OpenID provider's keys could not be fetched (ECONNREFUSED)"]);
      // Restarted again, with a new key, while the verifier holds a keep-alive socket to the old process: the next fetch meets it dead.
      await away.close();
      const p2 = await makeKey('p2');
      away = await startProvider({ keys: [p2, key], clients, audienceOf: () => 'apiary', port });
      // Signed here with the provider's new key, so that the verifier's fetch of the keys is the first request to the new process.
      const now = Math.floor(Date.now() / 1000);
      expect(await verifier.verify(await forged({ iss: away.issuer, aud: 'apiary', sub: 'after-restart', iat: now, exp: now + 60 }, p2))).toMatchObject({ user: 'after-restart' });
      expect(problems).toHaveLength(1);
    } finally {
      verifier.close();
      await away.close();
    }
  });

  it.skipIf(!browser.available)('authorization code with PKCE through Chromium: alice signs in, her token names her and her group, her call goes through', async () => {
    const store: { tokens?: { access_token: string; token_type: string }; verifier?: string; authUrl?: URL; discovery?: unknown } = {};
    const oauth: OAuthClientProvider = {
      get redirectUrl() {
        return redirectUrl;
      },
      get clientMetadata() {
        return { client_name: 'oidc-test', redirect_uris: [redirectUrl], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none', scope: 'mcp' };
      },
      clientInformation: () => ({ client_id: 'app' }),
      tokens: () => store.tokens,
      saveTokens: (tokens) => void (store.tokens = tokens),
      state: () => 'state-0123456789',
      redirectToAuthorization: (url) => void (store.authUrl = url),
      saveCodeVerifier: (verifier) => void (store.verifier = verifier),
      codeVerifier: () => store.verifier!,
      saveDiscoveryState: (state) => void (store.discovery = state),
      discoveryState: () => store.discovery as never,
    };
    const transport = (): ModernTransport => new ModernTransport(new URL(endpoint.url), { authProvider: oauth });
    const first = transport();
    await expect(new ModernClient({ name: 'alice', version: '1' }).connect(first)).rejects.toBeInstanceOf(UnauthorizedError);
    expect(Object.fromEntries(store.authUrl!.searchParams)).toMatchObject({ response_type: 'code', client_id: 'app', code_challenge_method: 'S256', resource: endpoint.url });

    const chromium = await launchChromium();
    let landed: URL;
    try {
      const page = await chromium.newPage();
      const callback = page.waitForRequest((r) => r.url().startsWith(redirectUrl), { timeout: 20_000 });
      await page.goto(store.authUrl!.href);
      await page.fill('input[name=login]', 'alice');
      await page.fill('input[name=password]', 'any');
      await page.getByRole('button', { name: 'Sign-in' }).click();
      await page.getByRole('button', { name: 'Continue' }).click(); // consent
      landed = new URL((await callback).url());
    } finally {
      await chromium.close();
    }
    await first.finishAuth(landed.searchParams);
    const client = new ModernClient({ name: 'alice', version: '1' });
    await client.connect(transport());
    expect((await client.callTool({ name: 'echo', arguments: { message: 'from alice' } })).content).toEqual([{ type: 'text', text: 'Echo: from alice' }]);
    await client.close();
    expect(await gate.config.verifier!.verify(store.tokens!.access_token)).toMatchObject({ user: 'alice', groups: ['dev'] });
  }, 60_000);

  it('costs: a remembered token is verified far faster than a new one, and an oidc call costs about what a token-mode call does', async () => {
    const verifier = createTokenVerifier({ issuer: provider.issuer, audience: 'apiary', cooldownMs: 0 });
    const tokens = await Promise.all(Array.from({ length: 40 }, () => provider.clientToken(SVC.id, SVC.secret, endpoint.url)));
    const fresh = await timed(tokens.length, (i) => verifier.verify(tokens[i]!));
    const remembered = await timed(400, (i) => verifier.verify(tokens[i % tokens.length]!));
    verifier.close();

    const call = (bearer: string) => () => fetch(endpoint.url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/call', 'Mcp-Name': 'echo', Authorization: `Bearer ${bearer}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }),
    }).then(async (res) => {
      expect(res.status).toBe(200);
      await res.text();
    });
    // Interleaved, one call of each per round, so the box's load drifts over both alike.
    const oidc = oidcConfig();
    const token = defaultAccess(LOCAL_TOKEN);
    const asOidcTimes: number[] = [];
    const asTokenTimes: number[] = [];
    try {
      for (let i = 0; i < 151; i++) {
        gate.configure(oidc);
        asOidcTimes.push(await timed(1, call(tokens[0]!)));
        gate.configure(token);
        asTokenTimes.push(await timed(1, call(LOCAL_TOKEN)));
      }
    } finally {
      gate.configure(oidcConfig());
    }
    const [asOidc, asToken] = [median(asOidcTimes.slice(1)), median(asTokenTimes.slice(1))];
    // The gate alone, without HTTP's noise: what authenticating a request adds in each mode.
    const asked = (bearer: string): IncomingMessage => ({ headers: { authorization: `Bearer ${bearer}`, host: '127.0.0.1' }, url: '/mcp', method: 'POST' }) as IncomingMessage;
    const oidcGate = new Gatekeeper(oidc);
    const tokenGate = new Gatekeeper(token);
    const gateOidc: number[] = [];
    const gateToken: number[] = [];
    for (let i = 0; i < 2001; i++) {
      gateOidc.push(await timed(1, () => oidcGate.authenticate(asked(tokens[0]!))));
      gateToken.push(await timed(1, () => tokenGate.authenticate(asked(LOCAL_TOKEN))));
    }
    if (process.env['APIARY_MEASURE'] !== undefined) {
      process.stderr.write(
        `verify p50: new ${us(fresh)}, remembered ${us(remembered)} (x${(fresh / remembered).toFixed(0)}); ` +
          `authenticate p50: oidc ${us(median(gateOidc))}, token ${us(median(gateToken))}; ` +
          `call p50: oidc ${us(asOidc)}, token ${us(asToken)} (ratio ${(asOidc / asToken).toFixed(3)})\n`,
      );
    }
    expect(remembered * 5).toBeLessThan(fresh);
  }, 60_000);

  it("the aggregate and a hosted server's proxy are resources too: metadata, the challenge, a token's way in, and the audit names the aggregate *", async () => {
    const gateway = new Gateway({ clock: systemClock, logger: silentLogger, layout: new StateLayout(await tempDir()), onChange: () => undefined, onUnhealthy: () => undefined });
    gateway.configure(oidcConfig());
    const started = await gateway.startAggregate('test', 0);
    if (!('url' in started)) throw new Error(started.error);
    try {
      const origin = new URL(started.url).origin;
      expect(await (await fetch(`${origin}/.well-known/oauth-protected-resource/mcp`)).json()).toMatchObject({ resource: started.url, resource_name: 'apiary (every server)' });
      audit.length = 0;
      const refused = await post(started.url);
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp"`);
      expect(audit).toMatchObject([{ server: '*', outcome: 'unauthenticated', rule: 'no-token' }]);
      expect((await post(started.url, await provider.clientToken(SVC.id, SVC.secret, started.url))).status).toBe(200);
    } finally {
      await gateway.closeAggregate();
    }

    // A hosted server: the proxy adds the manifest's headers, and only those.
    const hosted = new HttpProxy(0, { url: `http://127.0.0.1:${upstreamPort}/mcp`, label: 'hosted', headers: { 'X-Api-Key': 'the-hosted-servers-own' } }, { gate, name: 'hosted' });
    await hosted.listen();
    try {
      upstreamHeaders.length = 0;
      const url = `http://127.0.0.1:${hosted.port}/mcp`;
      expect(await (await fetch(`http://127.0.0.1:${hosted.port}/.well-known/oauth-protected-resource/mcp`)).json()).toMatchObject({ resource: url, resource_name: 'apiary: hosted' });
      // apiary answered that itself: the server's own metadata would name another resource.
      expect(upstreamHeaders).toEqual([]);
      const client = new ModernClient({ name: 'hosted', version: '1' });
      await client.connect(new ModernTransport(new URL(url), { authProvider: new ClientCredentialsProvider({ clientId: SVC.id, clientSecret: SVC.secret, expectedIssuer: provider.issuer }) }));
      expect((await client.callTool({ name: 'echo', arguments: {} })).content).toEqual([{ type: 'text', text: 'echoed by web' }]);
      await client.close();
      expect(upstreamHeaders.length).toBeGreaterThan(0);
      for (const headers of upstreamHeaders) {
        expect(headers['x-api-key']).toBe('the-hosted-servers-own');
        expect(headers.authorization).toBeUndefined();
      }
    } finally {
      await hosted.close();
    }
  }, 30_000);

  it("the verifier reads the claims the Gateway names (a missing username refuses the token, groups that are no list of strings name no group), remembers a token only until it expires, and takes keys from jwksURL without discovery", async () => {
    const verifier = createTokenVerifier({ issuer: provider.issuer, audience: 'apiary', usernameClaim: 'email', groupsClaim: 'roles', cooldownMs: 0 });
    const now = Math.floor(Date.now() / 1000);
    const base = { iss: provider.issuer, aud: 'apiary', sub: 'u1', iat: now, exp: now + 60 };
    try {
      expect(await verifier.verify(await forged({ ...base, email: 'carol@example.com', roles: ['dev', 'ops'], scp: ['mcp', 7] }))).toEqual({ user: 'carol@example.com', groups: ['dev', 'ops'], scopes: ['mcp'], exp: now + 60 });
      expect(await verifier.verify(await forged({ ...base, email: 'dan@example.com', roles: 'dev' }))).toMatchObject({ user: 'dan@example.com', groups: [] });
      expect(await verifier.verify(await forged({ ...base, email: 'erin@example.com', roles: ['dev', { admin: true }] }))).toMatchObject({ groups: [] });
      expect(await verifier.verify(await forged(base))).toEqual({ error: 'invalid_token', description: "the token has no 'email' claim naming the caller" });
      const { exp: _exp, ...noExp } = base;
      expect(await verifier.verify(await forged({ ...noExp, email: 'f@example.com' }))).toEqual({ error: 'invalid_token', description: "the token's 'exp' claim is not what apiary accepts" });
    } finally {
      verifier.close();
    }
    // A remembered token is good only until it expires: the cache never lengthens a token's life.
    const strict = createTokenVerifier({ issuer: provider.issuer, audience: 'apiary', clockToleranceSec: 0 });
    const shortLived = await forged({ ...base, exp: Math.floor(Date.now() / 1000) + 1 });
    expect(await strict.verify(shortLived)).toMatchObject({ user: 'u1' });
    await waitFor('the token to expire', () => Date.now() >= (payloadOf(shortLived).exp! + 1) * 1000, 5000, { intervalMs: 50 });
    expect(await strict.verify(shortLived)).toEqual({ error: 'invalid_token', description: 'the token has expired' });
    strict.close();
    // With jwksURL the keys are fetched from there, and no discovery document is asked for.
    const asked: string[] = [];
    const direct = createTokenVerifier({ issuer: provider.issuer, audience: 'apiary', jwksURL: `${provider.issuer}/jwks`, fetch: (input, init) => (asked.push(new URL(String(input)).pathname), fetch(input, init)) });
    expect(await direct.verify(await forged(base))).toMatchObject({ user: 'u1' });
    expect(asked).toEqual(['/jwks']);
    direct.close();
  });

  it("finds the keys by RFC 8414 metadata when a provider serves no OpenID configuration, and refuses a document naming another issuer", async () => {
    // oidc-provider 8 serves only openid-configuration: its document, served where RFC 8414 puts it, stands in for a plain OAuth server's.
    const oauthOnly: typeof fetch = (input, init) => {
      const url = String(input);
      if (url.endsWith('/.well-known/openid-configuration')) return Promise.resolve(new Response('not here', { status: 404 }));
      return fetch(url.replace('/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'), init);
    };
    expect(await discoverJwksUri(provider.issuer, oauthOnly)).toBe(`${provider.issuer}/jwks`);
    await expect(discoverJwksUri(`${provider.issuer}/`.replace('127.0.0.1', 'localhost'), fetch)).rejects.toThrow('/.well-known/openid-configuration names another issuer');
  });
});

/** A host with no server behind it: enough for an endpoint whose metadata route is all that is asked. */
async function everythingless(): Promise<Bridge> {
  return new Bridge({ name: 'none', clock: systemClock });
}

/** The median of `n` sequential runs, in ms. */
async function timed(n: number, run: (i: number) => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await run(i);
    times.push(performance.now() - start);
  }
  return median(times);
}

function median(times: number[]): number {
  return [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

const us = (ms: number): string => `${(ms * 1000).toFixed(1)} µs`;
