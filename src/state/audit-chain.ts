/**
 * The audit log's chain, pure over texts (no I/O): how a record becomes a
 * sealed line, and how `apiary audit verify` checks the files.
 *
 * Each line is the record's JSON with one more field, `mac`: the HMAC-SHA256,
 * under the audit key, of the previous line's mac and this line's JSON
 * without its mac. So every line vouches for itself AND for its place: an
 * edited line fails its own mac (the record named is the edited one), a
 * removed line leaves a gap in `seq` and breaks the next mac, and nobody
 * without the key can write a line that passes. The head anchor (also keyed)
 * says where the chain ends, so records cut from the end are seen too, and
 * where it starts, once rotation has dropped the oldest file.
 */
import { createHmac, type KeyObject } from 'node:crypto';
import type { AuditRecord, StoredAuditRecord } from '../api/audit.js';

/** The chain's key: its bytes, or (the writer, once per record) a KeyObject made from them. */
export type AuditKey = Uint8Array | KeyObject;

/** The mac before the first record. */
export const GENESIS = 'genesis';

/** Where the chain ends (`seq`, `mac`) and starts (`first`, and the mac before it), keyed so it cannot be rewritten either. */
export interface AuditHead {
  seq: number;
  mac: string;
  first: number;
  firstPrev: string;
  headMac: string;
}

export function macOf(key: AuditKey, prev: string, body: string): string {
  return createHmac('sha256', key).update(prev).update('\n').update(body).digest('hex');
}

/** The line for a record at `seq` after `prev` (with its newline), and its mac for the next. */
export function sealLine(key: AuditKey, prev: string, seq: number, record: AuditRecord): { line: string; mac: string } {
  // `seq` first, without copying the record into a new object (this runs once per audited call).
  const body = `{"seq":${seq},${JSON.stringify(record).slice(1)}`;
  const mac = macOf(key, prev, body);
  return { line: `${body.slice(0, -1)},"mac":"${mac}"}\n`, mac };
}

const SEALED = /^(\{.*),"mac":"([0-9a-f]{64})"\}$/s;

/** A line as stored: its body (what the mac covers), its mac and the record; undefined when it is not a sealed record. */
export function openLine(line: string): { body: string; mac: string; record: StoredAuditRecord } | undefined {
  const match = SEALED.exec(line);
  if (match === null) return undefined;
  const body = `${match[1]!}}`;
  try {
    const parsed = JSON.parse(body) as Partial<StoredAuditRecord> | null;
    if (parsed === null || typeof parsed !== 'object' || !Number.isSafeInteger(parsed.seq)) return undefined;
    return { body, mac: match[2]!, record: { ...(parsed as StoredAuditRecord), mac: match[2]! } };
  } catch {
    return undefined;
  }
}

export function sealHead(key: AuditKey, head: Omit<AuditHead, 'headMac'>): AuditHead {
  return { ...head, headMac: headMacOf(key, head) };
}

function headMacOf(key: AuditKey, head: Omit<AuditHead, 'headMac'>): string {
  return macOf(key, 'head', JSON.stringify([head.seq, head.mac, head.first, head.firstPrev]));
}

/** The head as read from its file; undefined when it is not one. */
export function parseHead(text: string): AuditHead | undefined {
  try {
    const h = JSON.parse(text) as Partial<AuditHead> | null;
    if (h === null || typeof h !== 'object') return undefined;
    if (!Number.isSafeInteger(h.seq) || !Number.isSafeInteger(h.first)) return undefined;
    if (typeof h.mac !== 'string' || typeof h.firstPrev !== 'string' || typeof h.headMac !== 'string') return undefined;
    return h as AuditHead;
  } catch {
    return undefined;
  }
}

export interface AuditFileText {
  /** The file's name, as messages show it (`audit.jsonl.2`). */
  name: string;
  text: string;
}

export type VerifyResult =
  | { ok: true; records: number; files: number; first?: number; last?: number; unanchored: number }
  | { ok: false; message: string; file?: string; line?: number; seq?: number };

interface Place {
  file: string;
  line: number;
}

/**
 * Checks files oldest first, the live file last, against the head. The
 * answer names the first bad record, with its file and line, and why.
 * Records after the head (written in the ≤1 s before the head caught up)
 * pass when their macs chain; they are counted as `unanchored`.
 */
export function verifyChain(key: AuditKey, files: readonly AuditFileText[], head: AuditHead | undefined, headName = 'audit.head'): VerifyResult {
  const records = files.reduce((n, f) => n + (f.text === '' ? 0 : 1), 0);
  if (head === undefined) {
    return records === 0 ? { ok: true, records: 0, files: files.length, unanchored: 0 } : { ok: false, message: `${headName} is missing or damaged: where the log ends cannot be checked` };
  }
  if (headMacOf(key, head) !== head.headMac) return { ok: false, message: `${headName} was changed (its mac does not match; or the audit key is not the one that wrote it)` };
  let prev = head.firstPrev;
  let expected = head.first;
  let count = 0;
  let last: Place | undefined;
  let headMacSeen: string | undefined;
  for (const file of files) {
    const lines = file.text.split('\n');
    const tail = lines.pop();
    for (const [index, line] of lines.entries()) {
      const here = { file: file.name, line: index + 1 };
      // Before the start: a rotation that moved the head's start and was stopped before it dropped the oldest file.
      if (count === 0 && (openLine(line)?.record.seq ?? expected) < expected) continue;
      const bad = checkLine(key, line, prev, expected, here, last);
      if (bad !== undefined) return bad;
      const opened = openLine(line)!;
      prev = opened.mac;
      if (opened.record.seq === head.seq) headMacSeen = opened.mac;
      expected++;
      count++;
      last = here;
    }
    if (tail !== '' && tail !== undefined) {
      return { ok: false, file: file.name, line: lines.length + 1, seq: expected, message: `${file.name}:${lines.length + 1}: the file was cut: record ${expected} is incomplete (no end of line)` };
    }
  }
  const lastSeq = expected - 1;
  if (lastSeq < head.seq) {
    const span = lastSeq + 1 === head.seq ? `record ${head.seq} is` : `records ${lastSeq + 1}..${head.seq} are`;
    return { ok: false, seq: lastSeq + 1, message: `${span} missing at the end (the head says the log ends at ${head.seq})${last === undefined ? '' : `; the last record found is ${lastSeq}, at ${last.file}:${last.line}`}` };
  }
  if (head.seq > 0 && headMacSeen !== head.mac) return { ok: false, seq: head.seq, message: `record ${head.seq} does not match the head` };
  const result: VerifyResult = { ok: true, records: count, files: files.length, unanchored: lastSeq - head.seq };
  if (count > 0) {
    result.first = head.first;
    result.last = lastSeq;
  }
  return result;
}

/** Why a line breaks the chain, naming it; undefined when it holds. */
function checkLine(key: AuditKey, line: string, prev: string, expected: number, here: Place, last: Place | undefined): VerifyResult | undefined {
  const at = `${here.file}:${here.line}`;
  const opened = openLine(line);
  if (opened === undefined) return { ok: false, ...here, seq: expected, message: `${at}: record ${expected} was changed (the line is no longer a sealed record)` };
  const { seq } = opened.record;
  if (seq > expected) {
    const span = seq - 1 === expected ? `record ${expected} is` : `records ${expected}..${seq - 1} are`;
    const after = last === undefined ? 'at the start (the head says the log starts there)' : `(found ${seq} after ${expected - 1}, at ${last.file}:${last.line})`;
    return { ok: false, ...here, seq: expected, message: `${at}: ${span} missing ${after}` };
  }
  if (seq < expected) return { ok: false, ...here, seq, message: `${at}: record ${seq} appears again after ${expected - 1} (a line was copied, or seq was changed)` };
  if (macOf(key, prev, opened.body) !== opened.mac) return { ok: false, ...here, seq, message: `${at}: record ${seq} was changed (its mac does not match)` };
  return undefined;
}
