/**
 * The MCPServer executor, driven one pass at a time against a fake runtime
 * (scripted MCP servers on in-memory streams) and a fake clock: back-off,
 * rolling updates and their deadlines are stepped through by moving time,
 * never by waiting for it.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { describe, expect, it } from 'vitest';
import { findCondition, type MCPServerStatus } from '../src/api/status.js';
import { FakeClock } from '../src/util/clock.js';
import { DesiredState } from '../src/manifests/desired-state.js';
import { silentLogger } from '../src/util/logger.js';
import { KeyStore } from '../src/crypto/keys.js';
import { Gateway } from '../src/mcp/gateway.js';
import { MCPServerReconciler } from '../src/reconcilers/mcpserver.js';
import { SecretResolver } from '../src/reconcilers/secret-resolver.js';
import { StateLayout } from '../src/state/layout.js';
import { RecordBook } from '../src/state/record-book.js';
import { StatusStore } from '../src/state/status-store.js';
import { FakeRuntime } from './helpers/fake-runtime.js';
import { workspace } from './helpers/tmp.js';

function manifest(rev: number, extra = ''): string {
  return `apiVersion: apiary.dev/v1alpha1
kind: MCPServer
metadata:
  name: a
spec:
  command: fake-server
  env:
    - name: REV
      value: "${rev}"
${extra}`;
}

/** Lets in-memory streams deliver what was written (event-loop turns, not time). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

async function setup() {
  const ws = await workspace();
  const clock = new FakeClock();
  const runtime = new FakeRuntime(clock);
  const layout = new StateLayout(ws.stateDir);
  const records = new RecordBook(new StatusStore(layout), clock, { pid: process.pid, runId: 'test' });
  await records.load();
  const gateway = new Gateway({ clock, logger: silentLogger, layout, onChange: () => undefined, onUnhealthy: () => undefined });
  await mkdir(ws.dir, { recursive: true });
  const desired = new DesiredState(ws.dir);
  /** Liveness failures as a backend keeps them (observed state the reconciler reads). */
  const liveness = new Map<string, { pid: number; message: string }>();
  const reconciler = new MCPServerReconciler({
    liveness: (name) => liveness.get(name),
    desired,
    runtime,
    gateway,
    secrets: new SecretResolver(new KeyStore({ env: { APIARY_KEY_FILE: ws.keyFile } })),
    records,
    memory: new Map(),
    clock,
    logger: silentLogger,
    inheritedEnv: {},
    restartHandled: async () => undefined,
    fingerprint: (v) => createHash('sha256').update(v).digest('hex').slice(0, 16),
  });
  runtime.onExit((name, t) => reconciler.onExit(name, t));
  const write = async (text: string): Promise<void> => {
    await writeFile(join(ws.dir, 'a.yaml'), text);
    await desired.scan();
  };
  /** One reconcile, then whatever the streams carry. */
  const pass = async (): Promise<{ requeueAfterMs?: number }> => {
    const result = await reconciler.reconcile('a');
    await settle();
    return result;
  };
  const status = (): MCPServerStatus => records.get('MCPServer', 'a')!.status as MCPServerStatus;
  const events = (): string[] => records.get('MCPServer', 'a')!.events.map((e) => e.reason);
  const messages = (): string[] => records.get('MCPServer', 'a')!.events.map((e) => `${e.reason}: ${e.message}`);
  return { clock, runtime, gateway, reconciler, liveness, write, pass, status, events, messages, close: () => gateway.closeAll() };
}

describe('MCPServer executor (fake runtime, fake clock)', () => {
  it('a server withdrawn from the aggregate (on its way to a stop) and wanted again in the same pass is back, and its listeners hear so, as they hear its own list_changed', async () => {
    const t = await setup();
    t.runtime.behaviour = () => ({ tools: ['noop'] });
    await t.write(manifest(1));
    await t.pass();
    await t.pass();
    const aggregate = await t.gateway.startAggregate('test');
    if (!('url' in aggregate)) throw new Error(aggregate.error);
    const client = new Client({ name: 'listener', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await client.connect(new StreamableHTTPClientTransport(new URL(aggregate.url)));
    let heard = 0;
    let wake: (() => void) | undefined;
    client.setNotificationHandler('notifications/tools/list_changed', () => {
      heard++;
      wake?.();
    });
    const subscription = await client.listen({ toolsListChanged: true });
    const tools = async (): Promise<number> => (await client.listTools()).tools.length;
    /** Bounded: a list_changed that never comes fails the test instead of hanging it. */
    const hear = async (count: number): Promise<void> => {
      let timer: NodeJS.Timeout | undefined;
      if (heard < count) {
        await Promise.race([
          new Promise<void>((resolve) => (wake = () => heard >= count && resolve())),
          new Promise<void>((_, reject) => (timer = setTimeout(() => reject(new Error(`list_changed #${count} never came`)), 10_000))),
        ]).finally(() => clearTimeout(timer));
      }
    };
    const before = await tools();
    expect(before).toBeGreaterThan(0);
    t.gateway.withdraw('a');
    await hear(1);
    expect(await tools()).toBe(0);
    await t.pass();
    await hear(2);
    expect(await tools()).toBe(before);
    // The server's own news: a 2026-07-28 client keeps no session at the server (the aggregate links none), and hears it all the same.
    t.runtime.server('a')!.reply({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
    await hear(3);
    await subscription.close();
    await client.close();
    await t.gateway.closeAggregate();
    await t.close();
  });

  it('an unhealthy server is stopped as unhealthy, not as a deleted one', async () => {
    const t = await setup();
    await t.write(manifest(1));
    await t.pass();
    await t.pass();
    const { pid } = t.runtime.observe('a')!;
    t.liveness.set('a', { pid, message: '2 MCP pings in a row failed' });
    await t.pass();
    const stopping = t.messages().find((m) => m.startsWith('Stopping: '));
    expect(stopping).toBe(`Stopping: stopping pid ${pid}: it failed its health checks (2 MCP pings in a row failed)`);
    expect(t.messages()).toContain('Unhealthy: 2 MCP pings in a row failed; restarting');
    await t.close();
  });

  it('a rolling update, pass by pass: new process beside the old, switch once it is initialized, old stopped', async () => {
    const t = await setup();
    await t.write(manifest(1));
    await t.pass();
    await t.pass();
    const first = t.runtime.observe('a')!;
    expect(t.status()).toMatchObject({ phase: 'Running', pid: first.pid });
    expect(findCondition(t.status().conditions, 'Ready')?.reason).toBe('Initialized');

    await t.write(manifest(2));
    await t.pass(); // the surge: the new process starts beside the old
    const next = t.runtime.observe('a', 'next')!;
    expect(next.generation).toBe(2);
    expect(t.runtime.observe('a')!.pid).toBe(first.pid);
    expect(findCondition(t.status().conditions, 'Reconciling')?.reason).toBe('RollingUpdate');

    await t.pass(); // it answered the handshake: it takes over, the old one drains (nothing held) and stops
    await settle();
    expect(t.runtime.observe('a')!.pid).toBe(next.pid);
    expect(t.runtime.observe('a', 'old')).toBeUndefined();
    expect(t.runtime.observe('a', 'next')).toBeUndefined();
    expect(t.gateway.view('a')).toMatchObject({ pid: next.pid, state: 'ready' });
    await t.pass();
    expect(t.status()).toMatchObject({ phase: 'Running', pid: next.pid, restartCount: 0 });
    expect(findCondition(t.status().conditions, 'Ready')).toMatchObject({ status: 'True', observedGeneration: 2 });
    expect(t.events()).toEqual(['Started', 'RollingUpdate', 'RolledOut']);
    expect(t.runtime.started).toHaveLength(2);
    await t.close();
  });

  it('a crash backs off 1 s, then 2 s, by the clock', async () => {
    const t = await setup();
    await t.write(manifest(1));
    await t.pass();
    t.clock.advance(5_000);
    t.runtime.exit('a', 'current', { exitCode: 1, signal: null, reason: 'Error' });
    expect((await t.pass()).requeueAfterMs).toBe(1_000);
    expect(t.status().phase).toBe('CrashLoopBackOff');
    expect((await t.pass()).requeueAfterMs).toBe(1_000); // nothing happens before its time
    expect(t.runtime.started).toHaveLength(1);
    t.clock.advance(1_000);
    await t.pass();
    expect(t.runtime.started).toHaveLength(2);
    expect(t.status()).toMatchObject({ phase: 'Running', restartCount: 1 });
    t.runtime.exit('a', 'current', { exitCode: 1, signal: null, reason: 'Error' });
    expect((await t.pass()).requeueAfterMs).toBe(2_000);
    t.clock.advance(1_999);
    await t.pass();
    expect(t.runtime.started).toHaveLength(2);
    t.clock.advance(1);
    await t.pass();
    expect(t.runtime.started).toHaveLength(3);
    await t.close();
  });

  it('a new process that never answers is given up at the deadline and retried with back-off; the old one serves throughout', async () => {
    const t = await setup();
    await t.write(manifest(1));
    await t.pass();
    await t.pass();
    const serving = t.runtime.observe('a')!.pid;
    t.runtime.behaviour = (spec) => ({ silent: spec.generation === 2 });
    await t.write(manifest(2));
    expect((await t.pass()).requeueAfterMs).toBe(60_000); // the surge; next look at its deadline
    expect(t.runtime.observe('a', 'next')).toBeDefined();
    t.clock.advance(59_999);
    expect((await t.pass()).requeueAfterMs).toBe(1);
    t.clock.advance(1);
    const given = await t.pass();
    expect(t.runtime.observe('a', 'next')).toBeUndefined();
    expect(given.requeueAfterMs).toBe(1_000);
    expect(t.status()).toMatchObject({ phase: 'Running', pid: serving });
    expect(findCondition(t.status().conditions, 'Stalled')).toMatchObject({ status: 'True', reason: 'RolloutFailed' });
    expect(t.status().message).toMatch(/was not ready within 60s \(strategy.rollingUpdate.progressDeadlineSeconds\)\); generation 1 \(pid \d+\) keeps serving; next try in 1s$/);
    expect(t.events()).toEqual(['Started', 'RollingUpdate', 'RolloutFailed']);

    // The next try, after its back-off, and this time the new process answers.
    t.runtime.behaviour = () => ({});
    t.clock.advance(1_000);
    await t.pass();
    await t.pass();
    await settle();
    await t.pass();
    expect(t.runtime.started).toHaveLength(3);
    expect(t.status().pid).not.toBe(serving);
    expect(findCondition(t.status().conditions, 'Stalled')?.status).toBe('False');
    await t.close();
  });

  it('a new process that exits before it is ready: a failed rollout, not a crash of the server', async () => {
    const t = await setup();
    await t.write(manifest(1));
    await t.pass();
    await t.pass();
    t.runtime.behaviour = () => ({ silent: true });
    await t.write(manifest(2));
    await t.pass();
    t.runtime.exit('a', 'next', { exitCode: 3, signal: null, reason: 'Error' });
    expect((await t.pass()).requeueAfterMs).toBe(1_000);
    expect(t.status()).toMatchObject({ phase: 'Running', restartCount: 0 });
    expect(t.status().lastTermination).toBeUndefined();
    expect(t.status().message).toMatch(/^rolling update to generation 2 failed \(the new process \(pid \d+\) exited \(exit code 3\) before it was ready; its output: apiary logs a --next\)/);
    // A second failure of the same version backs off longer.
    t.clock.advance(1_000);
    await t.pass();
    t.runtime.exit('a', 'next', { exitCode: 3, signal: null, reason: 'Error' });
    expect((await t.pass()).requeueAfterMs).toBe(2_000);
    // strategy Recreate instead: stop, then start, as before.
    await t.write(manifest(3, '  strategy:\n    type: Recreate\n'));
    t.runtime.behaviour = () => ({});
    await t.pass();
    await t.pass();
    expect(t.runtime.observe('a')!.generation).toBe(3);
    expect(t.events().slice(-2)).toEqual(['Stopping', 'Started']);
    await t.close();
  });
});
