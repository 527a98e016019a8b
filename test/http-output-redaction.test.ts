/**
 * An HTTP server's own output is redacted too (issue 28 item 2): a local
 * HTTP server writes its log itself (it outlives the controller), so it runs
 * through the output shim (src/runtime/output-shim.ts, built to dist), which
 * redacts its stdout and stderr line by line. A real controller (in process,
 * and the built CLI for adoption), the HTTP fixture saying its secret at
 * start, `apiary logs`, and the SDK client.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { runCli, spawnUp } from './helpers/cli.js';
import { harness, isAlive, nodeServer, secretYaml, type Harness } from './helpers/controller.js';
import { LEAKED, leaks, MARK, versionedClient } from './helpers/leaks.js';
import { requireTool } from './helpers/tools.js';
import { probeSandbox } from '../src/runtime/sandbox.js';

const LEAKY_HTTP = fileURLToPath(new URL('./fixtures/servers/leaky-http-server.mjs', import.meta.url));
const bwrap = requireTool('/usr/bin/bwrap', "apt install bubblewrap (Debian's package; user namespaces must be allowed); .ci/run installs it", () => probeSandbox(process.env).available);

function manifest(env: Record<string, string> = {}, extra = ''): string {
  const plain = Object.entries({ SAY_SECRET: '1', ...env }).map(([name, value]) => `    - name: ${name}\n      value: ${JSON.stringify(value)}\n`).join('');
  return nodeServer('leaky', [LEAKY_HTTP], `  transport: streamable-http\n${extra}  env:\n    - name: LEAKED_VALUE\n      valueFrom: { secretKeyRef: { name: github, key: token } }\n${plain}`);
}

async function ready(h: Harness): Promise<{ url: string; pid: number }> {
  return h.waitFor('leaky Ready', async () => {
    const s = await h.status('leaky');
    return findCondition(s?.conditions, 'Ready')?.status === 'True' && s?.url !== undefined && s.pid !== undefined ? { url: s.url, pid: s.pid } : undefined;
  }, 20_000);
}

/** `apiary logs leaky` once the server has said it listens, and the pid the server itself gave there. */
async function logsOf(h: Harness): Promise<{ text: string; serverPid: number }> {
  const text = await h.waitFor('the server listening, in its log', async () => {
    const logs = await runCli(['logs', 'leaky'], { env: h.env });
    return logs.code === 0 && logs.stdout.includes('leaky-http on') ? logs.stdout : undefined;
  });
  return { text, serverPid: Number(/pid=(\d+)/.exec(text)?.[1]) };
}

/** The process group a process is in (/proc/PID/stat, the field after the state). */
function groupOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

async function serves(url: string, h: Harness): Promise<void> {
  const c = await versionedClient(url, (await readEndpointToken(new StateLayout(h.stateDir)))!, '2025-11-25');
  expect((await c.callTool({ name: 'echo', arguments: { text: 'still here' } })).content).toEqual([{ type: 'text', text: 'still here' }]);
  await c.close();
}

describe("an HTTP server's own output", () => {
  it('reaches its log with every form of the secret replaced by the marker; the server serves, and its removal leaves no process', async () => {
    const h = await harness();
    await h.write('s.yaml', secretYaml('github', { token: LEAKED }));
    await h.write('leaky.yaml', manifest());
    await h.start();
    const { url, pid } = await ready(h);
    const { text, serverPid } = await logsOf(h);
    expect(leaks(text)).toEqual([]);
    expect(text).toContain(`starting with token ${MARK}\n`);
    expect(text).toContain(`token in base64 ${MARK}`);
    expect(text).toContain(`in a URL ?t=${MARK}\n`);
    await serves(url, h);
    // apiary's pid is the group's leader (the shim); the server is in its group, so the group's signals reach both.
    expect(serverPid).not.toBe(pid);
    expect(groupOf(serverPid)).toBe(pid);
    expect(groupOf(pid)).toBe(pid);

    await rm(join(h.dir, 'leaky.yaml'));
    await h.waitFor('both processes gone', async () => !isAlive(pid) && !isAlive(serverPid));
  }, 60_000);

  it("records the server's own exit code", async () => {
    const h = await harness();
    await h.write('s.yaml', secretYaml('github', { token: LEAKED }));
    await h.write('leaky.yaml', manifest({ EXIT_AFTER: '3' }, '  restartPolicy: Never\n'));
    await h.start();
    const ended = await h.waitFor('the run ended', async () => (await h.status('leaky'))?.lastTermination);
    expect(ended.exitCode).toBe(3);
    expect(ended.signal).toBeNull();
    expect(leaks(JSON.stringify(await h.status('leaky')))).toEqual([]);
  }, 30_000);

  it('is adopted by the next controller after kill -9 (the pid recorded is the group both are in), and stopped with it', async () => {
    const h = await harness();
    await h.write('s.yaml', secretYaml('github', { token: LEAKED }));
    await h.write('leaky.yaml', manifest());
    const first = spawnUp(['up'], h.env);
    const { pid } = await ready(h);
    const { serverPid } = await logsOf(h);
    first.child.kill('SIGKILL');
    await first.exited;
    expect(isAlive(pid) && isAlive(serverPid)).toBe(true);

    const second = spawnUp(['up'], h.env);
    await h.waitFor('adopted', async () => second.output().includes('"msg":"adopted running server"'));
    const again = await ready(h);
    expect(again.pid).toBe(pid);
    // Served through the second controller's proxy once it listens (the status read may still be the first's).
    await h.waitFor('served again', () => serves(again.url, h).then(() => true, () => undefined));
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    expect(isAlive(pid)).toBe(false);
    await h.waitFor('the server gone with its shim', async () => !isAlive(serverPid));
  }, 60_000);

  it.skipIf(!bwrap.available)("a sandboxed one's output passes through apiary instead (redacted), so bubblewrap stays its group's leader and goes with the controller", async () => {
    const h = await harness();
    await h.write('s.yaml', secretYaml('github', { token: LEAKED }));
    // The checkout (the fixture, and node_modules as this checkout names it) and where node_modules really is.
    const root = fileURLToPath(new URL('..', import.meta.url));
    const read = [root, realpathSync(join(root, 'node_modules'))].map((path) => JSON.stringify(path)).join(', ');
    await h.write('leaky.yaml', manifest({}, `  sandbox:\n    network: none\n    filesystem:\n      read: [${read}]\n`));
    await h.start();
    const { url, pid } = await ready(h);
    const { text } = await logsOf(h);
    expect(leaks(text)).toEqual([]);
    expect(text).toContain(`starting with token ${MARK}\n`);
    expect(text).toContain(`in a URL ?t=${MARK}\n`);
    await serves(url, h);
    // No shim between: the process apiary started and signals is bubblewrap, whose --die-with-parent names the controller.
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]).toMatch(/bwrap$/);
    await rm(join(h.dir, 'leaky.yaml'));
    await h.waitFor('the sandbox gone', async () => !isAlive(pid));
  }, 60_000);
});
