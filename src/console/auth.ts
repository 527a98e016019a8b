/**
 * Who may use the console. A person signs in with a one-time login token
 * (printed by `apiary up` and `apiary ui`), exchanged at /login for a session
 * cookie (HttpOnly, SameSite=Strict); each use mints the next login token. A
 * script sends the API token as `Authorization: Bearer`. Both tokens live in
 * console.json in the state directory (0600, in a 0700 folder), so only the
 * owner of the state directory can read them.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';

export const SESSION_COOKIE = 'apiary_session';
/** Sessions end with the controller; a long idle one ends sooner. */
const SESSION_IDLE_MS = 12 * 60 * 60 * 1000;

/** What `apiary ui` reads to print a login URL for the running controller. */
export interface ConsoleRecord {
  url: string;
  port: number;
  pid: number;
  loginToken: string;
  apiToken: string;
}

export function consoleFile(stateDir: string): string {
  return join(stateDir, 'console.json');
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

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class ConsoleAuth {
  readonly #stateDir: string;
  readonly #apiToken = token();
  #loginToken = token();
  readonly #sessions = new Map<string, number>();
  #record: Omit<ConsoleRecord, 'loginToken' | 'apiToken'> | undefined;

  constructor(stateDir: string) {
    this.#stateDir = stateDir;
  }

  get loginToken(): string {
    return this.#loginToken;
  }

  get apiToken(): string {
    return this.#apiToken;
  }

  /** Writes console.json for this console (at start, and each time the login token changes). */
  async publish(url: string, port: number): Promise<void> {
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
    if (!same(candidate, this.#loginToken)) return undefined;
    this.#loginToken = token();
    await this.#write();
    const session = token();
    this.#sessions.set(session, Date.now());
    return session;
  }

  logout(session: string | undefined): void {
    if (session !== undefined) this.#sessions.delete(session);
  }

  /** A live session (refreshed by use), or the API token as a bearer. */
  allows(session: string | undefined, bearer: string | undefined): boolean {
    if (bearer !== undefined && same(bearer, this.#apiToken)) return true;
    if (session === undefined) return false;
    const last = this.#sessions.get(session);
    if (last === undefined) return false;
    if (Date.now() - last > SESSION_IDLE_MS) {
      this.#sessions.delete(session);
      return false;
    }
    this.#sessions.set(session, Date.now());
    return true;
  }
}
