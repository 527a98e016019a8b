/** Terminal output: the only place that knows about TTYs and colour. */
import { fstatSync, statSync, writeSync } from 'node:fs';

export interface Io {
  out(text: string): void;
  err(text: string): void;
  color: boolean;
  isTTY: boolean;
  /** A transient status line on stderr (spinners); only on a terminal. */
  status(text: string | undefined): void;
}

const line = (text: string): string => (text.endsWith('\n') ? text : `${text}\n`);

/** A status line on stderr, when it is a terminal. */
function terminalStatus(text: string | undefined): void {
  if (process.stderr.isTTY !== true) return;
  process.stderr.write(text === undefined ? '\r\u001b[2K' : `\r\u001b[2K${text}`);
}

const colorFor = (isTTY: boolean): boolean => isTTY && process.env['NO_COLOR'] === undefined && process.env['TERM'] !== 'dumb';

export function processIo(): Io {
  const isTTY = process.stdout.isTTY === true;
  return {
    out: (text) => process.stdout.write(line(text)),
    err: (text) => process.stderr.write(line(text)),
    color: colorFor(isTTY),
    isTTY,
    status: terminalStatus,
  };
}

/**
 * Whether `fd` is a terminal, asked as node's own stdio streams ask (libuv's
 * guess of the handle, through tty_wrap) without making one: true or false,
 * or undefined when that binding is not there to ask. process.binding is
 * kept by node for compatibility (DEP0111, documentation only): it is not
 * asked when pending deprecations are on (NODE_PENDING_DEPRECATION=1; bin/apiary
 * starts the snapshot with no such option in NODE_OPTIONS), as node then warns.
 */
function isTerminal(fd: number): boolean | undefined {
  if (process.env['NODE_PENDING_DEPRECATION'] === '1' || process.execArgv.includes('--pending-deprecation')) return undefined;
  try {
    const binding = (process as unknown as { binding(name: string): { isTTY?: (fd: number) => unknown } }).binding('tty_wrap');
    const answer = binding.isTTY?.(fd);
    return typeof answer === 'boolean' ? answer : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Without that answer, whether `fd` could be a terminal: every terminal is a
 * character device, and /dev/null, the one character device output is
 * commonly sent to, is not.
 */
function mightBeTerminal(fd: number): boolean {
  try {
    const info = fstatSync(fd);
    return info.isCharacterDevice() && info.rdev !== statSync('/dev/null').rdev;
  } catch {
    return true;
  }
}

/**
 * Writes to `fd` with write(2), whole, from the first call. A descriptor
 * open without blocking that is full (EAGAIN) hands the rest, and all later
 * text, to node's stream for it, which waits; a reader gone (EPIPE: `apiary
 * get | head -1`) ends the output quietly, as the default SIGPIPE would.
 */
function descriptorWriter(fd: number, stream: () => NodeJS.WriteStream): (text: string) => void {
  let fallback: NodeJS.WriteStream | undefined;
  let closed = false;
  return (text) => {
    if (closed) return;
    if (fallback !== undefined) {
      fallback.write(text);
      return;
    }
    const bytes = Buffer.from(text);
    let done = 0;
    while (done < bytes.length) {
      try {
        done += writeSync(fd, bytes, done);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') {
          closed = true;
          return;
        }
        if (code !== 'EAGAIN') throw err;
        fallback = stream();
        fallback.write(bytes.subarray(done));
        return;
      }
    }
  };
}

/**
 * processIo for a verb that runs once and exits (the start-up snapshot's get
 * and validate): output is written straight to its descriptor, a terminal's
 * as a file's or a pipe's, without node's stream for it, whose making (a
 * socket for a pipe, with the net module; a tty stream for a terminal) costs
 * such a start 0.5-1 ms. Where it cannot be told whether a descriptor is a
 * terminal and it may be one, that descriptor gets processIo's stream.
 */
export function descriptorIo(): Io {
  const outTerminal = isTerminal(1);
  const errTerminal = isTerminal(2);
  const outDirect = outTerminal !== undefined || !mightBeTerminal(1);
  const errDirect = errTerminal !== undefined || !mightBeTerminal(2);
  if (!outDirect && !errDirect) return processIo();
  const isTTY = outTerminal ?? (!outDirect && process.stdout.isTTY === true);
  const out = outDirect ? descriptorWriter(1, () => process.stdout) : (text: string): unknown => process.stdout.write(text);
  const err = errDirect ? descriptorWriter(2, () => process.stderr) : (text: string): unknown => process.stderr.write(text);
  return {
    out: (text) => out(line(text)),
    err: (text) => err(line(text)),
    color: colorFor(isTTY),
    isTTY,
    status: errTerminal === false || (errTerminal === undefined && errDirect) ? () => undefined : terminalStatus,
  };
}

const CODES = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;

export function paint(io: Io, color: keyof typeof CODES, text: string): string {
  return io.color ? `\u001b[${CODES[color]}m${text}\u001b[0m` : text;
}
