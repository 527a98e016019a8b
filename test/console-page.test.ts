/**
 * The page's sign-in and its streams, run in Node against a real console:
 * the code taken out of the address's fragment, traded for a token kept in
 * sessionStorage, and that token sent as a header by the API calls and by
 * the fetch-based event stream (EventSource cannot send one). A browser's
 * globals are stood in for by the smallest objects that behave alike.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { api, signIn } from '../ui/api.js';
import { sessionToken, takeLoginCode } from '../ui/session.js';
import { openStream } from '../ui/stream.js';
import { harness } from './helpers/controller.js';
import { startConsole } from './helpers/console.js';

const realFetch = globalThis.fetch;
const globals = globalThis as unknown as Record<string, unknown>;

/** A tab opened at `address`: its location, history and sessionStorage, and fetch resolving paths against its origin. */
function openTab(address: string): { address: () => string } {
  let url = new URL(address);
  const store = new Map<string, string>();
  globals['location'] = {
    get hash() {
      return url.hash;
    },
    get pathname() {
      return url.pathname;
    },
    get search() {
      return url.search;
    },
  };
  globals['history'] = { replaceState: (_state: unknown, _title: string, to: string) => (url = new URL(to, url)) };
  globals['sessionStorage'] = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => store.set(k, v), removeItem: (k: string) => store.delete(k) };
  globalThis.fetch = (input, init) => realFetch(new URL(String(input), url.origin), init);
  return { address: () => url.href };
}

afterEach(() => {
  globalThis.fetch = realFetch;
  for (const name of ['location', 'history', 'sessionStorage']) delete globals[name];
});

describe('the console page', () => {
  it('takes the code out of the address, signs in once, and sends its session as a header on calls and streams', async () => {
    const h = await harness();
    const c = await startConsole(h);
    const link = await c.server.loginLink();
    const tab = openTab(link);
    const code = takeLoginCode();
    expect(tab.address()).toBe(`${c.server.url}/`);
    expect(await signIn(code!)).toBe(true);
    expect(sessionToken()).toMatch(/^[\w-]{32}$/);
    expect(await signIn(code!)).toBe(false);
    expect((await api.get<{ version: string }>('/api/v1/console')).version).toBe('test');

    // The watch stream: every object, then a BOOKMARK, read with the session header.
    const events: string[] = [];
    const drops: number[] = [];
    let opened = 0;
    const bookmarked = new Promise<void>((resolve) => {
      const close = openStream('/api/v1/watch', {
        onOpen: () => (opened += 1),
        onEvent: (_event, data) => {
          const type = (JSON.parse(data) as { type: string }).type;
          events.push(type);
          if (type === 'BOOKMARK') {
            close();
            resolve();
          }
        },
        onDrop: (status) => drops.push(status),
      });
    });
    await bookmarked;
    expect(opened).toBe(1);
    expect(events).toEqual(['BOOKMARK']);
    expect(drops).toEqual([]);

    // Signed out: the stream is refused with 401 and not tried again.
    await api.post('/logout');
    const refused = await new Promise<number>((resolve) => openStream('/api/v1/watch', { onEvent: () => undefined, onDrop: resolve }));
    expect(refused).toBe(401);
  });

  it('opens the stream again when the controller comes back, with the same session', async () => {
    const h = await harness();
    const first = await startConsole(h);
    openTab(await first.server.loginLink());
    expect(await signIn(takeLoginCode()!)).toBe(true);
    let opened = 0;
    let bookmarks = 0;
    const drops: number[] = [];
    // Waits on what the stream reports, never on time.
    const waiters = new Set<() => void>();
    const check = (): void => [...waiters].forEach((w) => w());
    const when = (until: () => boolean): Promise<void> =>
      new Promise((resolve) => {
        const waiter = (): void => {
          if (!until()) return;
          waiters.delete(waiter);
          resolve();
        };
        waiters.add(waiter);
        waiter();
      });
    const close = openStream('/api/v1/watch', {
      onOpen: () => {
        opened += 1;
        check();
      },
      onEvent: (_event, data) => {
        if ((JSON.parse(data) as { type: string }).type === 'BOOKMARK') bookmarks += 1;
        check();
      },
      onDrop: (status) => {
        drops.push(status);
        check();
      },
    });
    try {
      await when(() => bookmarks === 1);
      await first.server.stop();
      await when(() => drops.length > 0);
      // Back on the port it had (console.json remembers it); the session was kept on disk.
      const second = await startConsole(h);
      expect(second.port).toBe(first.port);
      await when(() => bookmarks === 2);
      expect(opened).toBe(2);
      expect(drops.every((status) => status !== 401)).toBe(true);
    } finally {
      close();
    }
  });
});
