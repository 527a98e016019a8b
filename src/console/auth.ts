/**
 * Who may use the console. A person signs in with a link that `apiary up` and
 * `apiary ui` print, http://127.0.0.1:PORT/#login=CODE: the code rides in the
 * fragment, which a browser never sends to any server, and signs in once,
 * within LOGIN_CODE_MS. The page trades it (a same-origin POST /login) for a
 * session token that it keeps in sessionStorage and sends as
 * `Authorization: Bearer`. sessionStorage belongs to the page's origin, port
 * included; a cookie does not (every listener on 127.0.0.1 receives the
 * cookies of every other port), so cookies authorize nothing here and a junk
 * one locks nobody out. A script sends the API token the same way.
 *
 * No raw code or token is kept. A login code is a file in console-logins/
 * named by the code's SHA-256 and holding when it expires: `apiary ui`
 * writes one without asking the controller (nothing secret goes over a port
 * that another process might hold), and the first exchange removes it. A
 * session is its SHA-256 in console-sessions.json (0600, written atomically),
 * so a sign-out holds across a controller restart, and an open page keeps
 * working across one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ApiaryError } from '../errors.js';
import { StateLayout } from '../state/layout.js';
import { sameToken } from '../util/tokens.js';
import { ensureDir, writeFileAtomic } from '../util/atomic.js';

/** How long a login link works: long enough to open it, short enough that an old one in a scrollback is dead. */
export const LOGIN_CODE_MS = 2 * 60 * 1000;
/** A session lasts this long from sign-in; then `apiary ui` gives a new link. */
export const SESSION_MS = 12 * 60 * 60 * 1000;

/** What `apiary ui` reads to find the running controller's console. */
export interface ConsoleRecord {
  url: string;
  port: number;
  pid: number;
  apiToken: string;
}

export type Clock = () => number;

export function consoleFile(stateDir: string): string {
  return new StateLayout(stateDir).consoleFile;
}

export async function readConsoleRecord(stateDir: string): Promise<ConsoleRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(consoleFile(stateDir), 'utf8')) as ConsoleRecord;
    return typeof record.url === 'string' && typeof record.apiToken === 'string' ? record : undefined;
  } catch {
    return undefined;
  }
}

/** The port the last console listened on, to offer the same URL again. */
export async function rememberedPort(stateDir: string): Promise<number | undefined> {
  return (await readConsoleRecord(stateDir))?.port;
}

/** The link a person opens: the code in the fragment, so it reaches the page and no server. */
export function loginLink(consoleUrl: string, code: string): string {
  return `${consoleUrl}/#login=${code}`;
}

function token(): string {
  return randomBytes(24).toString('base64url');
}

/** What is kept of a code or token: a 192-bit random value needs no slow hash. */
function digest(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

const DIGEST = /^[0-9a-f]{64}$/;
const CODE = /^[A-Za-z0-9_-]{32}$/;

/**
 * A new one-time login code for the console of this state directory (by
 * `apiary ui`, or the controller at start). Expired codes are swept first.
 */
export async function mintLoginCode(stateDir: string, now: Clock = Date.now): Promise<string> {
  const dir = new StateLayout(stateDir).consoleLoginsDir;
  await ensureDir(dir);
  await sweepExpiredCodes(dir, now());
  const code = token();
  await writeFileAtomic(join(dir, digest(code)), `${now() + LOGIN_CODE_MS}\n`);
  return code;
}

async function sweepExpiredCodes(dir: string, at: number): Promise<void> {
  for (const name of await readdir(dir).catch(() => [])) {
    if (!DIGEST.test(name)) continue;
    const expires = Number(await readFile(join(dir, name), 'utf8').catch(() => '0'));
    if (!(expires > at)) await rm(join(dir, name), { force: true });
  }
}

/**
 * Spends a login code: true for a code minted and not yet expired. The file
 * is removed first, so of two exchanges at once only one succeeds.
 */
async function spendLoginCode(stateDir: string, candidate: string, at: number): Promise<boolean> {
  if (!CODE.test(candidate)) return false;
  const file = join(new StateLayout(stateDir).consoleLoginsDir, digest(candidate));
  const expires = await readFile(file, 'utf8').catch(() => undefined);
  if (expires === undefined) return false;
  const removed = await rm(file).then(
    () => true,
    () => false,
  );
  return removed && Number(expires) > at;
}

/** console-sessions.json: the SHA-256 of each live session token and when it expires (ms since the epoch). */
interface SessionsFile {
  sessions: Record<string, number>;
}

async function readSessions(file: string, at: number): Promise<Map<string, number>> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  const live = new Map<string, number>();
  if (text === undefined) return live;
  try {
    const parsed = JSON.parse(text) as Partial<SessionsFile>;
    for (const [hash, expires] of Object.entries(parsed.sessions ?? {})) {
      if (DIGEST.test(hash) && typeof expires === 'number' && expires > at) live.set(hash, expires);
    }
  } catch {
    // A damaged file signs everyone out; nobody is let in by it.
  }
  return live;
}

export class ConsoleAuth {
  readonly #stateDir: string;
  readonly #now: Clock;
  readonly #apiToken = token();
  /** Live sessions: token digest -> expiry. */
  #sessions = new Map<string, number>();
  #url: string | undefined;
  /** Writes of the sessions file, one after another, each of the whole current set. */
  #saving: Promise<void> = Promise.resolve();

  constructor(stateDir: string, now: Clock = Date.now) {
    this.#stateDir = stateDir;
    this.#now = now;
  }

  get apiToken(): string {
    return this.#apiToken;
  }

  /** Reads the sessions kept from before and writes console.json for this console. */
  async publish(url: string, port: number): Promise<void> {
    const layout = new StateLayout(this.#stateDir);
    this.#sessions = await readSessions(layout.consoleSessionsFile, this.#now());
    this.#url = url;
    const record: ConsoleRecord = { url, port, pid: process.pid, apiToken: this.#apiToken };
    await writeFileAtomic(consoleFile(this.#stateDir), `${JSON.stringify(record, null, 2)}\n`);
  }

  /** A fresh one-time login link for this console. */
  async loginLink(): Promise<string> {
    if (this.#url === undefined) throw new ApiaryError('StartFailed', 'the console has not started: no login link yet');
    return loginLink(this.#url, await mintLoginCode(this.#stateDir, this.#now));
  }

  /** Exchanges a login code for a new session token, kept (as its digest) before it is handed out. */
  async login(code: string): Promise<string | undefined> {
    if (!(await spendLoginCode(this.#stateDir, code, this.#now()))) return undefined;
    const session = token();
    this.#sessions.set(digest(session), this.#now() + SESSION_MS);
    await this.#save();
    return session;
  }

  /** Ends a session, on disk too: a controller started later does not know it either. */
  async logout(session: string | undefined): Promise<void> {
    if (session === undefined || !this.#sessions.delete(digest(session))) return;
    await this.#save();
  }

  /** The API token, or a live session token. */
  allows(bearer: string | undefined): boolean {
    if (bearer === undefined) return false;
    if (sameToken(bearer, this.#apiToken)) return true;
    // Looked up by digest: learning a live token from the lookup's timing would take preimages of SHA-256.
    const expires = this.#sessions.get(digest(bearer));
    return expires !== undefined && expires > this.#now();
  }

  #save(): Promise<void> {
    const write = async (): Promise<void> => {
      const at = this.#now();
      for (const [hash, expires] of this.#sessions) if (expires <= at) this.#sessions.delete(hash);
      const file: SessionsFile = { sessions: Object.fromEntries(this.#sessions) };
      await writeFileAtomic(new StateLayout(this.#stateDir).consoleSessionsFile, `${JSON.stringify(file, null, 2)}\n`);
    };
    this.#saving = this.#saving.then(write, write);
    return this.#saving;
  }
}
