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
import { hash, KeyObject } from 'node:crypto';
import { auditRecordJson, type AuditRecord, type StoredAuditRecord } from '../api/audit.js';

/** Sealed lines, one after another as the file holds them, each line's end and mac: one write(2) for a batch. */
export interface SealedBatch {
  data: Buffer;
  /** Where each line ends in `data` (after its newline). */
  ends: number[];
  macs: string[];
}


/**
 * The chain's key made ready to seal many lines: HMAC-SHA256 (RFC 2104) written out as its two SHA-256 passes, each a
 * one-shot `crypto.hash` over a buffer that already holds the padded key. The same macs as `createHmac('sha256', key)`
 * (a test holds them equal), in less CPU: a Hmac object per line, its updates and its digest cost more than hashing
 * the line (SHA-256 runs at ~0.5 ns a byte here). The record's text is encoded once, into that buffer, and its bytes
 * copied from there into the batch's: no line string, no join, no second encoding. The writer makes one and keeps it.
 */
export class ChainKey {
  /** The key XOR ipad, the previous mac, a newline, then the record's text (from `#body`). */
  #inner: Buffer;
  #body = 0;
  /** The key XOR opad, then the inner digest. */
  readonly #outer = Buffer.alloc(64 + 32);

  constructor(key: Uint8Array | KeyObject) {
    const raw = key instanceof KeyObject ? key.export() : key;
    // A key longer than the block is its digest (RFC 2104); shorter, it is padded with zeros.
    const block = Buffer.alloc(64);
    block.set(raw.length > 64 ? hash('sha256', raw, 'buffer') : raw);
    this.#inner = Buffer.alloc(4096);
    for (let i = 0; i < 64; i++) {
      this.#inner[i] = block[i]! ^ 0x36;
      this.#outer[i] = block[i]! ^ 0x5c;
    }
  }

  /** The hex HMAC of `prev`, a newline and `body`. */
  mac(prev: string, body: string): string {
    return this.#digest(this.#place(prev, body));
  }

  /** The lines of records at `first`, `first + 1`... chained after `prev`. */
  sealBatch(prev: string, first: number, records: readonly AuditRecord[]): SealedBatch {
    let data: Buffer = Buffer.allocUnsafe(records.length * 768);
    let at = 0;
    const ends: number[] = [];
    const macs: string[] = [];
    for (const record of records) {
      // `seq` first, without copying the record into a new object.
      const body = auditRecordJson(record, `"seq":${first + ends.length},`);
      prev = this.#digest(this.#place(prev, body));
      // The line: the text, its closing brace overwritten by `,"mac":"…"}` and the newline. Encoding the (now flat)
      // text again costs less than Buffer#copy, which makes a view per call.
      if (at + 3 * body.length + 75 > data.length) data = grown(data, at, at + 3 * body.length + 75);
      at += data.write(body, at, 'utf8') - 1;
      at += data.write(`,"mac":"${prev}"}\n`, at, 'latin1');
      ends.push(at);
      macs.push(prev);
    }
    // Every byte up to `at` was written: nothing of the unset allocation is handed on.
    return { data: data.subarray(0, at), ends, macs };
  }

  /** Puts the previous mac, a newline and the text after the padded key (the text from `#body`); where they end. */
  #place(prev: string, body: string): number {
    // At most 3 UTF-8 bytes per UTF-16 unit: the buffer is grown before a write could be cut short.
    const room = 64 + 3 * (prev.length + 1 + body.length);
    if (room > this.#inner.length) this.#inner = grown(this.#inner, 64, room);
    this.#body = 64 + this.#inner.write(prev, 64, 'utf8') + 1;
    this.#inner[this.#body - 1] = 0x0a;
    return this.#body + this.#inner.write(body, this.#body, 'utf8');
  }

  /** The hex mac of what `#place` put, up to `end`. */
  #digest(end: number): string {
    // Out as a latin1 string and back in: a one-shot digest as a Buffer costs twice as much (an allocation on the native side).
    this.#outer.write(hash('sha256', this.#inner.subarray(0, end), 'binary'), 64, 'latin1');
    return hash('sha256', this.#outer, 'hex');
  }
}

/** A bigger buffer holding the first `keep` bytes of `buffer`. */
function grown(buffer: Buffer, keep: number, bytes: number): Buffer {
  const bigger = Buffer.allocUnsafe(Math.max(bytes, 2 * buffer.length));
  buffer.copy(bigger, 0, 0, keep);
  return bigger;
}

/** The chain's key: its bytes, a KeyObject made from them, or a ChainKey (the writer's and verify's, made once). */
export type AuditKey = Uint8Array | KeyObject | ChainKey;

function chainKey(key: AuditKey): ChainKey {
  return key instanceof ChainKey ? key : new ChainKey(key);
}

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
  return chainKey(key).mac(prev, body);
}

/** The line for a record at `seq` after `prev` (with its newline), and its mac for the next. */
export function sealLine(key: AuditKey, prev: string, seq: number, record: AuditRecord): { line: string; mac: string } {
  const sealed = chainKey(key).sealBatch(prev, seq, [record]);
  return { line: sealed.data.toString('utf8'), mac: sealed.macs[0]! };
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
export function verifyChain(anyKey: AuditKey, files: readonly AuditFileText[], head: AuditHead | undefined, headName = 'audit.head'): VerifyResult {
  const records = files.reduce((n, f) => n + (f.text === '' ? 0 : 1), 0);
  if (head === undefined) {
    return records === 0 ? { ok: true, records: 0, files: files.length, unanchored: 0 } : { ok: false, message: `${headName} is missing or damaged: where the log ends cannot be checked` };
  }
  const key = chainKey(anyKey);
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
