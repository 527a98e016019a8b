/**
 * A server's event stream read event by event, as an EventSource client
 * reads it (eventsource-parser, the parser the MCP SDK's own client uses),
 * and written on in one canonical form: `\n` line ends, `data` one line per
 * line of the (possibly rewritten) data, `id` and `event` kept. Splitting on
 * "\n\n" by hand got CRLF streams, `data:` without a space and data over
 * several lines wrong, and a filter missed what it could not see.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';

export interface EventStreamRewriter {
  /** A piece of the stream as it came (events may be cut anywhere, even between CR and LF). */
  feed(chunk: string): void;
}

/**
 * `rewrite`: what the data of an event becomes (the proxy's spec.tools
 * filter); `onEvent`: told of each event first (the proxy learns a legacy
 * stream's session from its `endpoint` event). Comments (keep-alives) and
 * `retry` pass on as they come, outside any event. An event with no data
 * line is not passed on (the standard dispatches nothing for it, though its
 * `id` alone would move a client's resume point; MCP servers write `data:`
 * with every id, a priming event's empty), and neither is an event the
 * stream ends in the middle of, which a client drops too.
 */
export function eventStreamRewriter(write: (text: string) => void, rewrite: (data: string) => string, onEvent?: (event: EventSourceMessage) => void): EventStreamRewriter {
  return createParser({
    onEvent: (event) => {
      onEvent?.(event);
      write(serializeEvent({ ...event, data: rewrite(event.data) }));
    },
    onComment: (comment) => write(`:${comment === '' ? '' : ` ${comment}`}\n`),
    onRetry: (ms) => write(`retry: ${ms}\n`),
  });
}

/** One event as the standard writes it: each of its data's lines a `data:` field, then the blank line that ends it. */
export function serializeEvent(event: EventSourceMessage): string {
  const id = event.id === undefined ? '' : `id: ${event.id}\n`;
  const type = event.event === undefined ? '' : `event: ${event.event}\n`;
  return `${id}${type}${event.data
    .split('\n')
    .map((line) => `data: ${line}\n`)
    .join('')}\n`;
}
