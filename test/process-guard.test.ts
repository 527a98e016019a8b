/**
 * The controller process's last resort (issue 13, item 1): what no code
 * handled is logged through the Logger, and a rejection does not end the
 * process. Run in real child processes on the built code, since an
 * unhandled rejection inside vitest is caught by vitest itself; and the
 * dropped upload of the issue against a real `apiary up`.
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { ROOT, runCli, spawnUp } from './helpers/cli.js';
import { harness, tinyServer } from './helpers/controller.js';

const dist = (path: string): string => pathToFileURL(`${ROOT}dist/src/${path}`).href;

/**
 * A node process that installs the guard (unless `guard` is false, the
 * control), logs JSON lines to stdout, then runs `body`; it prints `alive`
 * from a later turn of the event loop if it is still running then.
 */
function guarded(body: string, guard = true): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const script = `
    import { guardProcess } from ${JSON.stringify(dist('cli/process-guard.js'))};
    import { createLogger } from ${JSON.stringify(dist('util/logger.js'))};
    const logger = createLogger((record) => process.stdout.write(JSON.stringify(record) + '\\n'));
    if (${guard}) guardProcess({ logger, stop: () => process.stdout.write('stop requested\\n') });
    ${body}
    setTimeout(() => process.stdout.write('alive\\n'), 20);
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function records(stdout: string): { level: string; msg: string; error?: string; stack?: string }[] {
  return stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; msg: string });
}

describe('the process guard (built code, child processes)', () => {
  it('without it, an unhandled rejection ends the process (the control: what the guard must prevent)', async () => {
    const run = await guarded("Promise.reject(new Error('injected rejection'));", false);
    expect(run.code).toBe(1);
    expect(run.stdout).not.toContain('alive');
    expect(run.stderr).toContain('injected rejection');
  });

  it('an unhandled rejection is logged as an error with its message, and the process runs on', async () => {
    const run = await guarded("Promise.reject(new Error('injected rejection'));");
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('alive');
    expect(run.stdout).not.toContain('stop requested');
    const [logged] = records(run.stdout);
    expect(logged).toMatchObject({ level: 'error', msg: expect.stringContaining('unhandled promise rejection'), error: 'Error: injected rejection' });
    expect(logged?.stack).toContain('injected rejection');
  });

  it('a rejected value that is not an Error is logged by its type only, never its text', async () => {
    const run = await guarded("Promise.reject('ghp_value-that-could-be-a-secret');");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('alive');
    expect(run.stdout).not.toContain('ghp_value');
    expect(records(run.stdout)[0]).toMatchObject({ level: 'error', error: 'a string value (not shown)' });
  });

  it('an uncaught exception is logged and asks for the orderly stop (every server stopped) instead of dying at once', async () => {
    const run = await guarded("setImmediate(() => { throw new TypeError('injected exception'); });");
    expect(run.stdout).toContain('stop requested');
    expect(records(run.stdout)[0]).toMatchObject({ level: 'error', msg: expect.stringContaining('uncaught exception'), error: 'TypeError: injected exception' });
  });
});

describe('apiary up (the built CLI)', () => {
  it('a POST that promises 1000 bytes, sends 11 and closes, at a server endpoint and the aggregate, leaves the controller running and serving', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    const up = spawnUp(['up', '--no-ui'], h.env);
    const ready = await runCli(['wait', 'mcpserver/a', '--for=condition=Ready', '--timeout', '20s'], { env: h.env });
    expect(ready.code, up.output()).toBe(0);
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    const serverUrl = (await h.status('a'))!.url!;
    const aggregateUrl = /apiary MCP endpoint .*: (\S+)/.exec(up.output())![1]!;
    for (const url of [serverUrl, aggregateUrl]) {
      const port = Number(new URL(url).port);
      await new Promise<void>((resolve, reject) => {
        const head = `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"jsonrpc":`;
        const socket = connect(port, '127.0.0.1', () => socket.write(head, () => socket.destroy()));
        socket.on('error', reject);
        socket.on('close', () => resolve());
      });
      const init = await fetch(url, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
      });
      expect(init.status, up.output()).toBe(200);
    }
    expect(up.child.exitCode, up.output()).toBeNull();
    expect(up.output()).not.toContain('unhandled promise rejection');
    up.child.kill('SIGTERM');
    expect(await up.exited, up.output()).toBe(0);
  }, 60_000);
});
