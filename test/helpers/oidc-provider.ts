/**
 * A real OpenID provider for tests: oidc-provider 8.8.1 (the last line that
 * supports Node 20) on 127.0.0.1, minting JWT access tokens for RFC 8707
 * resources (research note §1). Keys are rotated by building a new Provider
 * behind the same listener: restarting on the same port would break the
 * clients' keep-alive sockets, which is another test's business.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider, { errors } from 'oidc-provider';

export type PrivateJwk = JWK & { kid: string };

/** An ES256 signing key, private part included (the provider signs with it; a test forges with it). */
export async function makeKey(kid: string): Promise<PrivateJwk> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' };
}

export interface ProviderOptions {
  keys: PrivateJwk[];
  /** oidc-provider client metadata. */
  clients: Record<string, unknown>[];
  /** Users by login, with their groups (in tokens as `groups`). */
  users?: Record<string, { groups: string[] }>;
  /** The `aud` to mint for a requested resource, or undefined to refuse it (invalid_target). */
  audienceOf: (resource: string) => string | undefined;
  /** Scopes beyond openid; each resource gets them all. */
  scopes?: string[];
  /** Where to listen (default: any free port); a restarted provider keeps its issuer. */
  port?: number;
  /** The built-in login and consent pages (any login, any password), for an authorization-code flow. */
  interactive?: boolean;
  /** Groups for a client_credentials token, by client id (such a token names the client as its subject and has no account). */
  clientGroups?: Record<string, string[]>;
}

export interface TestProvider {
  issuer: string;
  /** Serve with these keys from now on (the first signs); grants in flight are dropped. */
  rotate(keys: PrivateJwk[]): void;
  /** A client_credentials token for `resource`, asked for directly (client_secret_basic). */
  clientToken(clientId: string, secret: string, resource: string, scope?: string): Promise<string>;
  close(): Promise<void>;
}

export interface Stored {
  payload: Record<string, unknown>;
  until: number;
}

/**
 * The provider's storage, one per test provider: kept across rotations and restarts on the same port, and visible to a
 * test that passes its own store (which tokens exist). The built-in memory adapter is per process and warns on every start.
 */
export function memoryAdapter(store: Map<string, Stored> = new Map()): new (model: string) => object {
  const live = (key: string): Record<string, unknown> | undefined => {
    const entry = store.get(key);
    return entry !== undefined && entry.until > Date.now() ? entry.payload : undefined;
  };
  return class {
    readonly #model: string;
    constructor(model: string) {
      this.#model = model;
    }
    upsert = async (id: string, payload: Record<string, unknown>, expiresIn: number): Promise<void> => {
      store.set(`${this.#model}:${id}`, { payload, until: Date.now() + (expiresIn ?? 3600) * 1000 });
      if (this.#model === 'Session' && typeof payload['uid'] === 'string') store.set(`uid:${payload['uid']}`, { payload: { id }, until: Date.now() + expiresIn * 1000 });
    };
    find = async (id: string): Promise<unknown> => live(`${this.#model}:${id}`);
    findByUid = async (uid: string): Promise<unknown> => live(`Session:${String(live(`uid:${uid}`)?.['id'])}`);
    findByUserCode = async (): Promise<unknown> => undefined;
    consume = async (id: string): Promise<void> => {
      const payload = live(`${this.#model}:${id}`);
      if (payload !== undefined) payload['consumed'] = Math.floor(Date.now() / 1000);
    };
    destroy = async (id: string): Promise<void> => void store.delete(`${this.#model}:${id}`);
    revokeByGrantId = async (grantId: string): Promise<void> => {
      for (const [key, entry] of store) if (entry.payload['grantId'] === grantId) store.delete(key);
    };
  };
}

export async function startProvider(options: ProviderOptions): Promise<TestProvider> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const users = options.users ?? {};
  const scopes = options.scopes ?? ['mcp'];
  const groupsOf = (sub: string): string[] => users[sub]?.groups ?? [];
  const adapter = memoryAdapter();
  const build = (keys: PrivateJwk[]): Provider =>
    new Provider(issuer, {
      adapter,
      clients: options.clients,
      ttl: { AccessToken: 300, ClientCredentials: 300, AuthorizationCode: 60, Grant: 600, Interaction: 600, Session: 600, IdToken: 300 },
      jwks: { keys },
      scopes: ['openid', ...scopes],
      // The client default is RS256; with only EC keys, registration would fail without this.
      clientDefaults: { id_token_signed_response_alg: 'ES256', grant_types: ['authorization_code'], response_types: ['code'] },
      claims: { openid: ['sub'], groups: ['groups'] },
      cookies: { keys: ['oidc-test-cookie-key'] },
      findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub, groups: groupsOf(sub) }) }),
      pkce: { required: () => true },
      features: {
        devInteractions: { enabled: options.interactive === true },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: (_ctx: unknown, _client: unknown, oneOf?: string) => oneOf,
          useGrantedResource: () => true,
          // The default throws InvalidTarget for every resource: this is where a resource URL becomes an audience.
          getResourceServerInfo: (_ctx: unknown, resource: string) => {
            const audience = options.audienceOf(resource);
            if (audience === undefined) throw new errors.InvalidTarget();
            return { scope: scopes.join(' '), audience, accessTokenTTL: 300, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
          },
        },
      },
      // Users' tokens carry their groups (a client_credentials token has no account).
      extraTokenClaims: (_ctx: unknown, token: { accountId?: string; clientId?: string }) => {
        if (token.accountId !== undefined) return { groups: groupsOf(token.accountId) };
        const groups = token.clientId !== undefined ? options.clientGroups?.[token.clientId] : undefined;
        return groups !== undefined ? { groups } : undefined;
      },
    });
  let handler = build(options.keys).callback();
  server.on('request', (req, res) => handler(req, res));
  return {
    issuer,
    rotate(keys) {
      handler = build(keys).callback();
    },
    async clientToken(clientId, secret, resource, scope = scopes[0]!) {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { Authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`, 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope, resource }).toString(),
      });
      const body = (await res.json()) as { access_token?: string; error?: string };
      if (body.access_token === undefined) throw new Error(`the provider gave no token: ${body.error ?? res.status}`);
      return body.access_token;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
