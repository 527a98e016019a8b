import { chmod, cp, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditLog } from '../src/state/audit-log.js';
import { readAuditRecords, verifyAudit } from '../src/state/audit-read.js';
import { StateLayout } from '../src/state/layout.js';
import { auditCall } from './helpers/audit.js';
import { filesUnder, tempDir } from './helpers/tmp.js';

/**
 * test/fixtures/audit-v1: a log written by the writer of December 2026 (26 records over three files: escapes, unicode,
 * 70 arguments, a NaN duration, drift and approval records), kept so that a faster writer never leaves the logs already
 * on users' disks unverifiable.
 */
async function oldLog(): Promise<StateLayout> {
  const root = join(await tempDir(), 'state');
  await cp(join(import.meta.dirname, 'fixtures/audit-v1/state'), root, { recursive: true });
  // As apiary leaves them (a checkout gives the fixture the umask's modes, which the writer rightly refuses).
  for (const path of await filesUnder(root)) await chmod(path, 0o600);
  const layout = new StateLayout(root);
  for (const dir of [root, layout.auditDir]) await chmod(dir, 0o700);
  return layout;
}

describe('a log written before', () => {
  it('verifies, is read, and is continued by the writer of today', async () => {
    const layout = await oldLog();
    expect(await verifyAudit(layout)).toEqual({ ok: true, records: 26, files: 3, first: 1, last: 26, unanchored: 0 });
    expect((await readAuditRecords(layout)).at(-1)).toMatchObject({ seq: 26, method: 'tools/approve', subject: { kind: 'user', user: 'bob' } });
    const log = await AuditLog.open(layout);
    for (let i = 27; i <= 30; i++) log.append(auditCall(i));
    await log.close();
    expect(await verifyAudit(layout)).toEqual({ ok: true, records: 30, files: 3, first: 1, last: 30, unanchored: 0 });
    // The head of before (a line of its own length) was replaced by one of the fixed size written in place from then on.
    expect((await stat(layout.auditHeadFile)).size).toBe(512);
  });

  it('still names an edited record in it', async () => {
    const layout = await oldLog();
    const path = join(layout.auditDir, 'audit.jsonl.1');
    const lines = (await readFile(path, 'utf8')).split('\n');
    lines[1] = lines[1]!.replace('"github"', '"gitlab"');
    await writeFile(path, lines.join('\n'));
    expect(await verifyAudit(layout)).toMatchObject({ ok: false, file: 'audit.jsonl.1', line: 2, seq: 9 });
  });
});
