/**
 * A stdio server's stderr, passed through apiary on its way to the server's
 * log file, so each line can be filtered (secret values redacted) as the
 * lines the gateway writes of its stdout are. Only for servers whose life is
 * bound to the controller's anyway (stdio servers: their stdin and stdout
 * are pipes to it; sandboxed servers, which go with it, both their outputs);
 * a server that outlives the controller keeps its output on the file, since
 * a pipe to a gone controller would break its writes.
 */
import { createWriteStream } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

/**
 * A line longer than this is written in pieces: a server that writes
 * without newlines must not make the controller hold everything it writes.
 * A secret value cut by such a piece boundary is not recognised.
 */
export const MAX_STDERR_LINE_CHARS = 64 * 1024;

/**
 * How much of a server's stderr the controller holds while the file takes it
 * before it stops reading (and the server's writes wait on a full pipe). A
 * burst within it costs the server nothing: a Node server that writes to a
 * full pipe queues the rest in its own memory, and a process.exit() at that
 * moment loses what is queued (written to a file, its writes were synchronous).
 */
export const BACKLOG_BYTES = 1024 * 1024;

export type LineFilter = (line: string) => string;

/**
 * Copies `stderr` to the open file `fd` line by line through `filter` (read
 * per line: it may be set after the start), in order, keeping a last line
 * without its newline. Resolves once the stream ended and everything was
 * written; the descriptor is closed then (it follows the file when renamed).
 */
export function pipeStderr(stderr: Readable, fd: number, filter: () => LineFilter): Promise<void> {
  const out = createWriteStream('', { fd, autoClose: true, highWaterMark: BACKLOG_BYTES });
  const decoder = new StringDecoder('utf8');
  let partial = '';
  const emit = (text: string, newline: boolean): void => {
    out.write(`${filter()(text)}${newline ? '\n' : ''}`);
  };
  const take = (text: string): void => {
    partial += text;
    let newline = partial.indexOf('\n');
    while (newline !== -1) {
      emit(partial.slice(0, newline), true);
      partial = partial.slice(newline + 1);
      newline = partial.indexOf('\n');
    }
    while (partial.length > MAX_STDERR_LINE_CHARS) {
      emit(partial.slice(0, MAX_STDERR_LINE_CHARS), true);
      partial = partial.slice(MAX_STDERR_LINE_CHARS);
    }
  };
  return new Promise((resolve) => {
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      take(decoder.end());
      if (partial !== '') emit(partial, false);
      partial = '';
      out.end(() => resolve());
    };
    stderr.on('data', (chunk: Buffer) => {
      take(decoder.write(chunk));
      // A slow disk holds the server's writes (the pipe fills), not the controller's memory.
      if (out.writableNeedDrain) {
        stderr.pause();
        out.once('drain', () => stderr.resume());
      }
    });
    stderr.once('end', finish);
    // A read error (the pipe torn down), or a stream destroyed without an end (a spawn that failed), ends the copy with what was read.
    stderr.once('error', finish);
    stderr.once('close', finish);
    out.on('error', () => resolve());
  });
}

/**
 * Two outputs (a server's stdout and stderr) as one stream of whole lines, so
 * a line of one is never cut by the other's; a last line without its newline
 * gets one. Ends when both have ended; a full reader pauses both.
 */
export function mergeLines(first: Readable, second: Readable): Readable {
  const merged = new PassThrough();
  let open = 2;
  for (const input of [first, second]) {
    const decoder = new StringDecoder('utf8');
    let partial = '';
    let done = false;
    const put = (text: string): void => {
      if (!merged.write(text) && !done) {
        input.pause();
        merged.once('drain', () => input.resume());
      }
    };
    input.on('data', (chunk: Buffer) => {
      partial += decoder.write(chunk);
      const cut = Math.max(partial.lastIndexOf('\n') + 1, partial.length > MAX_STDERR_LINE_CHARS ? partial.length : 0);
      if (cut === 0) return;
      const whole = partial.slice(0, cut);
      partial = partial.slice(cut);
      put(whole.endsWith('\n') ? whole : `${whole}\n`);
    });
    const finish = (): void => {
      if (done) return;
      done = true;
      partial += decoder.end();
      if (partial !== '') merged.write(`${partial}\n`);
      partial = '';
      if (--open === 0) merged.end();
    };
    input.once('end', finish);
    input.once('error', finish);
    input.once('close', finish);
  }
  return merged;
}
