/**
 * Rolling updates, end to end: a real server (server-everything) behind
 * apiary's endpoint, three official SDK clients calling it without pause,
 * and the manifest edited twenty times. No client may see an error, lose its
 * session or get another client's answer; one process is left at the end.
 * Then the ways a rollout fails: the old process keeps serving and status
 * says why.
 */
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { describe, expect, it } from 'vitest';
import { findCondition, type MCPServerStatus } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { runCli } from './helpers/cli.js';
import { harness, isAlive, tinyServer, type Harness } from './helpers/controller.js';
import { fetchWithOwnSignal } from '../src/mcp/own-signal-fetch.js';
import { mostAbortListeners } from './helpers/listeners.js';

const require_ = createRequire(import.meta.url);
const EVERYTHING = require_.resolve('@modelcontextprotocol/server-everything/dist/index.js');

function everything(rev: number): string {
  return `apiVersion: apiary.dev/v1alpha1
kind: MCPServer
metadata:
  name: everything
spec:
  command: node
  args: [${JSON.stringify(EVERYTHING)}, stdio]
  env:
    - name: ROLLOUT_REV
      value: "${rev}"
`;
}

/** Rolled out: the process serving is the one the manifest's generation asks for. */
async function rolledOut(h: Harness, name: string, generation: number, notPid?: number): Promise<MCPServerStatus> {
  return h.waitFor(
    `${name} at generation ${generation}`,
    async () => {
      const server = await h.server(name);
      const status = server?.object.status as MCPServerStatus | undefined;
      const ready = findCondition(status?.conditions, 'Ready');
      return server?.object.metadata.generation === generation && ready?.status === 'True' && ready.observedGeneration === generation && status!.pid !== notPid && status;
    },
    30_000,
  );
}

/**
 * A client of the SDK v1, whose transport hands every POST of the session its
 * one AbortSignal: given apiary's fetch, each request has a signal of its own
 * (under load, thousands of calls a client piled as many abort listeners on
 * that signal, a flood of MaxListenersExceededWarning in the test's output).
 */
async function connect(url: string, token: string, name: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name, version: '1' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } }, fetch: fetchWithOwnSignal });
  await client.connect(transport);
  return { client, transport };
}

describe('rolling updates', () => {
  it('twenty rollouts under a steady stream of calls from three SDK clients: no failed call, sessions kept, one process at the end', async () => {
    const h = await harness();
    await h.write('everything.yaml', everything(0));
    await h.start();
    let status = await rolledOut(h, 'everything', 1);
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    const clients = await Promise.all([0, 1, 2].map((i) => connect(status.url!, token, `client-${i}`)));
    const sessions = clients.map((c) => c.transport.sessionId);
    expect(sessions.every((s) => typeof s === 'string')).toBe(true);

    let running = true;
    const calls = { ok: 0, failed: [] as string[] };
    const load = clients.map(async ({ client }, i) => {
      for (let n = 0; running; n++) {
        const message = `client ${i} call ${n}`;
        try {
          const result = await client.callTool({ name: 'echo', arguments: { message } });
          // Each client gets its own answer, never another's.
          if (JSON.stringify(result.content) !== JSON.stringify([{ type: 'text', text: `Echo: ${message}` }])) calls.failed.push(`${message}: ${JSON.stringify(result)}`);
          else calls.ok++;
        } catch (err) {
          calls.failed.push(`${message}: ${String(err)}`);
        }
      }
    });

    const pids = [status.pid!];
    let slow: Promise<unknown> | undefined;
    // Neither the clients nor the controller in this process leave an abort listener per call on any signal.
    const listeners = await mostAbortListeners(async () => {
      for (let rev = 1; rev <= 20; rev++) {
        // One rollout starts while a long call is in flight at the old process: it is answered by that process.
        if (rev === 5) slow = clients[0]!.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 2 } });
        const before = calls.ok;
        await h.write('everything.yaml', everything(rev));
        status = await rolledOut(h, 'everything', rev + 1, status.pid);
        pids.push(status.pid!);
        // Calls kept flowing across this rollout.
        await h.waitFor('calls after the rollout', async () => calls.ok > before + 3);
      }
      running = false;
      await Promise.all(load);
    });
    expect(listeners).toBeLessThan(50);
    const long = (await slow) as { content: { text: string }[] };
    expect(long.content[0]?.text).toMatch(/Long running operation completed/);

    expect(calls.failed).toEqual([]);
    expect(calls.ok).toBeGreaterThan(100);
    // Sessions kept: the same session ids, and each client still works.
    expect(clients.map((c) => c.transport.sessionId)).toEqual(sessions);
    for (const { client } of clients) expect((await client.listTools()).tools.some((t) => t.name === 'echo')).toBe(true);
    // Twenty-one processes in turn, one left.
    expect(new Set(pids).size).toBe(21);
    await h.waitFor('every replaced process gone', async () => pids.slice(0, -1).every((pid) => !isAlive(pid)));
    expect(isAlive(pids.at(-1)!)).toBe(true);
    const events = (await h.server('everything'))?.events ?? [];
    // The short event history keeps the latest: each rollout a RollingUpdate and a RolledOut.
    expect(events.map((e) => e.reason)).toEqual(Array.from({ length: 10 }, () => ['RollingUpdate', 'RolledOut']).flat());
    expect(events.at(-1)?.message).toMatch(new RegExp(`^pid ${pids.at(-1)} \\(generation 21\\) took over from pid ${pids.at(-2)}, \\d+ ms after it started$`));
    expect(events.some((e) => e.type === 'Warning')).toBe(false);
    expect(status.restartCount).toBe(0);
    await Promise.all(clients.map((c) => c.client.close()));
  }, 180_000);

  it('a new version that crashes on start: the old keeps serving, status says why, and a fix rolls forward', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    await h.start();
    const first = await rolledOut(h, 'a', 1);
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    const { client } = await connect(first.url!, token, 'watcher');

    await h.write('a.yaml', tinyServer('a', h, { args: ['--crash-times', '1000', '3'] }));
    const stalled = await h.waitFor('the rollout failed', async () => {
      const s = await h.status('a');
      return findCondition(s?.conditions, 'Stalled')?.reason === 'RolloutFailed' && s;
    });
    expect(stalled.phase).toBe('Running');
    expect(stalled.pid).toBe(first.pid);
    expect(findCondition(stalled.conditions, 'Ready')).toMatchObject({ status: 'True', observedGeneration: 1 });
    expect(stalled.message).toMatch(/^rolling update to generation 2 failed \(the new process \(pid \d+\) exited \(exit code 3\) before it was ready; its output: apiary logs a --next\); generation 1 \(pid \d+\) keeps serving; next try in \d+s$/);
    expect(isAlive(first.pid!)).toBe(true);
    // The old process still answers through the same session.
    await expect(client.ping()).resolves.toBeDefined();
    // Its output is where the message says (the try after it, made meanwhile on a slow machine, says the same once it crashes).
    await h.waitFor("the crash in the new process's log", async () => (await runCli(['logs', 'a', '--next'], { env: h.env })).stdout.includes('crashing on purpose'));
    const describe = await runCli(['describe', 'mcpserver', 'a'], { env: h.env });
    expect(describe.stdout).toMatch(/RolloutFailed/);

    // Retried with back-off, not in a loop: the second failure waits longer than the first (the
    // intervals themselves are stepped through on the fake clock in mcpserver-executor.test.ts).
    const nextTry = (message: string | undefined): number => Number(/next try in (\d+)s$/.exec(message ?? '')?.[1] ?? NaN);
    const firstWait = nextTry(stalled.message);
    await h.waitFor('a second failed try, backing off longer', async () => {
      const s = await h.status('a');
      return (await h.starts('a')).length >= 3 && nextTry(s?.message) > firstWait;
    }, 20_000);

    await h.write('a.yaml', tinyServer('a', h, { args: ['--fixed'] }));
    const fixed = await rolledOut(h, 'a', 3, first.pid);
    expect(findCondition(fixed.conditions, 'Stalled')?.status).toBe('False');
    expect(fixed.message).toBeUndefined();
    await h.waitFor('the old process gone', async () => !isAlive(first.pid!));
    await expect(client.ping()).resolves.toBeDefined();
    await client.close();
  }, 60_000);

  it('a new version that never answers the handshake is given up at progressDeadlineSeconds; the old keeps serving', async () => {
    const h = await harness();
    const deadline = '  strategy:\n    rollingUpdate:\n      progressDeadlineSeconds: 1\n';
    await h.write('a.yaml', tinyServer('a', h, { extra: deadline }));
    await h.start();
    const first = await rolledOut(h, 'a', 1);
    await h.write('a.yaml', tinyServer('a', h, { args: ['--no-mcp'], extra: deadline }));
    const rolling = await h.waitFor('rolling', async () => {
      const s = await h.status('a');
      return findCondition(s?.conditions, 'Reconciling')?.reason === 'RollingUpdate' && s;
    });
    expect(rolling.pid).toBe(first.pid);
    const stalled = await h.waitFor('given up', async () => {
      const s = await h.status('a');
      return findCondition(s?.conditions, 'Stalled')?.reason === 'RolloutFailed' && s;
    });
    expect(stalled.message).toContain('was not ready within 1s (strategy.rollingUpdate.progressDeadlineSeconds)');
    expect(stalled.pid).toBe(first.pid);
    // The process that hung is stopped, not left beside the old one.
    const hung = (await h.starts('a')).filter((pid) => pid !== first.pid);
    await h.waitFor('the hung process stopped', async () => hung.every((pid) => !isAlive(pid)));
    expect(isAlive(first.pid!)).toBe(true);
  }, 60_000);

  it('the log of a rollout: logs shows the new process once it took over, --previous the old one', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    await h.start();
    const first = await rolledOut(h, 'a', 1);
    await h.write('a.yaml', tinyServer('a', h, { args: ['--second'] }));
    const second = await rolledOut(h, 'a', 2, first.pid);
    await h.waitFor('the old process gone', async () => !isAlive(first.pid!));
    const layout = new StateLayout(h.stateDir);
    expect(await readFile(layout.logFile('a'), 'utf8')).toContain(`pid ${second.pid} up`);
    expect(await readFile(layout.previousLogFile('a'), 'utf8')).toContain(`pid ${first.pid} up`);
    // The records follow (written in order, each synced to disk: they may trail the switch by a few writes).
    await h.waitFor('the record of the new process', async () => (await readFile(join(h.stateDir, 'processes', 'a.json'), 'utf8')).includes(`"pid": ${second.pid}`));
  }, 30_000);
});
