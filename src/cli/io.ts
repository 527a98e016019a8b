/** Terminal output: the only place that knows about TTYs and colour. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  color: boolean;
  isTTY: boolean;
  /** A transient status line on stderr (spinners); only on a terminal. */
  status(text: string | undefined): void;
}

export function processIo(): Io {
  const isTTY = process.stdout.isTTY === true;
  return {
    out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
    err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
    color: isTTY && process.env['NO_COLOR'] === undefined && process.env['TERM'] !== 'dumb',
    isTTY,
    status: (text) => {
      if (process.stderr.isTTY !== true) return;
      process.stderr.write(text === undefined ? '\r\u001b[2K' : `\r\u001b[2K${text}`);
    },
  };
}

const CODES = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;

export function paint(io: Io, color: keyof typeof CODES, text: string): string {
  return io.color ? `\u001b[${CODES[color]}m${text}\u001b[0m` : text;
}
