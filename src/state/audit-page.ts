/**
 * The audit log a page at a time, newest first: what the console's Audit
 * page shows. Files are read newest first and reading stops once the page is
 * full, so the first page costs one file however many are kept. And the one
 * filter `apiary audit` and the console apply (server, user, since).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { subjectLabel, type StoredAuditRecord } from '../api/audit.js';
import { parseDuration } from '../util/duration.js';
import { auditFileNames, recordsOf } from './audit-read.js';
import type { StateLayout } from './layout.js';

export interface AuditFilter {
  server?: string | undefined;
  /** A user, or a subject's label: `(token)`, `(none)`, `(unauthenticated)`. */
  user?: string | undefined;
  /** Epoch milliseconds: only records from then on. */
  since?: number | undefined;
}

/** `10m` (back from now) or an ISO 8601 time, as epoch milliseconds; undefined when it is neither. */
export function parseSince(text: string, now: number): number | undefined {
  const ms = parseDuration(text);
  if (ms !== undefined) return now - ms;
  const time = Date.parse(text);
  return Number.isNaN(time) ? undefined : time;
}

export function auditFilter(filter: AuditFilter): (r: StoredAuditRecord) => boolean {
  const { server, user, since } = filter;
  return (r) =>
    (server === undefined || r.server === server) &&
    (user === undefined || r.subject.user === user || subjectLabel(r.subject) === user) &&
    (since === undefined || Date.parse(r.time) >= since);
}

export interface AuditPageQuery extends AuditFilter {
  /** Only records older than this sequence number (the `next` of the page before). */
  before?: number | undefined;
  limit: number;
}

export interface AuditPage {
  /** Newest first. */
  records: StoredAuditRecord[];
  /** The `before` of the next page, when older matching records may remain. */
  next?: number;
}

/**
 * Newest first, at most `limit`. Records are appended in time order, so
 * once one is older than `since` every record before it is too: reading
 * stops there rather than at the first file.
 */
export async function readAuditPage(layout: StateLayout, query: AuditPageQuery): Promise<AuditPage> {
  const keep = auditFilter(query);
  const records: StoredAuditRecord[] = [];
  // Sequence numbers only go down from here: a file rotated while it is read (its records met twice) is not shown twice.
  let floor = query.before ?? Number.POSITIVE_INFINITY;
  for (const name of (await auditFileNames(layout)).reverse()) {
    const text = await readFile(join(layout.auditDir, name), 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    for (const record of recordsOf([{ name, text }]).reverse()) {
      if (record.seq >= floor) continue;
      floor = record.seq;
      if (query.since !== undefined && Date.parse(record.time) < query.since) return { records };
      if (!keep(record)) continue;
      if (records.length === query.limit) return { records, next: records.at(-1)!.seq };
      records.push(record);
    }
  }
  return { records };
}
