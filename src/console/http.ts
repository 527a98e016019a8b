/**
 * The console's HTTP rules, in one place: who may ask (the loopback Host and Origin check of util/loopback.ts, on the console's own port;
 * the bearer is checked by auth.ts), what a state change must look like (a non-GET with a
 * JSON body from this origin), and the headers every answer carries.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isApiaryError } from '../errors.js';
import { BODY_TIMING, readBody, type BodyTiming } from '../util/read-body.js';

export const MAX_BODY_BYTES = 64 * 1024;

export const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** An HTTP failure with the status code it maps to; the body is a Kubernetes-shaped Status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly hints: readonly string[] = [],
  ) {
    super(message);
  }
}

const STATUS_OF: Partial<Record<string, number>> = {
  NotFound: 404,
  SecretNotFound: 404,
  SecretKeyNotFound: 404,
  Usage: 400,
  NameInvalid: 400,
  ManifestInvalid: 422,
  KeyUnavailable: 503,
  KeyFileInsecure: 503,
  KeyMismatch: 409,
  SecretDecryptFailed: 409,
  // The directory follows git: the write conflicts with where its manifests come from; nothing is wrong with the console.
  GitSourced: 409,
};

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Errors as the API shows them: a code a page can branch on, the message and the ways out. Never a stack, never a value. */
export function sendError(res: ServerResponse, err: unknown): void {
  const failure =
    err instanceof HttpError
      ? err
      : isApiaryError(err)
        ? new HttpError(STATUS_OF[err.code] ?? 500, err.code, err.message, err.hints)
        : new HttpError(500, 'InternalError', 'the console could not answer this request; see the controller log');
  if (res.headersSent) {
    res.end();
    return;
  }
  sendJson(res, failure.status, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: failure.status, reason: failure.reason, message: failure.message, hints: failure.hints });
}

/**
 * A state change must be a non-GET with a JSON body, sent by this console's
 * own page (or a script with no browser context): anything cross-site is
 * refused before the body is read.
 */
export function checkStateChange(req: IncomingMessage, host: string): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, 'UnsupportedMediaType', 'a change must be sent as application/json');
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') throw new HttpError(403, 'Forbidden', `cross-site request refused (Sec-Fetch-Site: ${site})`);
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${host}`) throw new HttpError(403, 'Forbidden', 'request from another origin refused');
}

const BODY_FAILURE_REASONS = { TooLarge: 'RequestEntityTooLarge', Timeout: 'RequestTimeout', Aborted: 'BadRequest' } as const;

/** The JSON body, at most MAX_BODY_BYTES, arriving within `timing` (tests shorten it). */
export async function readJsonBody(req: IncomingMessage, timing: BodyTiming = BODY_TIMING): Promise<Record<string, unknown>> {
  const read = await readBody(req, undefined, { limit: MAX_BODY_BYTES, timing });
  if (!read.ok) throw new HttpError(read.status, BODY_FAILURE_REASONS[read.reason], read.message);
  const text = read.body.toString('utf8');
  if (text.trim() === '') return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'BadRequest', 'the body is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'BadRequest', 'the body must be a JSON object');
  return body as Record<string, unknown>;
}
