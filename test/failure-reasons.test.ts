/**
 * What a newcomer sees when a server does not run: the default `get` puts
 * the reason beside the phase (as kubectl's STATUS shows
 * CreateContainerConfigError), and a crash loop's message quotes the last
 * line the server wrote (the kubelet's FallbackToLogsOnError), never with a
 * secret value in it.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Condition, MCPServerStatus } from '../src/api/status.js';
import { phaseWithReason } from '../src/cli/format.js';
import { lastOutputLine } from '../src/runtime/last-output.js';
import { redactValues } from '../src/api/remote.js';
import { runCli } from './helpers/cli.js';
import { harness, nodeServer, secretYaml } from './helpers/controller.js';
import { filesUnder } from './helpers/tmp.js';

const CANARY = 'ghp_canary"Value/with%chars-7731';

/** A server that prints its whole environment, then a last line quoting its token, and exits 3. */
const LEAKY = `console.error('env:', JSON.stringify(process.env)); console.error('fatal: token ' + process.env.TOKEN + ' was rejected'); process.exit(3);`;

const tokenFrom = (secret: string): string => `  env:\n    - name: TOKEN\n      valueFrom:\n        secretKeyRef: { name: ${secret}, key: token }\n`;

describe('get shows why a server does not run', () => {
  it('Stuck (SecretNotFound) in the default table', async () => {
    const h = await harness();
    await h.write('server.yaml', nodeServer('waiting', ['-e', 'setInterval(() => {}, 1000)'], tokenFrom('absent')));
    await h.start();
    await h.waitFor('Stuck', async () => (await h.status('waiting'))?.phase === 'Stuck');
    const table = await runCli(['get', 'mcp'], { env: h.env });
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^waiting {3}Stuck \(SecretNotFound\) {3}False {3}0 /m);
  }, 60_000);

  it('a crash loop says how the last run ended and the line it wrote last, its secret redacted everywhere apiary reports it', async () => {
    const h = await harness();
    await h.write('secret.yaml', secretYaml('leaky', { token: CANARY }));
    await h.write('server.yaml', nodeServer('leaky', ['-e', LEAKY], tokenFrom('leaky')));
    await h.start();
    const status = await h.waitFor('CrashLoopBackOff', async () => {
      const s = await h.status('leaky');
      return s?.phase === 'CrashLoopBackOff' && s;
    }, 30_000);
    // The line reached the log already redacted (a stdio server's stderr passes through apiary), naming the secret.
    const said = 'fatal: token [redacted: secret leaky/token] was rejected';
    expect(status.message).toMatch(/^back-off \d+s restarting failed server \(exit code 3: fatal: token \[redacted: secret leaky\/token\] was rejected\); next try in \d+s$/);
    expect(status.lastTermination).toMatchObject({ exitCode: 3, reason: 'Error', message: said });

    const table = await runCli(['get', 'mcp', '-o', 'wide'], { env: h.env });
    expect(table.stdout).toMatch(/^leaky {3}CrashLoopBackOff {3}False /m);
    expect(table.stdout).toContain(said);
    const described = await runCli(['describe', 'mcp', 'leaky'], { env: h.env });
    expect(described.stdout).toContain(`Last output:      ${said}`);
    expect(described.stdout).toMatch(/Warning {3}Exited .*process exited \(exit code 3\): fatal: token \[redacted: secret leaky\/token\] was rejected/);

    // No file of the state directory holds it, the server's own log included (its whole environment printed there, JSON-escaped).
    await h.controller!.stop();
    for (const file of await filesUnder(h.stateDir)) expect(await readFile(file, 'utf8'), file).not.toContain('canary');
    for (const out of [table.stdout, table.stderr, described.stdout, JSON.stringify(h.logs)]) expect(out).not.toContain('canary');
  }, 60_000);
});

describe('the last line of a failed run', () => {
  it('passes over a Node stack trace and its version footer for the error above them, redacts each secret as written, JSON-escaped and URL-encoded, then cuts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'apiary-last-output-'));
    const file = join(dir, 'server.log');
    await writeFile(file, `starting\n/srv/app.js:3\nthrow new Error('bad config')\n^\n\nError: bad config for ${CANARY}\n    at Object.<anonymous> (/srv/app.js:3:7)\n    at node:internal/main:1:1\n\nNode.js v22.12.0\n`);
    expect(lastOutputLine(file, [CANARY])).toBe('Error: bad config for [redacted]');
    expect(redactValues(`a=${JSON.stringify(CANARY)} b=${encodeURIComponent(CANARY)}`, [CANARY, ''])).toBe('a="[redacted]" b=[redacted]');
    await writeFile(file, `${'x'.repeat(220)}${CANARY}\n`);
    // Cut first, the line would end with the value's first 19 characters; redacted first, it needs no cut.
    expect(lastOutputLine(file, [CANARY])).toBe(`${'x'.repeat(220)}[redacted]`);
    await writeFile(file, `${'y'.repeat(300)}\n`);
    expect(lastOutputLine(file, [])).toBe(`${'y'.repeat(239)}…`);
    expect(lastOutputLine(join(dir, 'absent.log'), [])).toBeUndefined();
  });
});

describe('the phase column', () => {
  const condition = (type: string, status: 'True' | 'False', reason: string): Condition => ({ type, status, reason, message: '', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 1 });
  const status = (phase: MCPServerStatus['phase'], ...conditions: Condition[]): MCPServerStatus => ({ observedGeneration: 1, phase, conditions, restartCount: 0 });

  it.each([
    ['Stuck on a secret', status('Stuck', condition('Ready', 'False', 'SecretNotFound'), condition('Stalled', 'True', 'SecretNotFound')), 'Stuck (SecretNotFound)'],
    ['Stuck on its manifest', status('Stuck', condition('Ready', 'False', 'InvalidManifest'), condition('Stalled', 'True', 'InvalidManifest')), 'Stuck (InvalidManifest)'],
    ['a crash loop (its own reason)', status('CrashLoopBackOff', condition('Ready', 'False', 'CrashLoopBackOff'), condition('Stalled', 'False', 'Progressing')), 'CrashLoopBackOff'],
    ['a command that cannot start', status('CrashLoopBackOff', condition('Ready', 'False', 'CrashLoopBackOff'), condition('Stalled', 'True', 'StartFailed')), 'CrashLoopBackOff (StartFailed)'],
    ['stopped with the controller', status('Pending', condition('Ready', 'False', 'ControllerStopped')), 'Pending (ControllerStopped)'],
    ['running, even while not Ready', status('Running', condition('Ready', 'False', 'Initializing'), condition('Stalled', 'False', 'Progressing')), 'Running'],
    ['suspended', status('Suspended', condition('Ready', 'False', 'Suspended')), 'Suspended'],
  ])('%s', (_what, given, shown) => {
    expect(phaseWithReason(given)).toBe(shown);
  });
});
