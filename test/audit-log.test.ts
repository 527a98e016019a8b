import { readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { recordOf, type AuditRecord } from '../src/api/audit.js';
import { auditCall as call, auditLogWith as logWith } from './helpers/audit.js';
import { AuditLog } from '../src/state/audit-log.js';
import { readAuditRecords, verifyAudit } from '../src/state/audit-read.js';
import { StateLayout } from '../src/state/layout.js';
import { filesUnder, tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

async function editLines(path: string, edit: (lines: string[]) => void): Promise<void> {
  const lines = (await readFile(path, 'utf8')).split('\n');
  edit(lines);
  await writeFile(path, lines.join('\n'));
}

describe('the audit log', () => {
  it('1,000 records verify; files and folder are owner-only; the chain goes on after a reopen', async () => {
    const layout = await logWith(1000);
    expect(await verifyAudit(layout)).toEqual({ ok: true, records: 1000, files: 1, first: 1, last: 1000, unanchored: 0 });
    for (const path of await filesUnder(layout.root)) expect((await stat(path)).mode & 0o777, path).toBe(0o600);
    expect((await stat(layout.auditDir)).mode & 0o777).toBe(0o700);
    const again = await AuditLog.open(layout);
    again.append(call(1001));
    await again.close();
    expect(await verifyAudit(layout)).toMatchObject({ ok: true, records: 1001, last: 1001 });
    const records = await readAuditRecords(layout);
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 1001 }, (_, i) => i + 1));
    expect(records[0]).toMatchObject({ seq: 1, subject: { kind: 'user', user: 'bob' }, server: 'mini', method: 'tools/call', name: 'echo', requestId: 1, args: [{ name: 'text', type: 'string', bytes: 9 }] });
  });

  it('an edited line, a removed line, a cut file, records cut from the end and an edited last record each fail, naming the record', async () => {
    const cases: [string, (layout: StateLayout) => Promise<void>, RegExp][] = [
      ['edited', (l) => editLines(l.auditFile, (lines) => (lines[547] = lines[547]!.replace('"alice"', '"mallory"'))), /^audit\.jsonl:548: record 548 was changed \(its mac does not match\)$/],
      ['removed', (l) => editLines(l.auditFile, (lines) => lines.splice(557, 1)), /^audit\.jsonl:558: record 558 is missing \(found 559 after 557, at audit\.jsonl:557\)$/],
      ['cut mid-line', async (l) => truncate(l.auditFile, (await stat(l.auditFile)).size - 30), /^audit\.jsonl:1000: the file was cut: record 1000 is incomplete/],
      ['last 3 removed', (l) => editLines(l.auditFile, (lines) => lines.splice(-4, 3)), /^records 998\.\.1000 are missing at the end \(the head says the log ends at 1000\); the last record found is 997, at audit\.jsonl:997$/],
      ['last edited', (l) => editLines(l.auditFile, (lines) => (lines[999] = lines[999]!.replace('echo', 'ECHO'))), /^audit\.jsonl:1000: record 1000 was changed/],
      ['not JSON', (l) => editLines(l.auditFile, (lines) => (lines[9] = 'hello')), /^audit\.jsonl:10: record 10 was changed \(the line is no longer a sealed record\)$/],
      ['head edited', (l) => editLines(l.auditHeadFile, (lines) => (lines[0] = lines[0]!.replace('"seq":1000', '"seq":999'))), /^audit\.head was changed/],
    ];
    for (const [what, tamper, message] of cases) {
      const layout = await logWith(1000);
      await tamper(layout);
      const result = await verifyAudit(layout);
      expect(result.ok, what).toBe(false);
      expect(result.ok === false ? result.message : '', what).toMatch(message);
    }
  });

  it('a line re-sealed without the key (mac recomputed with another key) still fails', async () => {
    const layout = await logWith(10);
    const { sealLine } = await import('../src/state/audit-chain.js');
    await editLines(layout.auditFile, (lines) => {
      const forged = sealLine(Buffer.alloc(32, 7), JSON.parse(lines[3]!).mac as string, 5, { ...call(5), subject: { kind: 'user', user: 'mallory' } });
      lines[4] = forged.line.trimEnd();
    });
    expect(await verifyAudit(layout)).toMatchObject({ ok: false, file: 'audit.jsonl', line: 5, seq: 5 });
  });

  it('rotation keeps the chain across files; a removed rotated file and a dropped oldest file are told apart', async () => {
    const layout = await logWith(1000, { maxFileBytes: 64 * 1024 });
    const names = (await readdir(layout.auditDir)).sort();
    expect(names.filter((n) => n.startsWith('audit.jsonl')).length).toBeGreaterThan(3);
    expect(await verifyAudit(layout)).toMatchObject({ ok: true, records: 1000, first: 1, last: 1000 });
    await rm(`${layout.auditFile}.2`);
    const result = await verifyAudit(layout);
    expect(result).toMatchObject({ ok: false, file: 'audit.jsonl.1', line: 1 });
    expect(result.ok === false && result.message).toMatch(/^audit\.jsonl\.1:1: records \d+\.\.\d+ are missing \(found \d+ after \d+, at audit\.jsonl\.3:\d+\)$/);

    // Rotation that drops the oldest file on purpose moves the head's start: verify still passes.
    const kept = await logWith(1000, { maxFileBytes: 32 * 1024, keepFiles: 2 });
    const ok = await verifyAudit(kept);
    expect(ok).toMatchObject({ ok: true, files: 3, last: 1000 });
    expect(ok.ok && ok.first! > 1).toBe(true);
    // ...and removing the (now) oldest file is seen.
    await rm(`${kept.auditFile}.2`);
    expect(await verifyAudit(kept)).toMatchObject({ ok: false, file: 'audit.jsonl.1', line: 1 });
  });

  it('no argument value, nested value or token claim reaches any file of the state directory', async () => {
    const canary = 'audit-canary-8675309';
    const layout = new StateLayout(join(await tempDir(), 'state'));
    const log = await AuditLog.open(layout);
    const subject = { kind: 'user', user: 'alice', groups: ['dev'], token: `eyJ.${canary}`, claims: { secret: canary } } as unknown as AuditRecord['subject'];
    const facts = { time: new Date().toISOString(), subject, server: 'mini', decision: 'allow', durationMs: 1, outcome: 'ok' } as const;
    log.append(recordOf({ method: 'tools/call', id: 1, params: { name: 'echo', arguments: { text: canary, nested: { deep: [canary, { x: canary }] }, n: 42 }, _meta: { note: canary } } }, facts));
    log.append(recordOf({ method: 'prompts/get', id: 2, params: { name: 'greet', arguments: { who: canary } } }, facts));
    log.append(recordOf({ method: 'resources/read', id: 3, params: { uri: `file:///notes.txt?token=${canary}#${canary}` } }, facts));
    await log.close();
    const files = await filesUnder(layout.root);
    expect(files.length).toBeGreaterThan(2);
    for (const path of files) expect((await readFile(path, 'latin1')).includes(canary), path).toBe(false);
    const [first, , third] = await readAuditRecords(layout);
    expect(first!.args).toEqual([
      { name: 'text', type: 'string', bytes: canary.length + 2 },
      { name: 'nested', type: 'object', bytes: JSON.stringify({ deep: [canary, { x: canary }] }).length },
      { name: 'n', type: 'number', bytes: 2 },
    ]);
    expect(first!.subject).toEqual({ kind: 'user', user: 'alice', groups: ['dev'] });
    expect(third!.name).toBe('file:///notes.txt');
  });

  it('writes in batches: records appended together reach the disk in one write, and flush makes them durable and anchored', async () => {
    const layout = new StateLayout(join(await tempDir(), 'state'));
    const log = await AuditLog.open(layout, { flushMs: 60_000, syncMs: 60_000 });
    for (let i = 1; i <= 5; i++) log.append(call(i));
    expect(await readFile(layout.auditFile, 'utf8')).toBe('');
    await log.flush();
    expect((await readFile(layout.auditFile, 'utf8')).split('\n').length).toBe(6);
    expect(await verifyAudit(layout)).toMatchObject({ ok: true, records: 5, unanchored: 0 });
    await log.close();
  });

  it('anchors in a head of one fixed-size sector written over in place, so a sync changes no metadata', async () => {
    const layout = new StateLayout(join(await tempDir(), 'state'));
    const log = await AuditLog.open(layout, { flushMs: 60_000, syncMs: 60_000 });
    const first = await stat(layout.auditHeadFile);
    for (let round = 1; round <= 3; round++) {
      log.append(call(round));
      await log.flush();
      const now = await stat(layout.auditHeadFile);
      expect({ size: now.size, ino: now.ino }).toEqual({ size: 512, ino: first.ino });
      expect(await verifyAudit(layout)).toMatchObject({ ok: true, records: round, unanchored: 0 });
    }
    await log.close();
    expect((await readFile(layout.auditHeadFile, 'utf8')).trimEnd()).toMatch(/^\{"seq":3,.*\}$/);
  });
});

describe('the audit log after a crash or a loss', () => {
  it('a line cut by a crash is dropped on reopen and the chain goes on; a record reaches the disk within the flush interval', async () => {
    const layout = await logWith(10);
    await writeFile(layout.auditFile, `${await readFile(layout.auditFile, 'utf8')}{"seq":11,"time":"2026-`);
    const log = await AuditLog.open(layout);
    log.append(call(11));
    await waitFor('record 11 written without a flush', async () => (await readFile(layout.auditFile, 'utf8')).includes('"seq":11,"time":"2026-12-04T12:00:00.011Z"'));
    await log.close();
    expect(await verifyAudit(layout)).toMatchObject({ ok: true, records: 11, last: 11 });
  });

  it('refuses to write after records it cannot anchor (head gone) or seal (key gone)', async () => {
    const headless = await logWith(3);
    await rm(headless.auditHeadFile);
    await expect(AuditLog.open(headless)).rejects.toThrow(/has records but its head .* is missing or damaged/);
    expect(await verifyAudit(headless)).toMatchObject({ ok: false, message: 'audit.head is missing or damaged: where the log ends cannot be checked' });
    const rotatedOnly = await logWith(40, { maxFileBytes: 2048 });
    await rm(rotatedOnly.auditHeadFile);
    await writeFile(rotatedOnly.auditFile, '');
    await expect(AuditLog.open(rotatedOnly)).rejects.toThrow(/has records but its head/);
    const keyless = await logWith(3);
    await rm(keyless.auditKeyFile);
    await expect(AuditLog.open(keyless)).rejects.toThrow(/exists but its key .* is gone/);
    await expect(verifyAudit(keyless)).rejects.toThrow(/has no key beside it/);
  });
});

describe('recordOf', () => {
  it('bounds what a caller controls: names, argument count, groups, request ids', () => {
    const many = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`a${i}`, i]));
    const record = recordOf(
      { method: 'tools/call', id: 'x'.repeat(1000), params: { name: 'n'.repeat(1000), arguments: many } },
      { time: '2026-12-04T00:00:00.000Z', subject: { kind: 'user', user: 'alice', groups: Array.from({ length: 100 }, (_, i) => `g${i}`) }, server: 'mini', decision: 'deny', rule: 'ops (p.yaml:3)', durationMs: 0.12345, outcome: 'denied', code: 403 },
    );
    expect(record.name).toHaveLength(259);
    expect(record.requestId).toHaveLength(131);
    expect(record.args).toHaveLength(64);
    expect(record.argsOmitted).toBe(36);
    expect(record.subject.groups).toHaveLength(64);
    expect(record).toMatchObject({ decision: 'deny', rule: 'ops (p.yaml:3)', durationMs: 0.123, outcome: 'denied', code: 403 });
    expect(recordOf({ method: 'tools/list', params: 'junk' }, { time: 't', subject: { kind: 'none' }, server: '*', decision: 'allow', durationMs: 1, outcome: 'ok' })).toEqual({
      time: 't', subject: { kind: 'none' }, server: '*', method: 'tools/list', decision: 'allow', durationMs: 1, outcome: 'ok',
    });
  });
});

describe('verify while the log is written', () => {
  it('passes every time while a writer appends and rotates beside it', async () => {
    const layout = await logWith(10);
    const log = await AuditLog.open(layout, { maxFileBytes: 2048, keepFiles: 3 });
    let writing = true;
    const writer = (async () => {
      for (let i = 11; writing; i++) {
        log.append(call(i));
        if (i % 3 === 0) await log.flush();
      }
    })();
    const results = [];
    try {
      // Until the writer has rotated many times (files of six records or so), however fast each side runs.
      while ((log.lastSeq < 120 || results.length < 50) && results.length < 5000) results.push(await verifyAudit(layout));
    } finally {
      writing = false;
      await writer;
      await log.close();
    }
    expect(log.lastSeq).toBeGreaterThanOrEqual(120);
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(await verifyAudit(layout)).toMatchObject({ ok: true, last: log.lastSeq });
  });
});
