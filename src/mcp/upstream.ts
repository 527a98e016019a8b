/**
 * The server end of a stdio MCP server: newline-delimited JSON-RPC over the
 * child's stdin and stdout. Lines that are not JSON-RPC (servers that print
 * to stdout by mistake) are handed to `onNoise` for the log, not dropped. A
 * message over MAX_MESSAGE_BYTES breaks the framing: `onProtocolError`, and
 * nothing more is read from the process (what it writes is drained, so it
 * does not block on a full pipe while it is stopped).
 */
import type { Readable, Writable } from 'node:stream';
import { parseMessages, type JsonRpcMessage } from './jsonrpc.js';
import { LineReader, MAX_MESSAGE_BYTES } from './line-reader.js';

export interface UpstreamHandlers {
  onMessage(message: JsonRpcMessage): void;
  onNoise(line: string): void;
  onClose(): void;
  onProtocolError(message: string): void;
}

export const OVERSIZED_MESSAGE = `the server wrote a message over ${MAX_MESSAGE_BYTES / 1024 / 1024} MiB on stdout without a newline: protocol error`;

export class StdioUpstream {
  readonly #stdin: Writable;
  readonly #reader = new LineReader();
  #closed = false;

  constructor(stdin: Writable, stdout: Readable, handlers: UpstreamHandlers) {
    this.#stdin = stdin;
    stdout.on('data', (chunk: Buffer | string) => {
      const { lines, oversized } = this.#reader.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
      for (const line of lines) readLine(line, handlers);
      if (oversized) handlers.onProtocolError(OVERSIZED_MESSAGE);
    });
    const close = (): void => {
      if (this.#closed) return;
      this.#closed = true;
      handlers.onClose();
    };
    stdout.on('close', close);
    stdout.on('error', close);
    stdin.on('error', close);
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(message: JsonRpcMessage): void {
    if (this.#closed || this.#stdin.destroyed) return;
    this.#stdin.write(`${JSON.stringify(message)}\n`);
  }
}

function readLine(line: string, handlers: UpstreamHandlers): void {
  if (line.trim() === '') return;
  let parsed: JsonRpcMessage[] | undefined;
  try {
    parsed = parseMessages(JSON.parse(line));
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined) handlers.onNoise(line);
  else for (const m of parsed) handlers.onMessage(m);
}
