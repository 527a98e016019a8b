/**
 * Pinned tools in the audit log (issue 28): with a Gateway that keeps one,
 * a server's tools drifting is one record (subject apiary, the tools named,
 * withheld), and each approval one more, naming who approved: the account
 * running `apiary tools approve`, or the console's own token. The chain
 * still verifies. Without an audit log, an approval leaves nothing behind.
 */
import { readdir, readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { readAuditRecords } from '../src/state/audit-read.js';
import { StateLayout } from '../src/state/layout.js';
import { runCli } from './helpers/cli.js';
import { startConsole } from './helpers/console.js';
import { harness, type Harness } from './helpers/controller.js';
import { driftManifest, driftReady, RUG_PULL } from './helpers/drifting.js';

const AUDITED = 'apiVersion: apiary.dev/v1alpha1\nkind: Gateway\nmetadata:\n  name: default\nspec:\n  audit:\n    maxFiles: 2\n';

const manifest = (env: Record<string, string> = {}): string => driftManifest(env);

const tools = (h: Harness, ...args: string[]) => runCli(['--dir', h.dir, '--state-dir', h.stateDir, 'tools', ...args], { env: h.env });

const readyPid = (h: Harness, other?: number): Promise<number> => driftReady(h, other);

/** Locked as it lists now, then restarted with echo's description changed and a new tool: ToolsDrifted True. */
async function drifted(h: Harness): Promise<void> {
  const first = await readyPid(h);
  await h.waitFor('the listed tools kept', () => readFile(join(h.stateDir, 'tools', 'drift.json'), 'utf8').catch(() => undefined));
  expect((await tools(h, 'lock')).code).toBe(0);
  await h.waitFor('ToolsDrifted False', async () => findCondition((await h.status('drift'))?.conditions, 'ToolsDrifted')?.status === 'False');
  await h.write('drift.yaml', manifest({ ECHO_DESCRIPTION: RUG_PULL, EXTRA_TOOL: '1' }));
  await readyPid(h, first);
  await h.waitFor('ToolsDrifted True', async () => findCondition((await h.status('drift'))?.conditions, 'ToolsDrifted')?.status === 'True');
}

const approvalNotes = async (h: Harness): Promise<string[]> => (await readdir(new StateLayout(h.stateDir).requestsDir).catch(() => [] as string[])).filter((f) => f.startsWith('approved-'));

describe('pinned tools in the audit log', () => {
  it('a drift, an approval from the CLI and one from the console are records naming who; audit verify passes', async () => {
    const h = await harness();
    await h.write('gateway.yaml', AUDITED);
    await h.write('drift.yaml', manifest());
    await h.start();
    await drifted(h);
    const layout = new StateLayout(h.stateDir);
    const record = (method: string, count: number) =>
      h.waitFor(`${count} ${method} record(s)`, async () => {
        const found = (await readAuditRecords(layout).catch(() => [])).filter((r) => r.method === method);
        return found.length >= count ? found : undefined;
      });

    const [drift] = await record('tools/drift', 1);
    expect(drift).toMatchObject({ subject: { kind: 'apiary' }, server: 'drift', name: 'echo, exfiltrate', decision: 'deny', rule: 'tools.lock.yaml', outcome: 'denied', durationMs: 0 });

    expect((await tools(h, 'approve', 'drift', 'echo')).code).toBe(0);
    const [fromCli] = await record('tools/approve', 1);
    expect(fromCli).toMatchObject({ subject: { kind: 'user', user: userInfo().username }, server: 'drift', name: 'echo', decision: 'allow', outcome: 'ok' });

    const c = await startConsole(h);
    const approved = await c.request('POST', '/api/v1/mcpservers/drift/tools-approve', { body: {} });
    expect(approved.status, approved.body).toBe(200);
    expect(approved.json()).toMatchObject({ server: 'drift', written: true, drifted: false });
    const fromConsole = (await record('tools/approve', 2))[1];
    expect(fromConsole).toMatchObject({ subject: { kind: 'token' }, server: 'drift', name: 'exfiltrate', decision: 'allow', outcome: 'ok' });
    await h.waitFor('ToolsDrifted False', async () => findCondition((await h.status('drift'))?.conditions, 'ToolsDrifted')?.status === 'False');

    // Approving echo changed the condition but drifted nothing new: still one drift record. Each note recorded once, then gone.
    await h.settled();
    expect((await readAuditRecords(layout)).map((r) => `${r.method} ${r.name}`)).toEqual(['tools/drift echo, exfiltrate', 'tools/approve echo', 'tools/approve exfiltrate']);
    expect(await approvalNotes(h)).toEqual([]);
    await h.controller!.stop();
    const verify = await runCli(['audit', 'verify', '--state-dir', h.stateDir]);
    expect(verify.stdout).toContain('audit log verified: 3 records');
    expect(verify.code).toBe(0);
  }, 90_000);

  it('an approval made while no controller runs is recorded by the next one to start', async () => {
    const h = await harness();
    await h.write('gateway.yaml', AUDITED);
    await h.write('drift.yaml', manifest());
    await h.start();
    await drifted(h);
    await h.controller!.stop();
    expect((await tools(h, 'approve', 'drift')).code).toBe(0);
    expect(await approvalNotes(h)).toHaveLength(1);
    await h.start();
    const layout = new StateLayout(h.stateDir);
    const approval = await h.waitFor('the approval recorded', async () => (await readAuditRecords(layout).catch(() => [])).find((r) => r.method === 'tools/approve'));
    expect(approval).toMatchObject({ subject: { kind: 'user', user: userInfo().username }, name: 'echo, exfiltrate' });
    expect(await approvalNotes(h)).toEqual([]);
  }, 90_000);

  it('without an audit log, an approval writes no record and leaves no note', async () => {
    const h = await harness();
    await h.write('drift.yaml', manifest());
    await h.start();
    await drifted(h);
    expect((await tools(h, 'approve', 'drift')).code).toBe(0);
    await h.waitFor('ToolsDrifted False', async () => findCondition((await h.status('drift'))?.conditions, 'ToolsDrifted')?.status === 'False');
    await h.waitFor('the note taken', async () => (await approvalNotes(h)).length === 0);
    await h.controller!.stop();
    expect(await readdir(new StateLayout(h.stateDir).auditDir).catch(() => 'none')).toBe('none');
  }, 90_000);
});
