/**
 * Who may use the console. A person signs in with a one-time login token
 * (printed by `apiary up` and `apiary ui`), exchanged at /login for a session
 * cookie (HttpOnly, SameSite=Strict); each use mints the next login token. A
 * script sends the API token as `Authorization: Bearer`. Both tokens live in
 * console.json in the state directory (0600, in a 0700 folder), so only the
 * owner of the state directory can read them. A session is signed with a key
 * kept beside them (console.key), so an open page keeps working across a
 * controller restart, as a signed-in browser tab would expect.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { StateLayout } from '../state/layout.js';
import { sameToken } from '../util/tokens.js';
import { writeFileAtomic } from '../util/atomic.js';

export const SESSION_COOKIE = 'apiary_session';
/** A session lasts this long from sign-in; then `apiary ui` gives a new link. */
const SESSION_MS = 12 * 60 * 60 * 1000;

/** What `apiary ui` reads to print a login URL for the running controller. */
export interface ConsoleRecord {
  url: string;
  port: number;
  pid: number;
  loginToken: string;
  apiToken: string;
}

export function consoleFile(stateDir: string): string {
  return new StateLayout(stateDir).consoleFile;
}

export async function readConsoleRecord(stateDir: string): Promise<ConsoleRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(consoleFile(stateDir), 'utf8')) as ConsoleRecord;
    return typeof record.url === 'string' && typeof record.loginToken === 'string' ? record : undefined;
  } catch {
    return undefined;
  }
}

/** The port the last console listened on, to offer the same URL again. */
export async function rememberedPort(stateDir: string): Promise<number | undefined> {
  return (await readConsoleRecord(stateDir))?.port;
}

function token(): string {
  return randomBytes(24).toString('base64url');
}

/** The key sessions are signed with: made once per state directory, owner-only. */
async function sessionKey(stateDir: string): Promise<Buffer> {
  const file = new StateLayout(stateDir).consoleKeyFile;
  const existing = await readFile(file, 'utf8').catch(() => undefined);
  const key = existing === undefined ? undefined : Buffer.from(existing.trim(), 'base64');
  if (key?.length === 32) return key;
  const fresh = randomBytes(32);
  await writeFileAtomic(file, `${fresh.toString('base64')}\n`);
  return fresh;
}

export class ConsoleAuth {
  readonly #stateDir: string;
  readonly #apiToken = token();
  #loginToken = token();
  #key: Buffer | undefined;
  /** Signed out before they expired. */
  readonly #revoked = new Set<string>();
  #record: Omit<ConsoleRecord, 'loginToken' | 'apiToken'> | undefined;

  constructor(stateDir: string) {
    this.#stateDir = stateDir;
  }

  #sign(body: string): string {
    return createHmac('sha256', this.#key!).update(body).digest('base64url');
  }

  get loginToken(): string {
    return this.#loginToken;
  }

  get apiToken(): string {
    return this.#apiToken;
  }

  /** Writes console.json for this console (at start, and each time the login token changes). */
  async publish(url: string, port: number): Promise<void> {
    this.#key ??= await sessionKey(this.#stateDir);
    this.#record = { url, port, pid: process.pid };
    await this.#write();
  }

  async #write(): Promise<void> {
    if (this.#record === undefined) return;
    const record: ConsoleRecord = { ...this.#record, loginToken: this.#loginToken, apiToken: this.#apiToken };
    await writeFileAtomic(consoleFile(this.#stateDir), `${JSON.stringify(record, null, 2)}\n`);
  }

  /** Exchanges a login token for a new session id; the token is spent either way it matches. */
  async login(candidate: string): Promise<string | undefined> {
    if (!sameToken(candidate, this.#loginToken)) return undefined;
    this.#loginToken = token();
    await this.#write();
    const body = `${Date.now() + SESSION_MS}.${token()}`;
    return `${body}.${this.#sign(body)}`;
  }

  logout(session: string | undefined): void {
    if (session !== undefined) this.#revoked.add(session);
  }

  /** A signed, unexpired session, or the API token as a bearer. */
  allows(session: string | undefined, bearer: string | undefined): boolean {
    if (bearer !== undefined && sameToken(bearer, this.#apiToken)) return true;
    if (session === undefined || this.#key === undefined || this.#revoked.has(session)) return false;
    const dot = session.lastIndexOf('.');
    const body = session.slice(0, dot);
    if (dot < 0 || !sameToken(session.slice(dot + 1), this.#sign(body))) return false;
    return Number(body.split('.')[0]) > Date.now();
  }
}
