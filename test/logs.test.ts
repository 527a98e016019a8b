import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { harness, secretYaml, tinyServer } from './helpers/controller.js';

describe('server logs and the state directory', () => {
  it('logs prints the current run, --tail limits it, --previous shows the run before', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    await h.start();
    const first = await h.waitFor('running', async () => (await h.status('a'))?.pid);
    await h.waitFor('first log line', async () => (await runCli(['logs', 'a'], { env: h.env })).stdout.includes(`pid ${first} up`));
    await h.write('a.yaml', tinyServer('a', h, { args: ['--second'] }));
    const second = await h.waitFor('restarted', async () => {
      const s = await h.status('a');
      return s?.pid !== first && s?.phase === 'Running' && s.pid;
    });
    await h.waitFor('second log line', async () => (await runCli(['logs', 'a'], { env: h.env })).stdout.includes(`pid ${second} up`));
    expect((await runCli(['logs', 'a'], { env: h.env })).stdout).toBe(`tiny-server a pid ${second} up\n`);
    expect((await runCli(['logs', 'a', '--previous'], { env: h.env })).stdout).toBe(`tiny-server a pid ${first} up\n`);
    expect((await runCli(['logs', 'a', '--tail', '0'], { env: h.env })).stdout).toBe('');
    const missing = await runCli(['logs', 'nope'], { env: h.env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('error: no logs for mcpserver/nope\n');
  });

  it('every file in the state directory is owner-only, every folder 0700, and no secret value is in any of them', async () => {
    const h = await harness();
    const value = 'state-dir-canary-3141';
    await h.write('s.yaml', secretYaml('github', { token: value }));
    await h.write('a.yaml', tinyServer('a', h, { env: '    - name: T\n      valueFrom:\n        secretKeyRef: { name: github, key: token }\n' }));
    await h.start();
    await h.waitFor('running', async () => (await h.status('a'))?.phase === 'Running');
    await h.controller!.stop();
    const entries = await readdir(h.stateDir, { withFileTypes: true, recursive: true });
    expect(entries.length).toBeGreaterThan(4);
    for (const e of entries) {
      const path = join(e.parentPath, e.name);
      const mode = (await stat(path)).mode & 0o777;
      if (e.isDirectory()) expect(mode, path).toBe(0o700);
      else {
        expect(mode, path).toBe(0o600);
        expect((await readFile(path, 'latin1')).includes(value), path).toBe(false);
      }
    }
  });
});
