/**
 * The output shim as apiary runs it (the built dist/src/runtime/output-shim.js,
 * detached, its output on a file): the server's exit, by code or by the
 * group's signal, is the shim's; its lines reach the file redacted, and the
 * values are never on the shim's command line.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { outputShimPath, throughShim } from '../src/runtime/output-shim-path.js';
import { LEAKED, leaks, MARK } from './helpers/leaks.js';
import { workspace } from './helpers/tmp.js';

const SECRET_ENV = { TOKEN: { secret: 'github', key: 'token' } };

/** Runs `script` (node -e) through the shim as apiary does; `ready` is told each line of the file until it says yes. */
async function runShimmed(script: string, onLine?: (text: string, pid: number) => void): Promise<{ code: number | null; signal: NodeJS.Signals | null; log: string; argv: string }> {
  const dir = (await workspace()).root;
  const file = join(dir, 'server.log');
  const fd = openSync(file, 'a', 0o600);
  const run = throughShim({ command: process.execPath, args: ['-e', script] }, SECRET_ENV);
  const child = spawn(run.command, run.args, { env: { ...process.env, TOKEN: LEAKED }, stdio: ['pipe', fd, fd], detached: true });
  closeSync(fd);
  const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8');
  const timer = onLine === undefined ? undefined : setInterval(() => onLine(readFileSync(file, 'utf8'), child.pid!), 20);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
  clearInterval(timer);
  return { code, signal, log: readFileSync(file, 'utf8'), argv };
}

describe('the output shim', () => {
  it('is built', () => {
    expect(outputShimPath()).toMatch(/dist\/src\/runtime\/output-shim\.js$/);
  });

  it("writes the server's lines with every form of the secret replaced, and leaves with its exit code", async () => {
    const say = "const v = process.env.TOKEN; console.log('plain ' + v); console.error('b64 ' + Buffer.from(v).toString('base64') + ' url ' + encodeURIComponent(v)); process.stdout.write('last ' + v); process.exitCode = 7";
    const { code, signal, log, argv } = await runShimmed(say);
    expect({ code, signal }).toEqual({ code: 7, signal: null });
    expect(leaks(log)).toEqual([]);
    expect(log).toContain(`plain ${MARK}\n`);
    // The base64 form's last characters carry bits of what follows the value too: the redactor keeps them (secretForms).
    expect(log).toContain(`b64 ${MARK}`);
    expect(log).toContain(` url ${MARK}\n`);
    expect(log).toContain(`last ${MARK}`);
    expect(leaks(argv)).toEqual([]);
  });

  it("leaves by the signal the group's SIGTERM ended the server with, and with the code a server that handles it exits with", async () => {
    const term = (text: string, pid: number): void => {
      if (text.includes('up\n')) process.kill(-pid, 'SIGTERM');
    };
    const plain = await runShimmed("console.log('up'); setInterval(() => {}, 1000)", term);
    expect({ code: plain.code, signal: plain.signal }).toEqual({ code: null, signal: 'SIGTERM' });
    const handled = await runShimmed("process.on('SIGTERM', () => { console.log('bye'); process.exit(3); }); console.log('up'); setInterval(() => {}, 1000)", term);
    expect({ code: handled.code, signal: handled.signal }).toEqual({ code: 3, signal: null });
    expect(handled.log).toBe('up\nbye\n');
  });

  it('leaves with the server even when a process it left behind (in a session of its own) holds its output open', async () => {
    const leave = "const g = require('node:child_process').spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { detached: true, stdio: ['ignore', 'inherit', 'inherit'] }); console.log('left ' + g.pid); process.exit(5)";
    const started = Date.now();
    const { code, log } = await runShimmed(leave);
    const left = Number(/left (\d+)/.exec(log)?.[1]);
    if (left > 0) process.kill(left, 'SIGKILL');
    expect(code).toBe(5);
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 20_000);
});
