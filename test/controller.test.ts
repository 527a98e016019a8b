import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { MasterKey, seal } from '../src/crypto/seal.js';
import { runCli } from './helpers/cli.js';
import { harness, isAlive, secretYaml, tinyServer, type Harness } from './helpers/controller.js';
import { waitFor } from './helpers/wait.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const TOKEN_ENV = `    - name: GITHUB_TOKEN
      valueFrom:
        secretKeyRef: { name: github, key: token }
`;

describe('controller: lifecycle', () => {
  it('starts a server, restarts it on edit, stops it on delete', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    await h.start();
    const first = await h.waitFor('a running', async () => (await h.status('a'))?.phase === 'Running' && (await h.status('a'))!.pid);
    expect(isAlive(first)).toBe(true);

    await h.write('a.yaml', tinyServer('a', h, { args: ['--changed'] }));
    const second = await h.waitFor('a restarted', async () => {
      const s = await h.status('a');
      return s?.phase === 'Running' && s.pid !== first && s.observedGeneration === 2 && s.pid;
    });
    // A rolling update (the default for stdio servers): the new process started beside the old one,
    // took over once it answered the handshake, and the old one, with nothing left to answer, stopped.
    await h.waitFor('the old process gone', async () => !isAlive(first));
    expect((await h.report('a', second)).cwd).toBe(h.dir);
    const events = (await h.server('a'))?.events ?? [];
    expect(events.map((e) => e.reason)).toEqual(['Started', 'RollingUpdate', 'RolledOut']);
    expect(events[1]?.message).toBe(`started pid ${second} (generation 2) beside pid ${first}: args changed`);
    expect(events[2]?.message).toMatch(new RegExp(`^pid ${second} \\(generation 2\\) took over from pid ${first}, \\d+ ms after it started$`));
    expect((await h.status('a'))?.restartCount).toBe(0);

    await rm(join(h.dir, 'a.yaml'));
    await h.waitFor('a removed', async () => (await h.server('a')) === undefined);
    expect(isAlive(second)).toBe(false);
  });

  it('strategy Recreate: the old process stops before the new one starts', async () => {
    const h = await harness();
    const recreate = '  strategy:\n    type: Recreate\n';
    await h.write('a.yaml', tinyServer('a', h, { extra: recreate }));
    await h.start();
    const first = await h.waitFor('a running', async () => (await h.status('a'))?.phase === 'Running' && (await h.status('a'))!.pid);
    await h.write('a.yaml', tinyServer('a', h, { args: ['--changed'], extra: recreate }));
    const second = await h.waitFor('a restarted', async () => {
      const s = await h.status('a');
      return s?.phase === 'Running' && s.pid !== first && s.observedGeneration === 2 && s.pid;
    });
    expect(isAlive(first)).toBe(false);
    expect((await h.server('a'))?.events.map((e) => e.reason)).toEqual(['Started', 'Stopping', 'Started']);
    expect((await h.server('a'))?.events[1]?.message).toBe(`stopping pid ${first}: args changed`);
    expect(isAlive(second)).toBe(true);
  });

  it('suspend: true stops the server and keeps it listed; false starts it again', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    await h.start();
    const pid = await h.waitFor('running', async () => (await h.status('a'))?.pid);
    await h.write('a.yaml', tinyServer('a', h, { extra: '  suspend: true\n' }));
    await h.waitFor('suspended', async () => (await h.status('a'))?.phase === 'Suspended');
    expect(isAlive(pid)).toBe(false);
    await h.write('a.yaml', tinyServer('a', h, { extra: '  suspend: false\n' }));
    await h.waitFor('running again', async () => (await h.status('a'))?.phase === 'Running');
  });

  it('a crashing server backs off (CrashLoopBackOff) and recovers', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h, { args: ['--crash-times', '2', '3'] }));
    await h.start();
    const crashing = await h.waitFor('back-off', async () => {
      const s = await h.status('a');
      return s?.phase === 'CrashLoopBackOff' && s;
    });
    expect(crashing.lastTermination).toMatchObject({ exitCode: 3, reason: 'Error' });
    // With the last line it wrote (the kubelet's FallbackToLogsOnError).
    expect(crashing.message).toMatch(/^back-off 1s restarting failed server \(exit code 3: tiny-server a: crashing on purpose \(start 1\)\)/);
    const recovered = await h.waitFor('recovered', async () => {
      const s = await h.status('a');
      return s?.phase === 'Running' && s.restartCount === 2 && s;
    }, 15_000);
    // Serving (its handshake answered), then a full pass: a third crash or a restart would show by now.
    await h.waitFor('ready after recovering', async () => findCondition((await h.status('a'))?.conditions, 'Ready')?.status === 'True');
    await h.settled();
    expect((await h.status('a'))?.phase).toBe('Running');
    expect(recovered.restartCount).toBe(2);
    expect(await h.starts('a')).toHaveLength(3);
  }, 30_000);

  it('restartPolicy Never leaves a failed server Failed; OnFailure leaves a clean exit Completed', async () => {
    const h = await harness();
    await h.write('never.yaml', tinyServer('never', h, { args: ['--exit-after', '50', '4'], restartPolicy: 'Never' }));
    await h.write('onfail.yaml', tinyServer('onfail', h, { args: ['--exit-after', '50', '0'], restartPolicy: 'OnFailure' }));
    await h.start();
    const failed = await h.waitFor('failed', async () => ((await h.status('never'))?.phase === 'Failed' ? h.status('never') : undefined));
    expect(failed?.message).toMatch(/^failed \(exit code 4: tiny-server never pid \d+ up\); restartPolicy Never does not restart it$/);
    await h.waitFor('completed', async () => (await h.status('onfail'))?.phase === 'Completed');
    // A full pass decides again from the world: a restart would be started (or scheduled, and the phase say so).
    await h.settled();
    expect((await h.status('never'))?.phase).toBe('Failed');
    expect((await h.status('onfail'))?.phase).toBe('Completed');
    expect(await h.starts('never')).toHaveLength(1);
    expect(await h.starts('onfail')).toHaveLength(1);
  });

  it('a command that is not on PATH backs off with a clear message', async () => {
    const h = await harness();
    await h.write('x.yaml', 'apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata: { name: x }\nspec:\n  command: no-such-command-apiary\n');
    await h.start();
    const s = await h.waitFor('back-off', async () => ((await h.status('x'))?.phase === 'CrashLoopBackOff' ? h.status('x') : undefined));
    expect(s?.message).toMatch(/restarting failed server \(command "no-such-command-apiary" not found on PATH\)/);
  });

  it('builds the environment from the allowlist and the declared variables only', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h, { env: '    - name: HOME\n      value: /declared/home\n' }));
    await h.start({ SOME_CONTROLLER_TOKEN: 'x', APIARY_INTERNAL: 'y', HTTPS_PROXY: 'http://proxy:3128', no_proxy: 'localhost', LC_ALL: 'C.UTF-8' });
    const pid = await h.waitFor('running', async () => (await h.status('a'))?.pid);
    const report = await h.report('a', pid);
    expect(report.envNames).not.toContain('SOME_CONTROLLER_TOKEN');
    expect(report.envNames).not.toContain('APIARY_INTERNAL');
    expect(report.envNames).not.toContain('APIARY_KEY_FILE');
    expect(report.envNames).toEqual(expect.arrayContaining(['PATH', 'HTTPS_PROXY', 'no_proxy', 'LC_ALL', 'REPORT_DIR', 'SERVER_NAME']));
    const allowed = /^(PATH|HOME|USER|LOGNAME|SHELL|TERM|LANG|TZ|TMPDIR|LC_.*|(HTTP|HTTPS|NO)_PROXY|(http|https|no)_proxy|NODE_EXTRA_CA_CERTS|SSL_CERT_FILE|SSL_CERT_DIR|REPORT_DIR|SERVER_NAME|REPORT_HASH)$/;
    // Node itself may add a few of its own (e.g. NODE_CHANNEL_FD is not used here): everything else must be allowed.
    expect(report.envNames.filter((n) => !allowed.test(n))).toEqual([]);
    // A declared variable wins over an inherited one.
    await h.write('b.yaml', tinyServer('b', h, { env: '    - name: HOME\n      value: /declared/home\n', hash: ['HOME'] }));
    const pidB = await h.waitFor('b running', async () => (await h.status('b'))?.pid);
    expect((await h.report('b', pidB)).hashes['HOME']).toBe(sha('/declared/home'));
  });
});

describe('controller: cold start', () => {
  it('starts many servers at once and leaves none of them held once the first pass is done', async () => {
    const h = await harness();
    const names = Array.from({ length: 12 }, (_, i) => `s${i}`);
    for (const name of names) await h.write(`${name}.yaml`, tinyServer(name, h));
    await h.start();
    await h.controller!.idle();
    const pids = await Promise.all(names.map((name) => h.waitFor(`${name} running`, async () => (await h.status(name))?.pid)));
    // Released by the end of the first pass; a process still held never answers its handshake either.
    const stateOf = (pid: number): string | undefined => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[0];
    await waitFor('no process left held (state T)', () => pids.every((pid) => stateOf(pid) !== 'T'), 10_000, { observe: () => pids.map(stateOf) });
    await Promise.all(names.map((name) => h.waitFor(`${name} ready`, async () => findCondition((await h.status(name))?.conditions, 'Ready')?.status === 'True')));
  });
});

describe('controller: the missing-secret rules', () => {
  it('restart while a needed secret is missing: the server is not stopped, the CLI says so, and it restarts once the secret is back', async () => {
    const h = await harness();
    await h.write('secret.yaml', secretYaml('github', { token: 'tok-1' }));
    await h.write('a.yaml', tinyServer('a', h, { env: TOKEN_ENV }));
    await h.start();
    const pid = await h.waitFor('ready', async () => {
      const s = await h.status('a');
      return findCondition(s?.conditions, 'Ready')?.status === 'True' && s?.pid;
    });
    await rm(join(h.dir, 'secret.yaml'));
    await h.waitFor('SecretsResolved=False', async () => findCondition((await h.status('a'))?.conditions, 'SecretsResolved')?.status === 'False');
    const restart = await runCli(['restart', 'a'], { env: h.env });
    expect(restart.code).toBe(0);
    expect(restart.stderr).toBe('warning: mcpserver/a is not stopped while a secret it needs is missing (secret "github" not found (needed for env GITHUB_TOKEN)); the restart happens once it is back\n');
    // The controller has read the request and reconciled a after it: had it stopped the server, it would have by now.
    await h.waitFor('the restart request read', async () => h.logs.some((r) => r.msg === 'rollout restart requested' && r['server'] === 'a'));
    await h.settled();
    expect((await h.status('a'))?.pid).toBe(pid);
    expect(isAlive(pid)).toBe(true);
    await h.write('secret.yaml', secretYaml('github', { token: 'tok-1' }));
    const next = await h.waitFor('restarted once the secret is back', async () => {
      const s = await h.status('a');
      return s?.phase === 'Running' && s.pid !== undefined && s.pid !== pid && s.pid;
    });
    // A rolling update: the old process is stopped once the new one has taken over, a moment after status names the new one.
    await h.waitFor('the old process gone', async () => !isAlive(pid));
    expect(next).not.toBe(pid);
  });

  it('rule 2: deleting a secret leaves the running server Running; rule 1: once it stops it is Stuck; rule 3: it starts within a second of the secret returning', async () => {
    const h = await harness();
    await h.write('secret.yaml', secretYaml('github', { token: 'tok-1' }));
    await h.write('a.yaml', tinyServer('a', h, { env: TOKEN_ENV, hash: ['GITHUB_TOKEN'] }));
    await h.start();
    const pid = await h.waitFor('running', async () => (await h.status('a'))?.pid);
    expect((await h.report('a', pid)).hashes['GITHUB_TOKEN']).toBe(sha('tok-1'));
    // Ready (handshake done) before the secret goes, so what follows is about the secret alone.
    await h.waitFor('ready', async () => findCondition((await h.status('a'))?.conditions, 'Ready')?.status === 'True');

    await rm(join(h.dir, 'secret.yaml'));
    const afterDelete = await h.waitFor('SecretsResolved=False', async () => {
      const s = await h.status('a');
      return findCondition(s?.conditions, 'SecretsResolved')?.status === 'False' && s;
    });
    expect(afterDelete.phase).toBe('Running');
    expect(afterDelete.pid).toBe(pid);
    expect(isAlive(pid)).toBe(true);
    expect(findCondition(afterDelete.conditions, 'Ready')?.status).toBe('True');
    expect(findCondition(afterDelete.conditions, 'Stalled')?.status).toBe('False');
    expect(findCondition(afterDelete.conditions, 'SecretsResolved')).toMatchObject({
      reason: 'SecretNotFound',
      message: 'secret "github" not found (needed for env GITHUB_TOKEN); the running server keeps running but cannot restart until it is back',
    });

    process.kill(pid, 'SIGKILL');
    const stuck = await h.waitFor('Stuck', async () => {
      const s = await h.status('a');
      return s?.phase === 'Stuck' && s;
    });
    for (const type of ['Ready', 'SecretsResolved', 'Stalled']) {
      expect(findCondition(stuck.conditions, type), type).toMatchObject({
        status: type === 'Stalled' ? 'True' : 'False',
        reason: 'SecretNotFound',
      });
    }
    expect(stuck.message).toBe('secret "github" not found (needed for env GITHUB_TOKEN)');
    await h.settled();
    expect((await h.status('a'))?.phase).toBe('Stuck');
    expect(await h.starts('a')).toHaveLength(1); // never started with a partial environment

    const restoredAt = Date.now();
    await h.write('secret.yaml', secretYaml('github', { token: 'tok-1' }));
    const newPid = await h.waitFor('running again', async () => {
      const s = await h.status('a');
      return s?.phase === 'Running' && s.pid;
    });
    expect(Date.now() - restoredAt).toBeLessThan(1000);
    expect((await h.report('a', newPid)).hashes['GITHUB_TOKEN']).toBe(sha('tok-1'));
  }, 30_000);

  it('a missing key is SecretKeyNotFound; optional references are skipped', async () => {
    const h = await harness();
    await h.write('secret.yaml', secretYaml('github', { other: 'x' }));
    await h.write('a.yaml', tinyServer('a', h, { env: TOKEN_ENV }));
    await h.write(
      'b.yaml',
      tinyServer('b', h, {
        hash: ['MAYBE'],
        env: '    - name: MAYBE\n      valueFrom:\n        secretKeyRef: { name: nope, key: k, optional: true }\n',
        extra: '  envFrom:\n    - secretRef: { name: also-nope, optional: true }\n',
      }),
    );
    await h.start();
    const a = await h.waitFor('a stuck', async () => ((await h.status('a'))?.phase === 'Stuck' ? h.status('a') : undefined));
    expect(findCondition(a?.conditions, 'Stalled')).toMatchObject({ reason: 'SecretKeyNotFound', message: 'secret "github" has no key "token" (needed for env GITHUB_TOKEN)' });
    const pidB = await h.waitFor('b running', async () => (await h.status('b'))?.pid);
    expect((await h.report('b', pidB)).hashes['MAYBE']).toBeNull();
  });

  it('a value this machine cannot decrypt is SecretDecryptFailed, naming both key ids', async () => {
    const h = await harness();
    const other = MasterKey.generate().key;
    await h.write('secret.yaml', `apiVersion: apiary.dev/v1alpha1\nkind: Secret\nmetadata: { name: github }\nencryptedData:\n  token: ${seal(other, 'github', 'token', 'v')}\n`);
    await h.write('a.yaml', tinyServer('a', h, { env: TOKEN_ENV }));
    await h.start();
    const s = await h.waitFor('stuck', async () => ((await h.status('a'))?.phase === 'Stuck' ? h.status('a') : undefined));
    expect(findCondition(s?.conditions, 'SecretsResolved')?.reason).toBe('SecretDecryptFailed');
    expect(s?.message).toMatch(new RegExp(`secret "github" key "token" was sealed for key ${other.id}, but this machine's key is [0-9a-f]{8} \\(needed for env GITHUB_TOKEN\\)`));
    expect(await h.starts('a')).toHaveLength(0);
  });

  it('a changed secret value restarts the server with the new value', async () => {
    const h = await harness();
    await h.write('secret.yaml', secretYaml('github', { token: 'old' }));
    await h.write('a.yaml', tinyServer('a', h, { env: TOKEN_ENV, hash: ['GITHUB_TOKEN'] }));
    await h.start();
    const pid = await h.waitFor('running', async () => (await h.status('a'))?.pid);
    await h.write('secret.yaml', secretYaml('github', { token: 'new' }));
    const next = await h.waitFor('restarted', async () => {
      const s = await h.status('a');
      return s?.phase === 'Running' && s.pid !== pid && s.pid;
    });
    expect((await h.report('a', next)).hashes['GITHUB_TOKEN']).toBe(sha('new'));
    expect((await h.status('a'))?.restartCount).toBe(0); // a rollout is not a restart
    // The event says which variable's secret changed, never the value.
    expect((await h.server('a'))?.events.find((e) => e.reason === 'RollingUpdate')?.message).toBe(`started pid ${next} (generation 1) beside pid ${pid}: env GITHUB_TOKEN changed`);
  });

  it('an update that needs a missing secret keeps the old process, saying why', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    await h.start();
    const pid = await h.waitFor('running', async () => (await h.status('a'))?.pid);
    await h.write('a.yaml', tinyServer('a', h, { env: TOKEN_ENV }));
    const s = await h.waitFor('blocked', async () => {
      const st = await h.status('a');
      return findCondition(st?.conditions, 'Stalled')?.status === 'True' && st;
    });
    expect(s.pid).toBe(pid);
    expect(s.phase).toBe('Running');
    expect(isAlive(pid)).toBe(true);
    expect(s.message).toBe('update blocked: secret "github" not found (needed for env GITHUB_TOKEN)');
    expect(findCondition(s.conditions, 'Stalled')?.message).toBe(
      'update to generation 2 blocked: secret "github" not found (needed for env GITHUB_TOKEN); generation 1 keeps running',
    );
    await h.write('secret.yaml', secretYaml('github', { token: 'now' }));
    await h.waitFor('rolled', async () => {
      const st = await h.status('a');
      return st?.phase === 'Running' && st.pid !== pid && st.observedGeneration === 2;
    });
  });
});

describe('controller: invalid manifests', () => {
  /** A billion laughs: nine levels of nine aliases, far past the alias limit once expanded. */
  const aliasBomb = (name: string): string =>
    `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: ${name}\nspec:\n  command: node\n  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n` +
    Array.from({ length: 9 }, (_, i) => `  a${i + 1}: &a${i + 1} [${Array(9).fill(`*a${i}`).join(', ')}]\n`).join('');
  const invalid = (h: Harness, file: string): string[] =>
    h.logs.filter((r) => r.msg === 'invalid manifest' && String(r['error']).includes(file)).map((r) => String(r['error']));

  it('logs an alias bomb with the reason validate gives, at start and when written, without taking it for a half-written file', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    await h.write('bomb.yaml', aliasBomb('bomb'));
    await h.write('broken.yaml', 'apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata: { name: broken\n');
    const validated = await runCli(['validate'], { env: h.env });
    const reason = (file: string): string => {
      const line = validated.stdout.split('\n').find((l) => l.includes(`${file}:`));
      expect(line, validated.stdout + validated.stderr).toBeDefined();
      return line!.slice(line!.indexOf(`${file}:`));
    };
    expect(reason('bomb.yaml')).toMatch(/^bomb\.yaml:\d+:\d+: YAML error: Excessive alias count/);
    await h.start();
    // Present at start: each reported once, in validate's words (the resync is a minute away).
    await h.waitFor('bomb.yaml logged', async () => invalid(h, 'bomb.yaml').length > 0);
    await h.waitFor('broken.yaml logged', async () => invalid(h, 'broken.yaml').length > 0);
    expect(invalid(h, 'bomb.yaml').map((e) => e.slice(e.indexOf('bomb.yaml:')))).toEqual([reason('bomb.yaml')]);
    expect(invalid(h, 'broken.yaml')[0]!.endsWith(reason('broken.yaml'))).toBe(true);
    // Written while running: the same, at once, and it is no torn write.
    await h.write('bomb2.yaml', aliasBomb('bomb2'));
    await h.waitFor('bomb2.yaml logged', async () => invalid(h, 'bomb2.yaml').length > 0);
    expect(invalid(h, 'bomb2.yaml').map((e) => e.slice(e.indexOf('bomb2.yaml:')))).toEqual([reason('bomb.yaml').replace('bomb.yaml', 'bomb2.yaml')]);
    expect(h.logs.filter((r) => r.msg.startsWith('manifest file still') && String(r['file']).includes('bomb'))).toEqual([]);
    expect((await h.status('a'))?.phase).not.toBe('Invalid');
  });

  it('an invalid edit keeps the old process running its last valid spec, pointing at the file', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    await h.write('b.yaml', tinyServer('b', h));
    await h.start();
    const pid = await h.waitFor('running', async () => (await h.status('a'))?.pid);
    await h.write('a.yaml', tinyServer('a', h).replace('restartPolicy: Always', 'restartPolicy: Sometimes'));
    const s = await h.waitFor('stalled', async () => {
      const st = await h.status('a');
      return findCondition(st?.conditions, 'Stalled')?.reason === 'InvalidManifest' && st;
    });
    expect(s.phase).toBe('Running');
    expect(s.pid).toBe(pid);
    expect(findCondition(s.conditions, 'Stalled')?.message).toMatch(
      /a\.yaml:8:18: spec\.restartPolicy: must be one of Always, OnFailure, Never; got "Sometimes"; still running generation 1$/,
    );
    expect((await h.status('b'))?.phase).toBe('Running');
    // A never-valid manifest is Stuck with the reason, and costs nobody else anything.
    await h.write('c.yaml', 'apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata: { name: c }\nspec:\n  agrs: []\n');
    const c = await h.waitFor('c stuck', async () => ((await h.status('c'))?.phase === 'Stuck' ? h.status('c') : undefined));
    expect(c?.message).toContain('spec.agrs: unknown field; did you mean "args"?');
    await writeFile(join(h.dir, 'broken.yaml'), 'this: [is not yaml\n');
    await h.settled(); // the broken file read and every server reconciled after it
    expect((await h.status('b'))?.phase).toBe('Running');
  });
});

describe('the Kubernetes-only fields on a local server', () => {
  it('spec.image, spec.resources and spec.podSecurity change nothing locally: the command runs, and an edit of them restarts nothing', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h, { extra: '  image: node:24.11.1-bookworm-slim\n  resources: { limits: { memory: 64Mi } }\n' }));
    await h.start();
    const first = await h.waitFor('a Ready', async () => {
      const s = await h.status('a');
      return s?.phase === 'Running' && findCondition(s.conditions, 'Ready')?.status === 'True' && s;
    });
    await h.write('a.yaml', tinyServer('a', h, { extra: '  image: busybox:1.37\n  resources: { requests: { cpu: 100m }, limits: { memory: 1Gi } }\n  podSecurity: baseline\n' }));
    await h.waitFor('generation 2 observed', async () => (await h.status('a'))?.observedGeneration === 2);
    await h.settled();
    expect(await h.starts('a')).toHaveLength(1);
    expect((await h.status('a'))?.pid).toBe(first.pid);
  });
});
