/**
 * What the audit log costs per call, in CPU (the process's, so the libuv
 * threads that write and fdatasync count too): the same loop of JSON-RPC
 * request parsing and response serialising, once without and once with a
 * record built by `recordOf` and appended to a real log (batched writes,
 * fdatasync and head every 100 ms, flushed at the end).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditTime, recordOf } from '../src/api/audit.js';
import { AuditLog } from '../src/state/audit-log.js';
import { StateLayout } from '../src/state/layout.js';
import type { Row } from './stats.js';

/** apiary's best calls/s through one endpoint (README, 4 lean clients): ≈197 µs of controller time per call. */
const CALL_US = 1e6 / 5072;

export async function benchAudit(n = 20_000): Promise<Row[]> {
  const root = await mkdtemp(join(tmpdir(), 'apiary-bench-audit-'));
  try {
    await loop(200, undefined);
    const without = await loop(n, undefined);
    const log = await AuditLog.open(new StateLayout(join(root, 'state')));
    await loop(200, log);
    const withAudit = await loop(n, log, () => log.close());
    const added = withAudit - without;
    const path = await auditPathCpu(200_000);
    return [
      { measure: 'a tools/call handled in the loop, no audit', result: `${without.toFixed(2)} µs CPU`, note: `mean of ${n}: JSON.parse of the request, JSON.stringify of the answer` },
      { measure: 'the same with recordOf + AuditLog.append', result: `${withAudit.toFixed(2)} µs CPU`, note: `${(withAudit / without).toFixed(2)}x the loop without; writes and syncs included (closed at the end)` },
      { measure: 'added per audited call', result: `${added.toFixed(2)} µs CPU`, target: '≤ 5% of a call', note: `${((100 * added) / CALL_US).toFixed(1)}% of apiary's ≈${CALL_US.toFixed(0)} µs per call at 5,072 calls/s` },
      { measure: 'the record path alone', result: `${path.toFixed(2)} µs CPU`, note: 'mean of 200,000: the ISO time, recordOf, append, sealing and the batched writes to a file, as the call gate does' },
    ];
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** CPU µs per iteration; every 100 iterations the loop yields, as a server between requests, so the log's timers run. */
async function loop(n: number, log: AuditLog | undefined, end?: () => Promise<void>): Promise<number> {
  const started = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const text = `{"jsonrpc":"2.0","id":${i},"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello world ${i}","times":3}}}`;
    const request = JSON.parse(text) as { id: number; method: string; params: unknown };
    const answer = JSON.stringify({ jsonrpc: '2.0', id: request.id, result: { content: [{ type: 'text', text: `hello world ${i}` }] } });
    log?.append(
      recordOf(request, { time: auditTime(Date.now()), subject: { kind: 'user', user: 'alice', groups: ['dev'] }, client: 'claude-code/2.1', server: 'mini', decision: 'allow', rule: 'devs (policies.yaml:9)', durationMs: answer.length / 1000, outcome: 'ok' }),
    );
    if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
  }
  await end?.();
  const used = process.cpuUsage(started);
  return (used.user + used.system) / n;
}

/**
 * CPU µs per record of the audit path alone, as `finish` in src/mcp/call-gate.ts takes it: the ISO time of the call's
 * arrival, `recordOf` over an already parsed request, `append`, and (in the log's timers) sealing and the batched
 * write(2)s to a file in the temp folder, with the sync and close at the end. Nothing else runs in the loop, so the
 * figure is the audit's own; `npm run bench -- audit-path` prints it alone (for before/after comparisons).
 */
export async function auditPathCpu(n: number): Promise<number> {
  const root = await mkdtemp(join(tmpdir(), 'apiary-bench-audit-path-'));
  try {
    const requests = Array.from({ length: 64 }, (_, i) => ({ method: 'tools/call', id: i, params: { name: 'greet', arguments: { name: `world ${i}`, times: 3 } } }));
    const subject = { kind: 'user' as const, user: 'alice', groups: ['dev'] };
    const log = await AuditLog.open(new StateLayout(join(root, 'state')));
    const started = process.cpuUsage();
    const t0 = Date.now();
    for (let i = 0; i < n; i++) {
      const request = requests[i % 64]!;
      log.append(recordOf(request, { time: auditTime(t0 + (i >> 4)), subject, client: 'bench/1.0', server: 'hello', decision: 'allow', rule: 'me (policies.yaml:9)', durationMs: 0.1234 + i / n, outcome: 'ok', code: undefined }));
      if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
    }
    await log.close();
    const used = process.cpuUsage(started);
    return (used.user + used.system) / n;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
