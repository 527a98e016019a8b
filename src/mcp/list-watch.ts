/**
 * Who hears that a list changed, beside a host's 2025 sessions: the
 * `subscriptions/listen` streams of the 2026-07-28 clients (modern.ts). A
 * host tells its watchers at the very moment it sends its sessions
 * `notifications/<kind>/list_changed`, so both eras learn of a change from
 * the same place.
 */
import type { JsonRpcMessage } from './jsonrpc.js';

/** The lists whose changes a `subscriptions/listen` stream carries. */
export type ListKind = 'tools' | 'prompts' | 'resources';

/** Which `notifications/<kind>/list_changed` a message is, if it is one. */
export function listChangedKind(message: JsonRpcMessage): ListKind | undefined {
  const method = (message as { method?: unknown }).method;
  const match = typeof method === 'string' ? /^notifications\/(tools|prompts|resources)\/list_changed$/.exec(method) : null;
  return match === null ? undefined : (match[1] as ListKind);
}

export class ListWatchers {
  readonly #listeners = new Set<(kind: ListKind) => void>();

  /** Adds a listener; gives back the way to remove it. */
  add(listener: (kind: ListKind) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Tells every listener if `message` is a list change (anything else is not their business). */
  tell(message: JsonRpcMessage): void {
    const kind = listChangedKind(message);
    if (kind === undefined) return;
    for (const listener of this.#listeners) listener(kind);
  }
}
