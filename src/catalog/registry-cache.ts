/**
 * What registries answered, kept for a while: the console's Catalog page asks
 * for the list, then each entry, then the install plan, and each would read
 * the registry again. Keyed by registry URL and search; kept 5 minutes;
 * bounded by entries and by the bytes the registry sent (oldest out first).
 * A load in flight is shared; a failure is never kept.
 */
import type { CatalogListing } from './catalog.js';

export interface RegistryCacheOptions {
  /** How long an answer is used (default 5 minutes). */
  ttlMs?: number;
  /** At most this many answers (default 32). */
  maxEntries?: number;
  /** At most this many bytes of registry answers in all (default 16 MiB); a bigger answer is not kept. */
  maxBytes?: number;
  now?: () => number;
}

/** A registry's answer: the listing, and the bytes it took (what the cache counts). */
export interface RegistryAnswer {
  listing: CatalogListing;
  bytes: number;
}

interface Kept {
  answer: Promise<RegistryAnswer>;
  /** Known once the answer is in. */
  expires?: number;
  bytes: number;
}

export class RegistryCache {
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #now: () => number;
  /** In insertion order, so the first is the oldest. */
  readonly #kept = new Map<string, Kept>();

  constructor(options: RegistryCacheOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 5 * 60_000;
    this.#maxEntries = options.maxEntries ?? 32;
    this.#maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
    this.#now = options.now ?? Date.now;
  }

  /** The kept answer for `key`, or the one `load` gives (kept if it fits). */
  async get(key: string, load: () => Promise<RegistryAnswer>): Promise<CatalogListing> {
    const kept = this.#kept.get(key);
    if (kept !== undefined && (kept.expires === undefined || kept.expires > this.#now())) return (await kept.answer).listing;
    this.#kept.delete(key);
    const entry: Kept = { answer: load(), bytes: 0 };
    this.#kept.set(key, entry);
    try {
      const answer = await entry.answer;
      if (this.#kept.get(key) === entry) this.#settle(key, entry, answer.bytes);
      return answer.listing;
    } catch (err) {
      if (this.#kept.get(key) === entry) this.#kept.delete(key);
      throw err;
    }
  }

  #settle(key: string, entry: Kept, bytes: number): void {
    if (bytes > this.#maxBytes) {
      this.#kept.delete(key);
      return;
    }
    entry.expires = this.#now() + this.#ttlMs;
    entry.bytes = bytes;
    let total = [...this.#kept.values()].reduce((sum, k) => sum + k.bytes, 0);
    for (const [oldKey, old] of this.#kept) {
      if (this.#kept.size <= this.#maxEntries && total <= this.#maxBytes) break;
      if (oldKey === key) continue;
      this.#kept.delete(oldKey);
      total -= old.bytes;
    }
  }
}
