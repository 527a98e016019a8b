/**
 * Reading the audit log: its files oldest first, its key, the records,
 * following new ones across rotation, and verifying the chain. The writer is
 * audit-log.ts; the chain's rules are audit-chain.ts.
 */
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoredAuditRecord } from '../api/audit.js';
import { ApiaryError } from '../errors.js';
import { openLine, parseHead, verifyChain, type AuditFileText, type AuditHead, type VerifyResult } from './audit-chain.js';
import { AUDIT_FILE, type StateLayout } from './layout.js';

const ROTATED = /^audit\.jsonl(?:\.([1-9]\d{0,5}))?$/;

/** The log's file names, oldest first: `audit.jsonl.N` ... `audit.jsonl.1`, then `audit.jsonl`. */
export async function auditFileNames(layout: StateLayout): Promise<string[]> {
  const names = await readdir(layout.auditDir).catch(() => [] as string[]);
  return names
    .map((name) => ({ name, match: ROTATED.exec(name) }))
    .filter((e) => e.match !== null)
    .sort((a, b) => rank(b.match!) - rank(a.match!))
    .map((e) => e.name);
}

/** The live file ranks 0, `.1` 1 and so on: the highest is the oldest. */
function rank(match: RegExpExecArray): number {
  return match[1] === undefined ? 0 : Number(match[1]);
}

export async function readAuditTexts(layout: StateLayout): Promise<AuditFileText[]> {
  return (await readSnapshot(layout, false)).texts;
}

/** Which file each name is (its inode), in order: a rotation renames files, so the same names may be other files. */
async function fileIdentities(layout: StateLayout): Promise<{ names: string[]; key: string }> {
  const names = await auditFileNames(layout);
  const inodes = await Promise.all(names.map(async (name) => (await stat(join(layout.auditDir, name)).catch(() => undefined))?.ino ?? 0));
  return { names, key: names.map((name, i) => `${name}:${inodes[i]}`).join(' ') };
}

/** How many times a read that a rotation moved under is made again before it is taken as it is. */
const SNAPSHOT_TRIES = 20;

/**
 * The files (and the head) as of one moment, though the controller may be
 * writing and rotating: a rotation writes the head (its new start) first,
 * then drops the oldest file and renames the rest, and a reader that read one
 * file before a rename and the next after it would miss a file's records.
 * Read until no file was renamed, and the head's start did not move, while
 * the files were read (appends to the live file only add to what was read).
 */
async function readSnapshot(layout: StateLayout, withHead: boolean): Promise<{ head: AuditHead | undefined; texts: AuditFileText[] }> {
  let snapshot: { head: AuditHead | undefined; texts: AuditFileText[] } = { head: undefined, texts: [] };
  for (let attempt = 0; attempt < SNAPSHOT_TRIES; attempt++) {
    const head = withHead ? await readAuditHead(layout) : undefined;
    const before = await fileIdentities(layout);
    const texts: AuditFileText[] = [];
    for (const name of before.names) {
      const text = await readFile(join(layout.auditDir, name), 'utf8').catch(() => undefined);
      if (text !== undefined) texts.push({ name, text });
    }
    snapshot = { head, texts };
    if ((await fileIdentities(layout)).key !== before.key) continue;
    if (withHead && (await readAuditHead(layout))?.first !== head?.first) continue;
    break;
  }
  return snapshot;
}

export async function readAuditHead(layout: StateLayout): Promise<AuditHead | undefined> {
  const text = await readFile(layout.auditHeadFile, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : parseHead(text);
}

/** The key of the chain, if this state directory has one. */
export async function readAuditKey(layout: StateLayout): Promise<Buffer | undefined> {
  const text = await readFile(layout.auditKeyFile, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== 32) throw new ApiaryError('StateInvalid', `${layout.auditKeyFile} is not an audit key (32 bytes, base64)`);
  return key;
}

/**
 * `apiary audit verify`: the whole chain against the head, with the key of
 * this state directory. The controller may be writing and rotating while the
 * files are read (a file renamed between the listing and its read looks
 * removed), so a failure counts only when the next read fails the same way.
 */
export async function verifyAudit(layout: StateLayout): Promise<VerifyResult> {
  const key = await readAuditKey(layout);
  let result = await verifyOnce(layout, key);
  for (let attempt = 0; attempt < 5 && !result.ok; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const again = await verifyOnce(layout, key);
    if (again.ok === false && again.message === result.message) return again;
    result = again;
  }
  return result;
}

async function verifyOnce(layout: StateLayout, key: Buffer | undefined): Promise<VerifyResult> {
  const { head, texts } = await readSnapshot(layout, true);
  if (key === undefined) {
    if (texts.length === 0) return { ok: true, records: 0, files: 0, unanchored: 0 };
    throw new ApiaryError('KeyUnavailable', `the audit log in ${layout.auditDir} has no key beside it (${layout.auditKeyFile}): its macs cannot be checked`, {
      hints: ['Verify it in the state directory that wrote it (--state-dir).'],
    });
  }
  return verifyChain(key, texts, head);
}

/** Every record that reads as one, oldest first (reading is not verifying: a damaged line is skipped). */
export function recordsOf(texts: readonly AuditFileText[]): StoredAuditRecord[] {
  const records: StoredAuditRecord[] = [];
  for (const { text } of texts) {
    for (const line of text.split('\n')) {
      const opened = line === '' ? undefined : openLine(line);
      if (opened !== undefined) records.push(opened.record);
    }
  }
  return records;
}

export async function readAuditRecords(layout: StateLayout): Promise<StoredAuditRecord[]> {
  return recordsOf(await readAuditTexts(layout));
}

/**
 * New records after `afterSeq`, as they are written (`audit -f`). The live
 * file is read from where the last look ended; when it was rotated away (its
 * inode changed, or it shrank), every file is read again and only records
 * past the last one seen are given: none is lost between two looks, however
 * many rotations happened, as long as the files are still kept.
 */
export async function* followAudit(layout: StateLayout, afterSeq: number, options: { pollMs: number; stopped: () => boolean }): AsyncGenerator<StoredAuditRecord> {
  let last = afterSeq;
  const live = join(layout.auditDir, AUDIT_FILE);
  let inode = (await stat(live).catch(() => undefined))?.ino;
  let offset = 0;
  let partial = '';
  let rescan = true;
  while (!options.stopped()) {
    const info = await stat(live).catch(() => undefined);
    if (info !== undefined && (info.ino !== inode || info.size < offset)) rescan = true;
    if (rescan && info !== undefined) {
      rescan = false;
      inode = info.ino;
      partial = '';
      const texts = await readAuditTexts(layout);
      // The live file up to its last whole line; what follows is read from `offset` at the next look.
      const liveText = texts.at(-1)?.name === AUDIT_FILE ? texts.pop()! : undefined;
      const seen = Buffer.from(liveText?.text ?? '').subarray(0, info.size);
      offset = seen.lastIndexOf(10) + 1;
      for (const record of recordsOf([...texts, { name: AUDIT_FILE, text: seen.subarray(0, offset).toString('utf8') }])) {
        if (record.seq > last) {
          last = record.seq;
          yield record;
        }
      }
    } else if (info !== undefined && info.size > offset) {
      const chunk = await readFrom(live, offset, info.size);
      offset += chunk.length;
      const text = partial + chunk.toString('utf8');
      const end = text.lastIndexOf('\n');
      partial = text.slice(end + 1);
      for (const record of recordsOf([{ name: AUDIT_FILE, text: text.slice(0, end + 1) }])) {
        if (record.seq > last) {
          last = record.seq;
          yield record;
        }
      }
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs));
  }
}

async function readFrom(path: string, from: number, to: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(to - from);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, from);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}
