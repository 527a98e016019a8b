/**
 * The Audit page's API: the audit log a page at a time, newest first, with
 * what `apiary audit verify` says of it; and a stream of the records written
 * next (as `apiary audit -f`). Records hold argument names and sizes, never
 * values (src/api/audit.ts builds them that way), so they are sent as stored.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuditAnswer, AuditVerifySummary } from '../api/console-access.js';
import { isApiaryError, messageOf } from '../errors.js';
import { auditFilter, parseSince, readAuditPage, type AuditFilter } from '../state/audit-page.js';
import { followAudit, verifyAudit } from '../state/audit-read.js';
import { StateLayout } from '../state/layout.js';
import type { ApiContext } from './api.js';
import { HttpError, sendJson } from './http.js';

const PAGE_DEFAULT = 100;
const PAGE_MAX = 1000;
const FOLLOW_POLL_MS = 250;
const EMPTY = 'No audit log yet: it is written when a Gateway exists (kind: Gateway, metadata.name: default; spec.audit.enabled is true unless set false), one line per tool call, prompt, resource read, denial and failed sign-in.';

function filterOf(query: URLSearchParams, now: number): AuditFilter {
  const sinceText = query.get('since') || undefined;
  const since = sinceText === undefined ? undefined : parseSince(sinceText, now);
  if (sinceText !== undefined && since === undefined) throw new HttpError(400, 'BadRequest', `since: "${sinceText.slice(0, 64)}" is neither a duration (10m, 1h30m) nor a time (2026-12-04T10:00:00Z)`);
  return { server: query.get('server') || undefined, user: query.get('user') || undefined, since };
}

function positiveInt(query: URLSearchParams, name: string): number | undefined {
  const text = query.get(name);
  if (text === null || text === '') return undefined;
  if (!/^[1-9]\d{0,15}$/.test(text)) throw new HttpError(400, 'BadRequest', `${name} must be a positive whole number; got "${text.slice(0, 32)}"`);
  return Number(text);
}

/**
 * Verifying walks the whole chain (up to every kept file): done again only
 * when the files changed, so a page polling the log costs a stat of each.
 */
export class AuditVerifier {
  #last: { fingerprint: string; summary: AuditVerifySummary } | undefined;

  async summary(layout: StateLayout): Promise<AuditVerifySummary> {
    const fingerprint = await fingerprintOf(layout);
    if (this.#last?.fingerprint === fingerprint) return this.#last.summary;
    const summary = await verifySummary(layout);
    this.#last = { fingerprint, summary };
    return summary;
  }
}

async function fingerprintOf(layout: StateLayout): Promise<string> {
  const names = (await readdir(layout.auditDir).catch(() => [] as string[])).sort();
  const parts = await Promise.all(names.map(async (name) => {
    const info = await stat(join(layout.auditDir, name)).catch(() => undefined);
    return `${name}:${info?.ino ?? '-'}:${info?.size ?? '-'}:${info?.mtimeMs ?? '-'}`;
  }));
  return parts.join('|');
}

async function verifySummary(layout: StateLayout): Promise<AuditVerifySummary> {
  try {
    return await verifyAudit(layout);
  } catch (err) {
    // No key beside the records, an unreadable head: the log cannot be verified here, which the badge says.
    return { ok: false, message: isApiaryError(err) ? err.message : `the audit log could not be read: ${messageOf(err)}` };
  }
}

export async function auditPage(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const query = new URL(req.url ?? '/', 'http://console').searchParams;
  const filter = filterOf(query, Date.now());
  const limit = Math.min(positiveInt(query, 'limit') ?? PAGE_DEFAULT, PAGE_MAX);
  const before = positiveInt(query, 'before');
  const layout = new StateLayout(ctx.stateDir);
  const [page, verify] = await Promise.all([readAuditPage(layout, { ...filter, before, limit }), ctx.auditVerifier.summary(layout)]);
  const empty = page.records.length === 0 && verify.ok && verify.records === 0;
  sendJson(res, 200, { records: page.records, ...(page.next !== undefined ? { next: page.next } : {}), verify, ...(empty ? { message: EMPTY } : {}) } satisfies AuditAnswer);
}

/** Server-Sent Events: each record written after `after` (a sequence number) that passes the filter, as it is written. */
export async function auditFollow(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const query = new URL(req.url ?? '/', 'http://console').searchParams;
  const keep = auditFilter(filterOf(query, Date.now()));
  const after = positiveInt(query, 'after') ?? 0;
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
  res.write('retry: 1000\n\n');
  let closed = false;
  res.on('close', () => (closed = true));
  for await (const record of followAudit(new StateLayout(ctx.stateDir), after, { pollMs: FOLLOW_POLL_MS, stopped: () => closed })) {
    if (keep(record)) res.write(`data: ${JSON.stringify(record)}\n\n`);
  }
}
