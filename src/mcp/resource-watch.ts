/**
 * The resources 2026-07-28 listeners at one endpoint asked to hear of
 * (`subscriptions/listen` with `resourceSubscriptions`), subscribed at the
 * server behind: one session of apiary's own at the endpoint's host (a
 * Bridge), `resources/subscribe` once for each URI at its first listener and
 * `resources/unsubscribe` at its last one's end. The server's
 * `notifications/resources/updated` for a watched URI is published once to
 * the endpoint's listen streams, whose router gives it to each listener that
 * asked for that URI, tagged with its own subscription id.
 */
import type { JsonRpcMessage } from './jsonrpc.js';
import { isNotification, isResponse } from './jsonrpc.js';
import type { SessionHost } from './modern.js';

/** The id of the session's introduction (initialize): the subscriptions go once it is answered. */
const INTRODUCTION = 'watch-introduction';

export class ResourceWatch {
  readonly #host: SessionHost;
  readonly #publish: (uri: string) => void;
  /** Listeners of each watched URI. */
  readonly #listeners = new Map<string, number>();
  /** The session the subscriptions are made over, while any URI is watched, and when its introduction was answered. */
  #session: { id: string; introduced: Promise<void> } | undefined;
  /** Whoever waits for the introduction's answer (a host such as the proxy's opens its session with the server then). */
  #introduced: (() => void) | undefined;
  /** Requests not yet answered: the session stays until they are (closing it would cancel an unsubscribe at the server). */
  readonly #unanswered = new Set<string>();
  #nextId = 1;

  constructor(host: SessionHost, publish: (uri: string) => void) {
    this.#host = host;
    this.#publish = publish;
  }

  /** A listener asked for `uris`: subscribed at the server if it is their first; gives back what to call at its end. */
  watch(uris: readonly string[]): () => void {
    const mine = [...new Set(uris)];
    for (const uri of mine) {
      const count = this.#listeners.get(uri) ?? 0;
      this.#listeners.set(uri, count + 1);
      if (count === 0) this.#send('resources/subscribe', { uri });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const uri of mine) this.#release(uri);
    };
  }

  /** The endpoint is closing: the session goes (the server forgets its subscriptions with it, or apiary's next session makes new ones). */
  close(): void {
    this.#listeners.clear();
    this.#closeSession();
  }

  #release(uri: string): void {
    const count = this.#listeners.get(uri) ?? 0;
    if (count > 1) return void this.#listeners.set(uri, count - 1);
    this.#listeners.delete(uri);
    this.#send('resources/unsubscribe', { uri });
  }

  #send(method: string, params: Record<string, unknown>): void {
    const session = this.#session ?? this.#open();
    // The answer (and a refusal) goes nowhere: a listener was told what the SDK honoured, and the server's updates are what it hears.
    const id = `watch-${this.#nextId++}`;
    this.#unanswered.add(id);
    void session.introduced.then(() => {
      if (this.#session === session) void this.#host.fromClient(session.id, { jsonrpc: '2.0', id, method, params });
    });
  }

  #open(): { id: string; introduced: Promise<void> } {
    const id = this.#host.openSession((message) => this.#deliver(message), { ephemeral: true });
    const session = { id, introduced: new Promise<void>((resolve) => (this.#introduced = resolve)) };
    this.#session = session;
    void this.#host.fromClient(id, { jsonrpc: '2.0', id: INTRODUCTION, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'apiary-resource-watch', version: '1' } } });
    return session;
  }

  #closeSession(): void {
    const session = this.#session;
    this.#session = undefined;
    this.#unanswered.clear();
    this.#introduced = undefined;
    if (session !== undefined) this.#host.closeSession(session.id);
  }

  #deliver(message: JsonRpcMessage): void {
    if (isResponse(message)) {
      if (message.id === INTRODUCTION) return this.#introduced?.();
      this.#unanswered.delete(String(message.id));
      if (this.#listeners.size === 0 && this.#unanswered.size === 0) this.#closeSession();
      return;
    }
    if (!isNotification(message) || message.method !== 'notifications/resources/updated') return;
    const uri = message.params?.['uri'];
    if (typeof uri === 'string' && this.#listeners.has(uri)) this.#publish(uri);
  }
}
