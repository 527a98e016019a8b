/** The controller's log on stderr: readable on a terminal (its text escaped, as servers write some of it), JSON lines otherwise. */
import type { LogRecord } from '../util/logger.js';
import { escapeTerminal } from './escape.js';
import { paint, type Io } from './io.js';

export function logSink(io: Io, stderrIsTTY: boolean): (record: LogRecord) => void {
  if (!stderrIsTTY) return (record) => io.err(JSON.stringify(record));
  const colors = { debug: 'dim', info: 'green', warn: 'yellow', error: 'red' } as const;
  return ({ time, level, msg, ...fields }) => {
    const extras = Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
      .join(' ');
    io.err(`${paint(io, 'dim', time.slice(11, 19))} ${paint(io, colors[level], level.toUpperCase().padEnd(5))} ${escapeTerminal(msg)}${extras ? ` ${paint(io, 'dim', escapeTerminal(extras))}` : ''}`);
  };
}
