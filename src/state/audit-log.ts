/**
 * The audit log's writer: sealed JSON lines (audit-chain.ts) appended to
 * `audit/audit.jsonl` in the state directory, rotated by size with the chain
 * running on across files, and a keyed head anchor (one sector, written in
 * place and synced: #writeHead says why).
 *
 * `append` only queues the record and never waits on the disk: records are
 * sealed (JSON and the chained MAC, a few µs each, off the answering call's
 * path) and written in one write(2) per `flushMs` (10 ms) or 256 records,
 * fdatasync'd and anchored in the head at most every `syncMs` (1 s, a
 * database's "fsync every second"). An fsync per record (≈1.6 ms here) would
 * cost more than the call it records, and even one every 100 ms (three with
 * the head's atomic write then) cost ~10% of the calls/s of a loaded 2-core
 * machine in `npm run bench -- access`. What that
 * leaves: a crash loses at most the unwritten 10 ms, a power loss at most
 * 1 s, and records written after the last head update can be cut from the
 * end without verify seeing it. Owned by a runnable (later): `close` writes,
 * syncs and anchors everything appended.
 */
import { randomBytes } from 'node:crypto';
import { writeSync } from 'node:fs';
import { open, readFile, rename, rm, stat, truncate, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditRecord, AuditSink } from '../api/audit.js';
import { ApiaryError, messageOf } from '../errors.js';
import { writeFileAtomic, FILE_MODE, ensurePrivateDir } from '../util/atomic.js';
import { systemClock, type Clock, type Timer } from '../util/clock.js';
import { ChainKey, GENESIS, openLine, sealHead, type SealedBatch } from './audit-chain.js';
import { auditFileNames, readAuditHead, readAuditKey } from './audit-read.js';
import { AUDIT_FILE, type StateLayout } from './layout.js';

export interface AuditLogOptions {
  /** The live file is rotated before it would grow past this (default 16 MiB). */
  maxFileBytes?: number;
  /** Rotated files kept: `audit.jsonl.1` to `.N` (default 10); the oldest is dropped and the head says where the log now starts. */
  keepFiles?: number;
  flushMs?: number;
  syncMs?: number;
  /** Sealed and written at once past this many buffered records, whatever the timer. */
  batchRecords?: number;
  clock?: Clock;
  /** A write that failed (disk full): the runnable logs it; appends go on and the failure is thrown again by flush and close. */
  onError?: (err: Error) => void;
}

interface Position {
  seq: number;
  mac: string;
}

/** Sealed lines in order, the first at `first`. */
interface Batch extends SealedBatch {
  first: number;
}

/** Where line `i` of the batch starts in its data. */
function startOf(batch: Batch, i: number): number {
  return i === 0 ? 0 : batch.ends[i - 1]!;
}

/** The head's file: its JSON line padded with spaces to one sector (the JSON is under 300 bytes). */
const HEAD_BYTES = 512;

function headSector(head: object): Buffer {
  const line = JSON.stringify(head);
  return Buffer.from(`${line.padEnd(HEAD_BYTES - 1, ' ')}\n`, 'utf8');
}

const DEFAULTS = { maxFileBytes: 16 * 1024 * 1024, keepFiles: 10, flushMs: 10, syncMs: 1000, batchRecords: 256 };

export class AuditLog implements AuditSink {
  readonly #layout: StateLayout;
  readonly #key: ChainKey;
  readonly #opts: typeof DEFAULTS;
  readonly #clock: Clock;
  readonly #onError: ((err: Error) => void) | undefined;
  /** The chain as appended (ahead of the disk). */
  #end: Position;
  /** Where the log starts (moves when the oldest file is dropped). */
  #first: Position;
  /** What the disk holds, and what the head says. */
  #written: Position;
  #anchored: Position;
  #handle: FileHandle;
  /** audit.head, open for its writes in place (see #writeHead). */
  #headHandle: FileHandle | undefined;
  #size: number;
  /** Appended and not yet sealed: sealing (JSON and the MAC) runs with the write, off the answering call's path. */
  #unsealed: AuditRecord[] = [];
  #flushTimer: Timer | undefined;
  #syncTimer: Timer | undefined;
  #lastSync: number;
  #queue: Promise<void> = Promise.resolve();
  #error: Error | undefined;
  #closed = false;

  private constructor(layout: StateLayout, key: Buffer, options: AuditLogOptions, state: { end: Position; first: Position; handle: FileHandle; size: number }) {
    this.#layout = layout;
    this.#key = new ChainKey(key);
    this.#opts = { ...DEFAULTS, ...definedOnly(options) };
    this.#clock = options.clock ?? systemClock;
    this.#onError = options.onError;
    this.#end = state.end;
    this.#first = state.first;
    this.#written = state.end;
    this.#anchored = state.end;
    this.#handle = state.handle;
    this.#size = state.size;
    this.#lastSync = this.#clock.now();
  }

  /** Opens (or starts) the log of a state directory, going on from where its chain ends. */
  static async open(layout: StateLayout, options: AuditLogOptions = {}): Promise<AuditLog> {
    await ensurePrivateDir(layout.root);
    await ensurePrivateDir(layout.auditDir);
    const head = await readAuditHead(layout);
    const records = await holdsRecords(layout);
    const key = await loadKey(layout, head !== undefined || records);
    if (head === undefined && records) {
      throw new ApiaryError('StateInvalid', `the audit log in ${layout.auditDir} has records but its head (${layout.auditHeadFile}) is missing or damaged: apiary will not write after records it cannot anchor`, {
        hints: ['Run apiary audit verify to see what is wrong; to start a new log, move the audit folder away.'],
      });
    }
    const tail = await lastWholeLine(layout.auditFile);
    const fromHead: Position = { seq: head?.seq ?? 0, mac: head?.mac ?? GENESIS };
    // Records written after the head's last update (a crash inside the sync window) are kept and continued from; a head
    // ahead of the file (records cut from it) is continued from, so verify still sees the gap.
    const end = tail !== undefined && tail.seq > fromHead.seq ? { seq: tail.seq, mac: tail.mac } : fromHead;
    const handle = await open(layout.auditFile, 'a', FILE_MODE);
    const log = new AuditLog(layout, key, options, { end, first: { seq: head?.first ?? 1, mac: head?.firstPrev ?? GENESIS }, handle, size: tail?.size ?? 0 });
    if (head === undefined || end !== fromHead) await log.#writeHead(end);
    return log;
  }

  /** The last sequence number appended. */
  get lastSeq(): number {
    return this.#end.seq + this.#unsealed.length;
  }

  /**
   * Takes the record into the chain: its place is fixed now (the order of
   * appends), its seal and write within `flushMs`. Never waits and never
   * throws for the disk.
   */
  append(record: AuditRecord): void {
    if (this.#closed) throw new ApiaryError('Io', 'the audit log is closed');
    this.#unsealed.push(record);
    if (this.#unsealed.length >= this.#opts.batchRecords) this.#drain();
    else this.#flushTimer ??= this.#clock.setTimeout(() => this.#drain(), this.#opts.flushMs);
  }

  /** Everything appended so far written, synced and anchored; throws a write that failed. */
  async flush(): Promise<void> {
    this.#drain();
    this.#enqueue(() => this.#sync());
    await this.#queue;
    if (this.#error !== undefined) throw new ApiaryError('Io', `the audit log could not be written: ${this.#error.message}`, { cause: this.#error });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.flush();
    } finally {
      this.#syncTimer?.cancel();
      await this.#handle.close();
      await this.#headHandle?.close();
      this.#headHandle = undefined;
    }
  }

  /** Seals the buffered records in order and hands their lines to the writing queue (one write, unless a rotation falls inside). */
  #drain(): void {
    this.#flushTimer?.cancel();
    this.#flushTimer = undefined;
    if (this.#unsealed.length === 0) return;
    const first = this.#end.seq + 1;
    const batch = this.#key.sealBatch(this.#end.mac, first, this.#unsealed);
    this.#end = { seq: first + this.#unsealed.length - 1, mac: batch.macs.at(-1)! };
    this.#unsealed = [];
    this.#enqueue(() => this.#write({ first, ...batch }));
  }

  #enqueue(step: () => Promise<void>): void {
    this.#queue = this.#queue.then(step).catch((err: unknown) => {
      const error = err instanceof Error ? err : new Error(messageOf(err));
      this.#error ??= error;
      this.#onError?.(error);
    });
  }

  async #write(batch: Batch): Promise<void> {
    // The usual case: the batch fits in the live file, one write(2).
    if (this.#size + batch.data.length <= this.#opts.maxFileBytes) this.#writeLines(batch, 0, batch.ends.length);
    else await this.#writeRotating(batch);
    if (this.#clock.now() - this.#lastSync >= this.#opts.syncMs) await this.#sync();
    else this.#syncTimer ??= this.#clock.setTimeout(() => this.#enqueue(() => this.#sync()), this.#opts.syncMs);
  }

  /** A batch that crosses `maxFileBytes`: the lines that fit, the rotation, the rest (a line is never split between files). */
  async #writeRotating(batch: Batch): Promise<void> {
    let from = 0;
    for (let i = 0; i < batch.ends.length; i++) {
      const bytes = startOf(batch, i) - startOf(batch, from);
      if (this.#size + bytes + (batch.ends[i]! - startOf(batch, i)) > this.#opts.maxFileBytes && this.#size + bytes > 0) {
        this.#writeLines(batch, from, i);
        await this.#rotate();
        from = i;
      }
    }
    this.#writeLines(batch, from, batch.ends.length);
  }

  /**
   * One write(2) of the lines `from` to `to` (excluded) of the batch, made synchronously: a write into the page cache
   * takes a few µs, where an asynchronous one (a hand-off to libuv's thread pool and back, a promise) cost ~150 µs of
   * CPU, 4-6% of the calls/s at 2,000 calls/s. The disk is waited for only by the fdatasync, which stays asynchronous.
   */
  #writeLines(batch: Batch, from: number, to: number): void {
    if (to <= from) return;
    const start = startOf(batch, from);
    const end = batch.ends[to - 1]!;
    for (let offset = start; offset < end; ) offset += writeSync(this.#handle.fd, batch.data, offset, end - offset);
    this.#size += end - start;
    this.#written = { seq: batch.first + to - 1, mac: batch.macs[to - 1]! };
  }

  /** The written lines on the disk, then the head says so. */
  async #sync(): Promise<void> {
    this.#syncTimer?.cancel();
    this.#syncTimer = undefined;
    this.#lastSync = this.#clock.now();
    if (this.#written.seq === this.#anchored.seq) return;
    await this.#handle.datasync();
    await this.#writeHead(this.#written);
  }

  /**
   * The head is one sector of fixed size, written over in place and
   * fdatasync'd: as its size never changes, the sync writes that block and no
   * metadata (no journal commit). Replacing it atomically each second (a new
   * file, its fsync, the rename, the folder's fsync: two journal commits) cost
   * about as much of the calls/s as the log's own sync. A file of another
   * size (none yet, or a head of before, a line of its length) is first
   * replaced atomically with one of the fixed size.
   */
  async #writeHead(end: Position): Promise<void> {
    const head = sealHead(this.#key, { seq: end.seq, mac: end.mac, first: this.#first.seq, firstPrev: this.#first.mac });
    const sector = headSector(head);
    const handle = await this.#openHead();
    if (handle === undefined) {
      await writeFileAtomic(this.#layout.auditHeadFile, sector);
    } else {
      await handle.write(sector, 0, sector.length, 0);
      await handle.datasync();
    }
    this.#anchored = end;
  }

  /** The head's file held open for writing in place, once it has the fixed size; undefined until it has. */
  async #openHead(): Promise<FileHandle | undefined> {
    if (this.#headHandle !== undefined) return this.#headHandle;
    const size = (await stat(this.#layout.auditHeadFile).catch(() => undefined))?.size;
    if (size !== HEAD_BYTES) return undefined;
    this.#headHandle = await open(this.#layout.auditHeadFile, 'r+');
    return this.#headHandle;
  }

  /**
   * `audit.jsonl` becomes `.1`, `.1` becomes `.2`, ...; past `keepFiles` the
   * oldest is dropped. The head moves its start first: a crash between the
   * two leaves records older than the start, which verify skips, never a gap.
   */
  async #rotate(): Promise<void> {
    await this.#handle.datasync();
    await this.#handle.close();
    const base = this.#layout.auditFile;
    const oldest = `${base}.${this.#opts.keepFiles}`;
    const dropped = await lastWholeLine(oldest);
    if (dropped !== undefined) this.#first = { seq: dropped.seq + 1, mac: dropped.mac };
    await this.#writeHead(this.#written);
    await rm(oldest, { force: true });
    for (let i = this.#opts.keepFiles - 1; i >= 1; i--) await rename(`${base}.${i}`, `${base}.${i + 1}`).catch(ignoreMissing);
    await rename(base, `${base}.1`);
    this.#handle = await open(base, 'a', FILE_MODE);
    this.#size = 0;
  }
}

/** Whether any file of the log (live or rotated) has something in it. */
async function holdsRecords(layout: StateLayout): Promise<boolean> {
  for (const name of await auditFileNames(layout)) if (((await stat(join(layout.auditDir, name)).catch(() => undefined))?.size ?? 0) > 0) return true;
  return false;
}

function ignoreMissing(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}

function definedOnly(options: AuditLogOptions): Partial<typeof DEFAULTS> {
  return Object.fromEntries(Object.entries(options).filter(([k, v]) => v !== undefined && k in DEFAULTS)) as Partial<typeof DEFAULTS>;
}

/** The key of this state directory's chain, made on first use; a log without its key is refused, never resealed under a new one. */
async function loadKey(layout: StateLayout, logExists: boolean): Promise<Buffer> {
  const key = await readAuditKey(layout);
  if (key !== undefined) return key;
  if (logExists) {
    throw new ApiaryError('KeyUnavailable', `the audit log in ${layout.auditDir} exists but its key (${layout.auditKeyFile}) is gone: apiary will not continue a chain it cannot seal`, {
      hints: ['Put the key back, or move the audit folder away to start a new log.'],
    });
  }
  const made = randomBytes(32);
  await writeFileAtomic(layout.auditKeyFile, `${made.toString('base64')}\n`);
  return made;
}

/**
 * The last whole record of a file, with the file's size up to it. An
 * incomplete last line (a write cut by a crash) is cut off here, so new lines
 * never follow half a line; it was never anchored, so nothing verify relied on
 * is lost.
 */
async function lastWholeLine(path: string): Promise<(Position & { size: number }) | undefined> {
  const text = await readFile(path).catch(() => undefined);
  if (text === undefined) return undefined;
  const end = text.lastIndexOf(10) + 1;
  if (end < text.length && path.endsWith(AUDIT_FILE)) await truncate(path, end);
  const lines = text.subarray(0, end).toString('utf8').split('\n');
  lines.pop();
  const opened = lines.length === 0 ? undefined : openLine(lines.at(-1)!);
  return opened === undefined ? (end === 0 ? undefined : { seq: 0, mac: GENESIS, size: end }) : { seq: opened.record.seq, mac: opened.mac, size: end };
}
