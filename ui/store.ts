/**
 * The page's copy of the objects, kept current by the API's one event stream
 * (ADDED / MODIFIED / DELETED, as a Kubernetes watch). A stream that drops is
 * reported (the page shows a banner) and opened again; the server then
 * sends every object again, so nothing missed while away stays missed.
 */
import { forgetSession } from './session';
import { openStream } from './stream';
import type { ApiObject, WatchEvent } from './types';

type Listener = () => void;

export class Store {
  objects = new Map<string, ApiObject>();
  connected = false;
  /** The initial list has arrived (the stream's first BOOKMARK). */
  synced = false;
  /** Bumped on every change: what components compare. */
  version = 0;
  /** When each key last changed (performance.now()), for the benchmark. */
  readonly changedAt = new Map<string, number>();
  #listeners = new Set<Listener>();
  #close: (() => void) | undefined;
  #incoming: Map<string, ApiObject> | undefined;
  #frame = 0;

  start(): void {
    this.#close = openStream('/api/v1/watch', {
      // A (re)opened stream starts with the full list: collect it, then swap it in at its BOOKMARK.
      onOpen: () => (this.#incoming = new Map()),
      onEvent: (_event, data) => this.#apply(JSON.parse(data) as WatchEvent),
      onDrop: (status) => {
        if (this.connected) {
          this.connected = false;
          this.#notify();
        }
        // The session ended (signed out, expired): the page shows the sign-in screen. Anything else is tried again.
        if (status === 401) {
          forgetSession();
          location.reload();
        }
      },
    });
  }

  stop(): void {
    this.#close?.();
  }

  #apply(event: WatchEvent): void {
    const key = `${event.object.kind}/${event.object.metadata.name}`;
    if (event.type === 'BOOKMARK') {
      this.objects = this.#incoming ?? this.objects;
      this.#incoming = undefined;
      this.connected = true;
      this.synced = true;
      this.#notify();
      return;
    }
    const target = this.#incoming ?? this.objects;
    if (event.type === 'DELETED') target.delete(key);
    else target.set(key, event.object);
    if (this.#incoming === undefined) {
      this.changedAt.set(key, performance.now());
      this.#notify();
    }
  }

  /** One render per frame, however many events arrive in it. */
  #notify(): void {
    this.version += 1;
    if (this.#frame !== 0) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      for (const listener of this.#listeners) listener();
    });
  }

  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  list(kind: ApiObject['kind']): ApiObject[] {
    return [...this.objects.values()].filter((o) => o.kind === kind).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }

  get(kind: ApiObject['kind'], name: string): ApiObject | undefined {
    return this.objects.get(`${kind}/${name}`);
  }
}

export const store = new Store();
