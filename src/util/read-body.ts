/**
 * The one way apiary reads a request body (every MCP endpoint, the proxy in
 * front of HTTP servers, the console). It settles exactly once and never
 * rejects: a client that drops the connection mid-body ends its own request
 * and nothing else, a body past the limit is refused, and a body that does
 * not arrive in time is cut off in seconds, not at Node's 300 s request
 * timeout.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export type BodyFailureReason = 'TooLarge' | 'Timeout' | 'Aborted';

export type BodyResult =
  | { ok: true; body: Buffer }
  /** `status`: what to answer (413, 408); an Aborted request has nobody left to answer. */
  | { ok: false; reason: BodyFailureReason; status: number; message: string };

/**
 * How long a body may take: `graceMs` for any body, plus one second per
 * `bytesPerSecond` of it (its Content-Length, or what has arrived so far when
 * it is chunked).
 */
export interface BodyTiming {
  graceMs: number;
  bytesPerSecond: number;
}

/**
 * A JSON-RPC message or a console change is a few hundred bytes, sent at
 * once: 5 s is plenty for it on loopback, however loaded the machine. A
 * larger body still gets through at 64 KiB/s, a slow link's pace, so a
 * progressing 4 MiB upload (the MCP endpoints' limit) has 5 + 64 s. A client
 * that stalls, or drips a byte now and then, is cut off by that deadline.
 */
export const BODY_TIMING: BodyTiming = { graceMs: 5_000, bytesPerSecond: 64 * 1024 };

/** After a refusal the rest of the body is read and dropped, so the client can read the answer; for at most this long. */
const DRAIN_MS = 5_000;

export interface ReadBodyOptions {
  limit: number;
  timing?: BodyTiming;
}

/**
 * Reads the body of `req`, at most `limit` bytes. On a refusal (TooLarge,
 * Timeout) the answer the caller writes to `res` (when given) closes the
 * connection, and the connection is destroyed a few seconds later whatever
 * the client does.
 */
export function readBody(req: IncomingMessage, res: ServerResponse | undefined, options: ReadBodyOptions): Promise<BodyResult> {
  const { limit } = options;
  const timing = options.timing ?? BODY_TIMING;
  // An 'error' after the body is settled (a reset while the answer is written) must find a listener: without one it is thrown.
  req.on('error', () => undefined);
  return new Promise((resolve) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    let received = 0;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;

    const settle = (result: BodyResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      chunks.length = 0;
      if (!result.ok && result.reason !== 'Aborted') refuse(req, res);
      resolve(result);
    };
    const fail = (reason: BodyFailureReason): void => settle(failure(reason, limit, timing));
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limit) return fail('TooLarge');
      chunks.push(chunk);
      if (declared === undefined) arm();
    };
    const onEnd = (): void => settle({ ok: true, body: Buffer.concat(chunks) });
    // 'close' before 'end' (or an 'error'): the client went away mid-body.
    const onClose = (): void => {
      if (!req.complete) fail('Aborted');
    };
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => fail('Timeout'), Math.max(0, started + bodyAllowanceMs(timing, declared ?? received) - Date.now()));
      timer.unref();
    };

    const length = Number(req.headers['content-length']);
    const declared = req.headers['content-length'] !== undefined && Number.isFinite(length) ? length : undefined;
    if (declared !== undefined && declared > limit) return fail('TooLarge');
    // Already read to its end by someone else, or already gone. (req.complete says only that the parser has it all, maybe still unread.)
    if (req.readableEnded) return settle({ ok: true, body: Buffer.alloc(0) });
    if (req.destroyed) return fail('Aborted');
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    req.once('error', () => fail('Aborted'));
    arm();
  });
}

/** How long a body of `bytes` may take to arrive, from the moment its request came in. */
export function bodyAllowanceMs(timing: BodyTiming, bytes: number): number {
  return timing.graceMs + (bytes / timing.bytesPerSecond) * 1000;
}

function failure(reason: BodyFailureReason, limit: number, timing: BodyTiming): BodyResult {
  switch (reason) {
    case 'TooLarge':
      return { ok: false, reason, status: 413, message: `the request body is over ${formatBytes(limit)}` };
    case 'Timeout':
      return {
        ok: false,
        reason,
        status: 408,
        message: `the request body did not arrive in time (${timing.graceMs / 1000} s, plus a second per ${formatBytes(timing.bytesPerSecond)} of body)`,
      };
    case 'Aborted':
      return { ok: false, reason, status: 400, message: 'the client closed the connection before the request body ended' };
  }
}

/** A refused body: the rest is read and dropped (not kept), the answer closes the connection, and it is destroyed after DRAIN_MS regardless. */
function refuse(req: IncomingMessage, res: ServerResponse | undefined): void {
  if (res !== undefined && !res.headersSent) res.setHeader('Connection', 'close');
  req.resume();
  setTimeout(() => req.destroy(), DRAIN_MS).unref();
}

function formatBytes(bytes: number): string {
  const mib = 1024 * 1024;
  if (bytes >= mib && bytes % mib === 0) return `${bytes / mib} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}
