/**
 * The controller's log: structured records with fields, never interpolated
 * strings with values in them. Where records go (a terminal, JSON lines) is
 * decided by the CLI, which passes a sink.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface LogRecord {
  time: string;
  level: LogLevel;
  msg: string;
  [field: string]: unknown;
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function createLogger(sink: (record: LogRecord) => void, minLevel: LogLevel = 'info'): Logger {
  const order: LogLevel[] = ['debug', 'info', 'warn', 'error'];
  const emit = (level: LogLevel) => (msg: string, fields: Record<string, unknown> = {}) => {
    if (order.indexOf(level) < order.indexOf(minLevel)) return;
    sink({ time: new Date().toISOString(), level, msg, ...fields });
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

export const silentLogger: Logger = createLogger(() => undefined);
