/**
 * What probing as an attacker and as a careless user found (issue 9), each
 * kept fixed by a test that failed before its fix.
 */
import { spawn } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { harness, isAlive, tinyServer } from './helpers/controller.js';
import { BIN, runCli } from './helpers/cli.js';
import { Controller } from '../src/controller/controller.js';
import { silentLogger } from '../src/util/logger.js';
import { KeyStore } from '../src/crypto/keys.js';
import { isControllerLockHeld } from '../src/state/controller-lock.js';
import { StateLayout } from '../src/state/layout.js';
import { resolveLocations } from '../src/state/paths.js';

/** Every file below `dir`, recursively. */
async function filesBelow(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe('a name never becomes a path unless it is valid', () => {
  it('a Secret named ../../../victim/x gets no file: the file outside the state directory stays, also when the manifest goes', async () => {
    const h = await harness();
    const victimDir = join(dirname(h.stateDir), 'victim');
    const victim = join(victimDir, 'claude_desktop_config.json');
    await mkdir(victimDir, { recursive: true });
    await writeFile(victim, '{"mcpServers":{}}\n');
    const hostile = `apiVersion: apiary.dev/v1alpha1
kind: Secret
metadata:
  name: ../../../victim/claude_desktop_config
stringData:
  token: x
`;
    await h.write('evil.yaml', hostile);
    await h.write('a.yaml', tinyServer('a', h));
    await h.start();
    await h.waitFor('a running', async () => (await h.status('a'))?.phase === 'Running');
    // A resync passes over every key the controller knows: the hostile one is not among them.
    await h.controller!.resync();
    expect(await readFile(victim, 'utf8')).toBe('{"mcpServers":{}}\n');
    const written = await filesBelow(h.stateDir);
    expect(written.filter((f) => f.includes('victim') || f.includes('claude'))).toEqual([]);
    expect(h.logs.some((r) => r.msg === 'invalid manifest' && String(r['error']).includes('evil.yaml:4'))).toBe(true);

    await rm(join(h.dir, 'evil.yaml'));
    await h.controller!.resync();
    await h.waitFor('a still running', async () => (await h.status('a'))?.phase === 'Running');
    expect(await readFile(victim, 'utf8')).toBe('{"mcpServers":{}}\n');
  });

  it('logs and restart refuse a name that is not a DNS-1123 label, reading and writing nothing', async () => {
    const h = await harness();
    const outside = join(dirname(h.stateDir), 'x.log');
    await writeFile(outside, 'not yours\n');
    const logs = await runCli(['logs', '../../x'], { env: h.env });
    expect(logs.code).toBe(2);
    expect(logs.stdout).toBe('');
    expect(logs.stderr).toContain('"../../x" is not a valid resource name');
    const restart = await runCli(['restart', '../../x'], { env: h.env });
    expect(restart.code).not.toBe(0);
    expect(await filesBelow(h.stateDir)).toEqual([]);
  });
});

describe('a secret value that cannot be passed to a process', () => {
  it('is refused before spawning: Stuck with SecretValueInvalid naming secret and key, the value in no log, status or file', async () => {
    const h = await harness();
    const canary = 'CANARY-7f3e9a';
    await h.write('s.yaml', `apiVersion: apiary.dev/v1alpha1
kind: Secret
metadata:
  name: github
stringData:
  token: "${canary}\\0tail"
`);
    await h.write('a.yaml', tinyServer('a', h, { env: `    - name: GITHUB_TOKEN
      valueFrom:
        secretKeyRef: { name: github, key: token }
` }));
    await h.start();
    const status = await h.waitFor('a stuck', async () => {
      const s = await h.status('a');
      return s?.phase === 'Stuck' && s;
    });
    const stalled = findCondition(status.conditions, 'Stalled');
    expect(stalled).toMatchObject({ status: 'True', reason: 'SecretValueInvalid' });
    expect(stalled?.message).toBe('secret "github" key "token" holds a NUL byte, which an environment variable cannot carry (needed for env GITHUB_TOKEN)');
    await h.controller!.resync();
    expect(JSON.stringify(h.logs)).not.toContain(canary);
    for (const file of await filesBelow(h.stateDir)) expect(await readFile(file, 'utf8'), file).not.toContain(canary);
    expect(h.logs.filter((r) => r.level === 'error')).toEqual([]);

    // Mended, it starts on its own (the missing-secret rules apply to it as to a missing key).
    await h.write('s.yaml', `apiVersion: apiary.dev/v1alpha1
kind: Secret
metadata:
  name: github
stringData:
  token: "${canary}"
`);
    await h.waitFor('a running', async () => (await h.status('a'))?.phase === 'Running');
  });

  it('a NUL byte in a literal value, an argument or the command is a manifest error at its line', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h, { env: '    - name: X\n      value: "a\\0b"\n' }));
    const result = await runCli(['validate', h.dir], { env: h.env });
    expect(result.code).toBe(1);
    expect(result.stdout + result.stderr).toMatch(/a\.yaml:\d+:\d+: spec\.env\[3\]\.value: must not contain a NUL byte/);
  });
});

describe('one controller per state directory, by a kernel lock', () => {
  it('a corrupt controller.json does not let a second controller in; the first repairs it at its next periodic resync', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    const first = await h.start({}, { resyncMs: 300 });
    const pid = await h.waitFor('a running', async () => (await h.status('a'))?.phase === 'Running' && (await h.status('a'))?.pid);
    await writeFile(join(h.stateDir, 'controller.json'), '{"pid": 12');
    const second = new Controller({ dir: h.dir, stateDir: h.stateDir, keys: new KeyStore({ env: { APIARY_KEY_FILE: h.keyFile } }), logger: silentLogger });
    await expect(second.start()).rejects.toMatchObject({ code: 'ControllerRunning', message: expect.stringContaining('controller.json is unreadable') });
    expect(isAlive(pid)).toBe(true);
    expect((await h.status('a'))?.pid).toBe(pid);
    // The manager's own resync timer, not a resync called by hand (which once repaired it while the timer did not).
    const repaired = await h.waitFor('controller.json repaired', async () => {
      const text = await readFile(join(h.stateDir, 'controller.json'), 'utf8');
      try {
        return JSON.parse(text) as { pid: number; runId: string };
      } catch {
        return undefined;
      }
    });
    expect(repaired).toMatchObject({ pid: process.pid, runId: first.info!.runId });
  });

  it('of two controllers started at once on one state directory exactly one runs; the lock dies with a kill -9', async () => {
    const h = await harness();
    const make = (): Controller => new Controller({ dir: h.dir, stateDir: h.stateDir, keys: new KeyStore({ env: { APIARY_KEY_FILE: h.keyFile } }), logger: silentLogger });
    const pair = [make(), make()];
    const results = await Promise.allSettled(pair.map((c) => c.start()));
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    await Promise.all(pair.map((c, i) => (results[i]!.status === 'fulfilled' ? c.stop() : undefined)));

    // A controller in another process, killed with -9: the next one takes over at once.
    const up = spawn(BIN, ['up', '--dir', h.dir, '--state-dir', h.stateDir], { env: { ...process.env, ...h.env }, stdio: 'ignore' });
    await h.waitFor('the child controller holds the lock', () => isControllerLockHeld(new StateLayout(h.stateDir)));
    const exited = new Promise((resolve) => up.once('exit', resolve));
    up.kill('SIGKILL');
    await exited;
    expect(await isControllerLockHeld(new StateLayout(h.stateDir))).toBe(false);
    await h.start();
  });
});

describe('the manifest directory is known by its real path', () => {
  it('the same directory through a symlink has the same state directory, so a second up is refused', async () => {
    const h = await harness();
    const link = join(dirname(h.dir), 'link-to-manifests');
    await symlink(h.dir, link);
    const env = { ...process.env, XDG_STATE_HOME: join(dirname(h.dir), 'xdg-state'), HOME: dirname(h.dir) };
    expect(resolveLocations({ dir: link }, env).stateDir).toBe(resolveLocations({ dir: h.dir }, env).stateDir);
    expect(resolveLocations({ dir: link }, env).dir).toBe(await realpath(h.dir));
  });
});

describe('a symlinked manifest is edited through its link', () => {
  it('seal and secret set write the target and keep the link; no plain text is left anywhere', async () => {
    const h = await harness();
    const elsewhere = join(dirname(h.dir), 'elsewhere');
    await mkdir(elsewhere);
    const target = join(elsewhere, 'github.yaml');
    await writeFile(target, 'apiVersion: apiary.dev/v1alpha1\nkind: Secret\nmetadata:\n  name: github\nstringData:\n  token: PLAIN-CANARY-1\n');
    const link = join(h.dir, 'github.yaml');
    await symlink(target, link);

    const seal = await runCli(['seal', link], { env: h.env });
    expect(seal.code, seal.stderr).toBe(0);
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    const sealed = await readFile(target, 'utf8');
    expect(sealed).not.toContain('PLAIN-CANARY-1');
    expect(sealed).toMatch(/encryptedData:\n {2}token: "?apiary:v1:/);

    const set = await runCli(['secret', 'set', 'github', 'other'], { env: h.env, input: 'PLAIN-CANARY-2' });
    expect(set.code, set.stderr).toBe(0);
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    const after = await readFile(target, 'utf8');
    expect(after).toMatch(/ {2}other: "?apiary:v1:/);
    expect(after).not.toContain('PLAIN-CANARY');
    expect(await readdir(h.dir)).toEqual(['github.yaml']);
  });
});

describe('damaged state files are named and rebuilt, never kept as broken', () => {
  it('a corrupt ports.json is named in the log, rebuilt from status, and the servers keep their URLs', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    const first = await h.start();
    const url = await h.waitFor('a has a url', async () => (await h.status('a'))?.url);
    await first.stop();
    await writeFile(join(h.stateDir, 'ports.json'), '{"a": 4');
    await h.start();
    await h.waitFor('a running at the same url', async () => {
      const s = await h.status('a');
      return s?.phase === 'Running' && s.url === url;
    });
    expect(h.logs.find((r) => r.msg.startsWith('ports file damaged'))).toMatchObject({ file: join(h.stateDir, 'ports.json') });
    await h.controller!.resync();
    // The aggregate endpoint's port is in no status: after a damaged file it gets a new one.
    expect(JSON.parse(await readFile(join(h.stateDir, 'ports.json'), 'utf8'))).toEqual({ a: Number(new URL(url).port), _aggregate: expect.any(Number) });

    // Damaged while the controller runs: rewritten at its next resync.
    await writeFile(join(h.stateDir, 'ports.json'), '{"a"');
    await h.controller!.resync();
    await h.controller!.idle();
    await h.waitFor('ports.json whole again', async () => (await readFile(join(h.stateDir, 'ports.json'), 'utf8').catch(() => '')).includes(`"a": ${new URL(url).port}`));
  });

  it('a truncated status file is named by get, not shown as Unknown, and the controller rewrites it', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    const first = await h.start();
    await h.waitFor('a running', async () => (await h.status('a'))?.phase === 'Running');
    const file = join(h.stateDir, 'status', 'mcpserver', 'a.json');
    const truncate = async (): Promise<void> => writeFile(file, (await readFile(file, 'utf8')).slice(0, 40));

    // While it runs, the next pass notices the file is not what it wrote.
    await truncate();
    await first.resync();
    await h.waitFor('status rewritten', async () => (await h.status('a'))?.phase === 'Running');

    await first.stop();
    await truncate();
    const get = await runCli(['get', 'mcp'], { env: h.env });
    expect(get.stderr).toContain(`warning: status of mcpserver/a is unreadable (${file}: `);
    await h.start();
    await h.waitFor('running again, status rewritten', async () => (await h.status('a'))?.phase === 'Running');
    expect(h.logs.find((r) => r.msg.startsWith('status file unreadable'))).toMatchObject({ file });
  });
});

describe('input is bounded and every verb stops on a signal', () => {
  const bigSecret = (bytes: number): string => {
    const lines = ['apiVersion: apiary.dev/v1alpha1', 'kind: Secret', 'metadata:', '  name: big', 'stringData:'];
    for (let i = 0, size = 0; size < bytes; i++) {
      const line = `  k${i}: "${'x'.repeat(60)}"`;
      lines.push(line);
      size += line.length + 1;
    }
    return `${lines.join('\n')}\n`;
  };

  it('apply and diff refuse a file or a stream over 1 MiB at once, writing nothing', async () => {
    const h = await harness();
    const big = join(dirname(h.dir), 'big.yaml');
    await writeFile(big, bigSecret(5_000_000));
    for (const verb of ['apply', 'diff']) {
      const fromFile = await runCli([verb, '-f', big], { env: h.env });
      expect(fromFile.code, verb).toBe(verb === 'diff' ? 2 : 1);
      expect(fromFile.stderr).toContain(`${big}:1:1: file is 4.8 MiB; manifests over 1 MiB are not read`);
      const fromStdin = await runCli([verb, '-f', '-'], { env: h.env, input: bigSecret(5_000_000) });
      expect(fromStdin.code, verb).toBe(verb === 'diff' ? 2 : 1);
      expect(fromStdin.stderr).toContain('<stdin>:1:1: input is over 1 MiB; manifests over 1 MiB are not read');
    }
    expect(await readdir(h.dir)).toEqual([]);
    const set = await runCli(['secret', 'set', 'big', 'k'], { env: h.env, input: 'x'.repeat(2 * 1024 * 1024) });
    expect(set.code).toBe(2);
    expect(set.stderr).toContain('error: the value for big/k is over 1 MiB');
  });

  it('loading the CLI installs no signal handler, so a verb busy parsing dies at once on SIGTERM', async () => {
    const { buildProgram } = await import('../src/cli/main.js');
    expect(typeof buildProgram).toBe('function');
    expect(process.listenerCount('SIGTERM')).toBe(0);
    expect(process.listenerCount('SIGINT')).toBe(0);
  });
});

describe('a manifest file that cannot be read', () => {
  // Root reads any mode, so the unreadable file is a link to one that fails every read (EIO).
  const makeUnreadable = async (path: string): Promise<void> => {
    const temp = `${path}.link`;
    await symlink('/proc/self/mem', temp);
    await rename(temp, path);
  };

  it('is reported by itself: validate and get name it and go on with the rest; the controller keeps what it last read', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    await h.write('b.yaml', tinyServer('b', h));
    await h.start();
    const pid = await h.waitFor('a and b running', async () => (await h.status('b'))?.phase === 'Running' && (await h.status('a'))?.phase === 'Running' && (await h.status('a'))?.pid);

    await makeUnreadable(join(h.dir, 'a.yaml'));
    await h.controller!.resync();
    await h.waitFor('the controller reports it', async () => h.logs.some((r) => r.msg === 'manifest file unreadable'));
    expect((await h.status('a'))?.pid).toBe(pid);
    expect(isAlive(pid)).toBe(true);

    const validate = await runCli(['validate', h.dir], { env: h.env });
    expect(validate.code).toBe(1);
    expect(validate.stdout + validate.stderr).toMatch(/a\.yaml:1:1: cannot read: /);
    const get = await runCli(['get', 'mcp'], { env: h.env });
    expect(get.code).toBe(0);
    expect(get.stdout).toMatch(/\nb {6}Running/);
  });
});
