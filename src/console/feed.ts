/**
 * The live side of the API: the same objects `get -o json` prints, composed
 * from the running controller's manifests and status records, and a
 * Server-Sent Events stream of ADDED / MODIFIED / DELETED for them, as a
 * Kubernetes watch sends. The controller only says "something may have
 * changed"; the feed composes afresh and sends what differs (level, not edge).
 */
import type { ServerResponse } from 'node:http';
import type { Kind, ResourceKey } from '../api/names.js';
import type { ParsedDocument } from '../manifests/parse.js';
import { composeStateView, type ApiObject, type StateView, type StateViewInput } from '../state/view.js';

export interface FeedSource {
  snapshot(): StateViewInput;
  observe(listener: () => void): () => void;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';

/** Changes arriving within this window go out together: a burst of status writes costs one composition. */
const COALESCE_MS = 8;
const HEARTBEAT_MS = 15_000;

interface Client {
  res: ServerResponse;
}

export class Feed {
  readonly #source: FeedSource;
  readonly #clients = new Set<Client>();
  /** What each client has been told: key -> the object's JSON. */
  #sent = new Map<ResourceKey, string>();
  #objects = new Map<ResourceKey, ApiObject>();
  #timer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #seq = 0;
  /** Changes arrived while nobody watched: composed when someone does. */
  #stale = false;

  constructor(source: FeedSource) {
    this.#source = source;
  }

  start(): void {
    this.#unsubscribe = this.#source.observe(() => this.#schedule());
    this.#publish();
    this.#heartbeat = setInterval(() => this.#broadcast(': keep-alive\n\n'), HEARTBEAT_MS);
    this.#heartbeat.unref();
  }

  stop(): void {
    this.#unsubscribe?.();
    clearTimeout(this.#timer);
    clearInterval(this.#heartbeat);
    for (const client of this.#clients) client.res.end();
    this.#clients.clear();
  }

  /** The view as of now (composed afresh), for the API's GETs. */
  view(): StateView {
    return composeStateView(this.#source.snapshot());
  }

  /** The document that declares a resource (its text and file), as the controller last read it. */
  document(kind: Kind, name: string): ParsedDocument | undefined {
    return this.#source.snapshot().documents.find((d) => d.kind === kind && d.name === name);
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  /** Starts a stream: every current object as ADDED, a BOOKMARK marking the end of those, then changes as they happen. */
  subscribe(res: ServerResponse): void {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    const client: Client = { res };
    if (this.#stale) this.#publish();
    this.#clients.add(client);
    res.on('close', () => this.#clients.delete(client));
    let text = 'retry: 1000\n\n';
    for (const object of this.#objects.values()) text += this.#event('ADDED', object);
    text += this.#event('BOOKMARK', { kind: 'Bookmark', metadata: { annotations: { 'k8s.io/initial-events-end': 'true' } } });
    res.write(text);
  }

  #schedule(): void {
    // Nobody watching: no composing on the controller's time; the first subscriber gets a fresh view.
    if (this.#clients.size === 0) {
      this.#stale = true;
      return;
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#publish();
    }, COALESCE_MS);
  }

  #publish(): void {
    this.#stale = false;
    const view = this.view();
    const next = new Map<ResourceKey, string>();
    const objects = new Map<ResourceKey, ApiObject>();
    let text = '';
    for (const o of view.objects) {
      const json = JSON.stringify(o.object);
      next.set(o.key, json);
      objects.set(o.key, o.object);
      const before = this.#sent.get(o.key);
      if (before !== json) text += this.#event(before === undefined ? 'ADDED' : 'MODIFIED', o.object);
    }
    for (const [key, json] of this.#sent) if (!next.has(key)) text += this.#event('DELETED', JSON.parse(json) as ApiObject);
    this.#sent = next;
    this.#objects = objects;
    if (text !== '') this.#broadcast(text);
  }

  #event(type: WatchEventType, object: unknown): string {
    this.#seq += 1;
    return `id: ${this.#seq}\ndata: ${JSON.stringify({ type, object })}\n\n`;
  }

  #broadcast(text: string): void {
    for (const client of this.#clients) client.res.write(text);
  }
}
