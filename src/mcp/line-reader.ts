/**
 * MCP's stdio framing: one JSON-RPC message per line. Bytes are kept as the
 * chunks they came in and only each new chunk is searched for a newline, so
 * a long message costs its length once, not once per chunk; and a message
 * is capped, so a server that writes without newlines cannot make the
 * controller hold (and rescan) everything it writes.
 */

/**
 * The most one message may take, in bytes: the same as a client's request
 * body at the HTTP endpoint, so apiary holds no more for a server than for a
 * client (the SDK's own stdio reader caps its buffer too, at 10 MiB).
 */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

export interface LinesRead {
  /** The lines this chunk completed, in order, without their line ending. */
  lines: string[];
  /** A message passed the cap here: the stream cannot be read any further. */
  oversized: boolean;
}

export class LineReader {
  readonly #maxBytes: number;
  /** The unfinished line so far, as it came. */
  #parts: Buffer[] = [];
  #size = 0;
  #broken = false;

  constructor(maxBytes: number = MAX_MESSAGE_BYTES) {
    this.#maxBytes = maxBytes;
  }

  /** Bytes held for the unfinished line. */
  get buffered(): number {
    return this.#size;
  }

  push(chunk: Buffer): LinesRead {
    const lines: string[] = [];
    if (this.#broken) return { lines, oversized: false };
    let start = 0;
    for (let newline = chunk.indexOf(0x0a, start); newline !== -1; newline = chunk.indexOf(0x0a, start)) {
      if (this.#size + newline - start > this.#maxBytes) return this.#overflow(lines);
      lines.push(this.#take(chunk.subarray(start, newline)));
      start = newline + 1;
    }
    const rest = chunk.length - start;
    if (this.#size + rest > this.#maxBytes) return this.#overflow(lines);
    if (rest > 0) {
      this.#parts.push(chunk.subarray(start));
      this.#size += rest;
    }
    return { lines, oversized: false };
  }

  /** The held bytes and `tail` as one line (a newline byte never falls inside a UTF-8 character, so the line decodes whole). */
  #take(tail: Buffer): string {
    const whole = this.#size === 0 ? tail : Buffer.concat([...this.#parts, tail]);
    this.#parts = [];
    this.#size = 0;
    const line = whole.toString('utf8');
    return line.endsWith('\r') ? line.slice(0, -1) : line;
  }

  #overflow(lines: string[]): LinesRead {
    this.#broken = true;
    this.#parts = [];
    this.#size = 0;
    return { lines, oversized: true };
  }
}
