/**
 * The clients a person registered with `apiary client add`: kept in the
 * state directory (`client-registry.json`, owner-only, written atomically
 * under a lock), because what apiary writes into a client belongs to one
 * state directory: its endpoints' ports and its token. Another apiary, with
 * another state directory, keeps its own clients; the controller of this one
 * keeps these in sync.
 */
import { join, resolve } from 'node:path';
import { ApiaryError, messageOf } from '../errors.js';
import type { StateLayout } from '../state/layout.js';
import { ensureDir, readTextIfPresent, writeFileAtomic } from '../util/atomic.js';
import { withFileLock } from '../util/file-lock.js';
import { isKnownClient, knownClientPath, type KnownClient } from './known.js';

export interface RegisteredClient {
  client: KnownClient;
  /** The file apiary keeps in sync (the client's user-level file unless --file named another). */
  file: string;
  /** One entry, the aggregate endpoint: nothing to rewrite when servers come and go. */
  aggregate: boolean;
  addedAt: string;
}

export function registryFile(layout: StateLayout): string {
  return join(layout.root, 'client-registry.json');
}

/** The registered clients; an unreadable registry is an error that names the file (never taken as empty, which would stop every sync unseen). */
export async function readRegistry(layout: StateLayout): Promise<RegisteredClient[]> {
  const file = registryFile(layout);
  const text = await readTextIfPresent(file);
  if (text === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ApiaryError('Usage', `${file} is not JSON (${messageOf(err)}); fix or delete it, then apiary client add again`);
  }
  const list = (parsed as { clients?: unknown }).clients;
  if (!Array.isArray(list)) throw new ApiaryError('Usage', `${file} has no "clients" list; fix or delete it, then apiary client add again`);
  return list.filter((c): c is RegisteredClient => typeof c === 'object' && c !== null && isKnownClient(String((c as RegisteredClient).client)) && typeof (c as RegisteredClient).file === 'string');
}

/**
 * Runs `fn` holding the registry's lock: registering or unregistering a
 * client together with writing its file, and the controller's rewrite of a
 * client, take turns, so a rewrite never puts entries back into a client
 * that is being removed. Taken before any client file's lock, always.
 */
export async function underRegistry<T>(layout: StateLayout, fn: () => Promise<T>): Promise<T> {
  await ensureDir(layout.root);
  return withFileLock(registryFile(layout), fn);
}

/** Under underRegistry only. */
async function changeRegistry(layout: StateLayout, change: (clients: RegisteredClient[]) => RegisteredClient[]): Promise<RegisteredClient[]> {
  const next = change(await readRegistry(layout));
  await writeFileAtomic(registryFile(layout), `${JSON.stringify({ clients: next }, null, 2)}\n`);
  return next;
}

/** Registers a client's file (again: its --aggregate choice replaced). Under underRegistry only. */
export async function registerClient(layout: StateLayout, client: KnownClient, file: string, aggregate: boolean, now: Date = new Date()): Promise<RegisteredClient> {
  const entry: RegisteredClient = { client, file: resolve(file), aggregate, addedAt: now.toISOString() };
  await changeRegistry(layout, (clients) => [...clients.filter((c) => !(c.client === client && c.file === entry.file)), entry]);
  return entry;
}

/** Unregisters a client's file; says whether it was registered. Under underRegistry only. */
export async function unregisterClient(layout: StateLayout, client: KnownClient, file: string): Promise<boolean> {
  let found = false;
  await changeRegistry(layout, (clients) =>
    clients.filter((c) => {
      const match = c.client === client && c.file === resolve(file);
      found ||= match;
      return !match;
    }),
  );
  return found;
}

/** The file of a client: --file, or its user-level one. */
export function clientFile(client: KnownClient, file: string | undefined, env: NodeJS.ProcessEnv): string {
  return file !== undefined ? resolve(file) : knownClientPath(client, env);
}
