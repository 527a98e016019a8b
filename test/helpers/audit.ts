import { join } from 'node:path';
import { recordOf, type AuditRecord } from '../../src/api/audit.js';
import { AuditLog, type AuditLogOptions } from '../../src/state/audit-log.js';
import { StateLayout } from '../../src/state/layout.js';
import { tempDir } from './tmp.js';

/** The record of the i-th tools/call: alice on even calls, bob on odd; github every third, else mini. */
export function auditCall(i: number, time = new Date(Date.UTC(2026, 11, 4, 12, 0, 0, i)).toISOString()): AuditRecord {
  return recordOf(
    { method: 'tools/call', id: i, params: { name: 'echo', arguments: { text: `hello ${i}` } } },
    { time, subject: { kind: 'user', user: i % 2 === 0 ? 'alice' : 'bob', groups: ['dev'] }, server: i % 3 === 0 ? 'github' : 'mini', decision: 'allow', durationMs: 0.4, outcome: 'ok' },
  );
}

/** A state directory whose audit log holds `n` calls (rotated at `maxFileBytes`). */
export async function auditLogWith(n: number, options: AuditLogOptions = {}): Promise<StateLayout> {
  const layout = new StateLayout(join(await tempDir(), 'state'));
  const log = await AuditLog.open(layout, options);
  for (let i = 1; i <= n; i++) log.append(auditCall(i));
  await log.close();
  return layout;
}
