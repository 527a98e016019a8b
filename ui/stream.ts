/**
 * Server-Sent Events read with fetch, so that the request carries the
 * session header (EventSource cannot send one). As EventSource does, a
 * stream that drops or cannot open is opened again a moment later; a 401
 * (signed out, expired) is not retried. Reads the console's own streams,
 * whose lines end in "\n".
 */
// With .js: test/console-page.test.ts runs this file under Node's module rules too.
import { sessionHeaders } from './session.js';

export interface StreamHandlers {
  /** The stream is open (again): the server starts it from the beginning. */
  onOpen?(): void;
  onEvent(event: string, data: string): void;
  /** The stream dropped or did not open (status 0: no answer); it is opened again unless the status is 401. */
  onDrop?(status: number): void;
}

const RETRY_MS = 1000;

/** Opens the stream at `path`; the function returned closes it for good. */
export function openStream(path: string, handlers: StreamHandlers): () => void {
  const abort = new AbortController();
  let closed = false;
  const run = async (): Promise<void> => {
    let status = 0;
    try {
      const res = await fetch(path, { headers: { Accept: 'text/event-stream', ...sessionHeaders() }, credentials: 'omit', cache: 'no-store', signal: abort.signal });
      status = res.status;
      if (res.ok && res.body !== null) {
        handlers.onOpen?.();
        await readEvents(res.body, handlers.onEvent);
      }
    } catch {
      // No answer (the controller is away), or closed: both end this attempt.
    }
    if (closed) return;
    handlers.onDrop?.(status);
    if (status !== 401) setTimeout(() => void (closed ? undefined : run()), RETRY_MS);
  };
  void run();
  return () => {
    closed = true;
    abort.abort();
  };
}

async function readEvents(body: ReadableStream<Uint8Array>, onEvent: StreamHandlers['onEvent']): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      dispatch(buffer.slice(0, end), onEvent);
      buffer = buffer.slice(end + 2);
    }
  }
}

/** One event block: its `event:` name (message by default) and its `data:` lines; comments and ids are skipped. */
function dispatch(block: string, onEvent: StreamHandlers['onEvent']): void {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice('event:'.length).trim();
    else if (line.startsWith('data:')) data.push(line.slice('data:'.length).replace(/^ /, ''));
  }
  if (data.length > 0) onEvent(event, data.join('\n'));
}
