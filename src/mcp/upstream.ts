/**
 * The server end of a stdio MCP server: newline-delimited JSON-RPC over the
 * child's stdin and stdout. Lines that are not JSON-RPC (servers that print
 * to stdout by mistake) are handed to `onNoise` for the log, not dropped.
 */
import type { Readable, Writable } from 'node:stream';
import { parseMessages, type JsonRpcMessage } from './jsonrpc.js';

export interface UpstreamHandlers {
  onMessage(message: JsonRpcMessage): void;
  onNoise(line: string): void;
  onClose(): void;
}

export class StdioUpstream {
  readonly #stdin: Writable;
  #buffer = '';
  #closed = false;

  constructor(stdin: Writable, stdout: Readable, handlers: UpstreamHandlers) {
    this.#stdin = stdin;
    stdout.setEncoding('utf8');
    stdout.on('data', (chunk: string) => {
      this.#buffer += chunk;
      let newline: number;
      while ((newline = this.#buffer.indexOf('\n')) !== -1) {
        const line = this.#buffer.slice(0, newline).replace(/\r$/, '');
        this.#buffer = this.#buffer.slice(newline + 1);
        if (line.trim() === '') continue;
        let parsed: JsonRpcMessage[] | undefined;
        try {
          parsed = parseMessages(JSON.parse(line));
        } catch {
          parsed = undefined;
        }
        if (parsed === undefined) handlers.onNoise(line);
        else for (const m of parsed) handlers.onMessage(m);
      }
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
