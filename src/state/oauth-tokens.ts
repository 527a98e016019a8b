/**
 * A hosted server's OAuth tokens and the clients apiary registered with each
 * authorization server, kept in the state directory sealed with this
 * machine's master key (AES-256-GCM, as secrets are): they belong to this
 * user on this machine, never to the manifests in git. One file per server,
 * its path built from a validated name; one per issuer for registered
 * clients, named by the issuer's hash, so a client is only ever found again
 * by the issuer that registered it. Files are owner-only and written
 * atomically; nothing here prints a token.
 */
import { createHash } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { MasterKey } from '../crypto/seal.js';
import { seal, unseal } from '../crypto/seal.js';
import { SecretValue } from '../crypto/secret-value.js';
import { ApiaryError, messageOf } from '../errors.js';
import { ensurePrivateDir, writeFileAtomic } from '../util/atomic.js';
import { fileSafeName, type StateLayout } from './layout.js';

/** What a connect left for one server: the tokens, and whom they came from. */
export interface OAuthGrant {
  /** The authorization server's issuer identifier (RFC 8414). */
  issuer: string;
  /** The RFC 8707 resource the tokens were asked for (the hosted server's). */
  resource: string;
  clientId: string;
  accessToken: SecretValue;
  refreshToken?: SecretValue;
  /** When the access token expires (ms since the epoch); absent: the server did not say. */
  expiresAt?: number;
  /** When it was issued (ms): refreshes are timed from the token's lifetime. */
  issuedAt: number;
  scope?: string;
  tokenType: string;
}

/** A client apiary registered dynamically (RFC 7591) with one issuer. */
export interface OAuthClientRecord {
  issuer: string;
  clientId: string;
  clientSecret?: SecretValue;
  /** The redirect URI registered: the next connect listens on its port when it is free. */
  redirectUri: string;
  tokenEndpointAuthMethod?: string;
}

/** This machine's master key: the CLI's connect may create it (as sealing a secret does); the controller only reads it. */
export type MasterKeySource = () => Promise<MasterKey>;

/** The name sealed values are bound to (associated data): a file copied to another server's name fails to open. */
const GRANT_BINDING = (name: string): [string, string] => [`oauth/${name}`, 'tokens'];
const CLIENT_BINDING = (issuerHash: string): [string, string] => [`oauth-client/${issuerHash}`, 'client'];

export function issuerHash(issuer: string): string {
  return createHash('sha256').update(issuer).digest('hex').slice(0, 32);
}

export class OAuthTokenStore {
  constructor(
    private readonly layout: StateLayout,
    private readonly key: MasterKeySource,
  ) {}

  async grant(name: string): Promise<OAuthGrant | undefined> {
    const file = this.layout.oauthTokensFile(name);
    const value = await this.#open(file, GRANT_BINDING(fileSafeName(name)));
    return value === undefined ? undefined : asGrant(value, file);
  }

  async saveGrant(name: string, grant: OAuthGrant): Promise<void> {
    await this.#seal(this.layout.oauthTokensFile(name), GRANT_BINDING(fileSafeName(name)), { ...grant, accessToken: grant.accessToken.reveal(), refreshToken: grant.refreshToken?.reveal() });
  }

  /** Whether the server has tokens on disk, without the key (status, get). */
  async hasGrant(name: string): Promise<boolean> {
    return (await readFile(this.layout.oauthTokensFile(name), 'utf8').catch(() => undefined)) !== undefined;
  }

  /** Which version of the server's tokens is on disk (its file's change time), without the key: a new connect is noticed by it. */
  async grantVersion(name: string): Promise<number | undefined> {
    return (await stat(this.layout.oauthTokensFile(name)).catch(() => undefined))?.mtimeMs;
  }

  async forgetGrant(name: string): Promise<boolean> {
    const file = this.layout.oauthTokensFile(name);
    const had = await this.hasGrant(name);
    await rm(file, { force: true });
    return had;
  }

  async client(issuer: string): Promise<OAuthClientRecord | undefined> {
    const hash = issuerHash(issuer);
    const file = join(this.layout.oauthClientsDir, `${hash}.json`);
    const value = await this.#open(file, CLIENT_BINDING(hash));
    if (value === undefined) return undefined;
    const record = value as Record<string, unknown>;
    // Keyed by issuer, and checked again: a client is never used with an issuer that did not register it.
    if (record['issuer'] !== issuer || typeof record['clientId'] !== 'string' || typeof record['redirectUri'] !== 'string') return undefined;
    const secret = record['clientSecret'];
    return { ...(record as unknown as OAuthClientRecord), clientSecret: typeof secret === 'string' ? new SecretValue(secret) : undefined };
  }

  async saveClient(record: OAuthClientRecord): Promise<void> {
    const hash = issuerHash(record.issuer);
    await ensurePrivateDir(this.layout.oauthClientsDir);
    await this.#seal(join(this.layout.oauthClientsDir, `${hash}.json`), CLIENT_BINDING(hash), { ...record, clientSecret: record.clientSecret?.reveal() });
  }

  async #open(file: string, [secretName, key]: [string, string]): Promise<unknown> {
    const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw new ApiaryError('Io', `cannot read ${file}: ${err.code ?? messageOf(err)}`);
    });
    if (text === undefined) return undefined;
    let sealed: unknown;
    try {
      sealed = (JSON.parse(text) as { sealed?: unknown }).sealed;
    } catch {
      sealed = undefined;
    }
    if (typeof sealed !== 'string') throw new ApiaryError('StateInvalid', `${file} is not a sealed OAuth record; remove it and connect again`);
    return JSON.parse((unseal(await this.key(), secretName, key, sealed)).reveal()) as unknown;
  }

  async #seal(file: string, [secretName, key]: [string, string], value: object): Promise<void> {
    await ensurePrivateDir(this.layout.oauthDir);
    const sealed = seal(await this.key(), secretName, key, JSON.stringify(value));
    await writeFileAtomic(file, `${JSON.stringify({ sealed })}\n`);
  }
}

function asGrant(value: unknown, file: string): OAuthGrant {
  const stored = value as Record<string, unknown>;
  const fields = ['issuer', 'resource', 'clientId', 'accessToken', 'tokenType'] as const;
  if (typeof value !== 'object' || value === null || fields.some((f) => typeof stored[f] !== 'string') || typeof stored['issuedAt'] !== 'number') {
    throw new ApiaryError('StateInvalid', `${file} does not hold OAuth tokens apiary can use; remove it and connect again`);
  }
  const refresh = stored['refreshToken'];
  return {
    ...(stored as unknown as OAuthGrant),
    accessToken: new SecretValue(stored['accessToken'] as string),
    refreshToken: typeof refresh === 'string' ? new SecretValue(refresh) : undefined,
  };
}
