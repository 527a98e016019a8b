import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { recordOf } from '../src/api/audit.js';
import { AuditLog } from '../src/state/audit-log.js';
import { auditCall, auditLogWith } from './helpers/audit.js';
import { BIN, runCli } from './helpers/cli.js';
import { waitFor } from './helpers/wait.js';

describe('apiary audit', () => {
  it('verify passes on 1,000 records (exit 0) and names the edited record (exit 1)', async () => {
    const layout = await auditLogWith(1000, { maxFileBytes: 64 * 1024 });
    const env = { APIARY_STATE_DIR: layout.root };
    const ok = await runCli(['audit', 'verify'], { env });
    expect(ok).toMatchObject({ code: 0, stderr: '' });
    expect(ok.stdout).toMatch(/^audit log verified: 1000 records \(1\.\.1000\) in \d+ files\n$/);
    const lines = (await readFile(`${layout.auditFile}.1`, 'utf8')).split('\n');
    lines[4] = lines[4]!.replace('"bob"', '"eve"').replace('"alice"', '"eve"');
    await writeFile(`${layout.auditFile}.1`, lines.join('\n'));
    const bad = await runCli(['audit', 'verify'], { env });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error: the audit log failed verification: audit\.jsonl\.1:5: record \d+ was changed \(its mac does not match\)\n {2}The files are in .*\/audit\.\n$/);
  });

  it('reads the log filtered by server, user and time, as text or JSON lines', async () => {
    const layout = await auditLogWith(6);
    const log = await AuditLog.open(layout);
    log.append(auditCall(7, new Date().toISOString()));
    await log.close();
    const env = { APIARY_STATE_DIR: layout.root };
    const text = await runCli(['audit', '--server', 'github', '--user', 'alice'], { env });
    expect(text).toMatchObject({ code: 0, stdout: '2026-12-04T12:00:00.006Z  alice  github  tools/call echo  allow  ok  0.4ms  text:9B\n' });
    const json = await runCli(['audit', '--since', '1h', '-o', 'json'], { env });
    expect(json.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([7]);
    // A name a client chose is shown, not played: its escape sequence cannot recolour or hide the lines around it.
    const hostile = await AuditLog.open(layout);
    hostile.append(recordOf({ method: 'tools/call', id: 8, params: { name: 'echo\u001b[2J\u001b[31m' } }, { time: '2026-12-04T12:00:01.000Z', subject: { kind: 'token' }, server: 'mini', decision: 'allow', durationMs: 1, outcome: 'ok' }));
    await hostile.close();
    expect((await runCli(['audit', '--user', '(token)'], { env })).stdout).toBe('2026-12-04T12:00:01.000Z  (token)  mini  tools/call echo^[[2J^[[31m  allow  ok  1ms\n');
    const wrong = await runCli(['audit', '--since', 'yesterday'], { env });
    expect(wrong).toMatchObject({ code: 2, stderr: expect.stringContaining('--since: "yesterday" is neither a duration') as string });
  });

  it('-f prints new records as they are written, across rotation', async () => {
    const layout = await auditLogWith(3);
    const child = spawn(BIN, ['audit', '-f', '-o', 'json'], { env: { ...process.env, APIARY_STATE_DIR: layout.root, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const seqs = (): number[] => out.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { seq: number }).seq);
    try {
      await waitFor('the first 3 records', () => seqs().length === 3);
      // One record in the same file: seen, audit -f is past its first read and follows the live file.
      const before = await AuditLog.open(layout);
      before.append(auditCall(4));
      await before.close();
      await waitFor('record 4', () => seqs().length === 4, 10_000, { observe: seqs });
      // Small files: the next records rotate the log several times between two of its looks.
      const log = await AuditLog.open(layout, { maxFileBytes: 2048 });
      for (let i = 5; i <= 40; i++) {
        log.append(auditCall(i));
        if (i % 5 === 0) await log.flush();
      }
      await log.close();
      await waitFor('records 5..40', () => seqs().length >= 40, 10_000, { observe: seqs });
      expect(seqs()).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    } finally {
      child.kill('SIGTERM');
    }
  });
});
