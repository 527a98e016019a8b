import { readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { processesNaming } from '../chaos/git-hang.js';
import { describe, expect, it } from 'vitest';
import { runCli, spawnUp, type UpProcess } from './helpers/cli.js';
import { harness, isAlive, secretYaml, tinyServer, type Harness } from './helpers/controller.js';
import { tempDir } from './helpers/tmp.js';
import { needsGit } from './helpers/tools.js';
import { StateLayout } from '../src/state/layout.js';

function up(h: Harness): UpProcess {
  return spawnUp(['up'], h.env);
}

describe('apiary up (the built CLI)', () => {
  it('runs servers, answers get/describe/wait, and stops everything on SIGTERM with exit 0', async () => {
    const h = await harness();
    await h.write('secret.yaml', secretYaml('github', { token: 'cli-secret-value-xyz' }));
    await h.write('a.yaml', tinyServer('a', h, { env: '    - name: GITHUB_TOKEN\n      valueFrom:\n        secretKeyRef: { name: github, key: token }\n' }));
    const controller = up(h);
    const ready = await runCli(['wait', 'mcpserver/a', '--for=condition=Ready', '--timeout', '15s'], { env: h.env });
    expect(ready.code, controller.output()).toBe(0);
    expect(ready.stdout).toBe('mcpserver/a condition met: Ready=True\n');

    const json = await runCli(['get', 'all', '-o', 'json'], { env: h.env });
    expect(json.code).toBe(0);
    expect(json.stdout).not.toContain('cli-secret-value-xyz');
    const list = JSON.parse(json.stdout) as { kind: string; items: { kind: string; metadata: { name: string; generation: number }; status: { phase: string; pid?: number } }[] };
    expect(list.kind).toBe('List');
    expect(list.items.map((i) => [i.kind, i.metadata.name, i.status.phase])).toEqual([
      ['MCPServer', 'a', 'Running'],
      ['Secret', 'github', 'Ready'],
    ]);
    expect(list.items[0]!.metadata.generation).toBe(1);
    const pid = list.items[0]!.status.pid!;

    const table = await runCli(['get', 'mcp'], { env: h.env });
    expect(table.stdout).toMatch(/^NAME {3}PHASE {5}READY {3}RESTARTS {3}AGE {3}URL\na {6}Running {3}True {4}0 {10}\d+s {4}http:\/\/127\.0\.0\.1:\d+\/mcp\n$/);
    const single = JSON.parse((await runCli(['get', 'mcpserver', 'a', '-o', 'json'], { env: h.env })).stdout) as { kind: string };
    expect(single.kind).toBe('MCPServer');
    expect((await runCli(['get', 'secrets', 'nope'], { env: h.env })).code).toBe(1);
    expect((await runCli(['get', 'pods'], { env: h.env })).code).toBe(2);

    const described = await runCli(['describe', 'MCPServers', 'a'], { env: h.env });
    expect(described.stdout).toContain('GITHUB_TOKEN             <- secret github/token');
    expect(described.stdout).toMatch(/Normal {3}Started {3}\d+s +apiary {3}started pid \d+ \(generation 1\)/);

    controller.child.kill('SIGTERM');
    expect(await controller.exited).toBe(0);
    expect(isAlive(pid)).toBe(false);
    const after = await runCli(['get'], { env: h.env });
    expect(after.stderr).toMatch(/warning: no apiary controller is running for this state directory; status last written \d+s ago/);
    const stale = await runCli(['wait', 'mcpserver/a', '--for=condition=Ready=false', '--timeout', '500ms'], { env: h.env });
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('no apiary controller is running');
    const output = controller.output();
    expect(output).not.toContain('cli-secret-value-xyz');
    expect(output).toContain('"msg":"controller stopped"');
  }, 30_000);

  it('a second up for the same state directory is refused, naming the running one', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    const first = up(h);
    expect((await runCli(['wait', 'mcpserver/a', '--for=phase=Running', '--timeout', '15s'], { env: h.env })).code).toBe(0);
    const second = await runCli(['up'], { env: h.env });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`error: another apiary controller (pid ${first.child.pid}`);
    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);
  }, 30_000);

  it('a second up for the same manifest directory with another state directory is refused, naming the running one; another directory runs beside it', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    // Both ups are one user's: the lock lives under their state home (a temp one here).
    const env = { ...h.env, XDG_STATE_HOME: await tempDir() };
    const first = spawnUp(['up', '--no-ui'], env);
    expect((await runCli(['wait', 'mcpserver/a', '--for=phase=Running', '--timeout', '15s'], { env })).code, first.output()).toBe(0);
    const second = await runCli(['up', '--no-ui', '--state-dir', await tempDir()], { env });
    expect(second.code, second.stdout).toBe(1);
    expect(second.stderr).toContain(`error: another apiary controller (pid ${first.child.pid}, state directory ${h.stateDir}) is running the manifests of ${h.dir}`);
    expect(await h.starts('a')).toHaveLength(1);

    const other = await harness();
    await other.write('b.yaml', tinyServer('b', other));
    const beside = spawnUp(['up', '--no-ui'], { ...other.env, XDG_STATE_HOME: env.XDG_STATE_HOME });
    expect((await runCli(['wait', 'mcpserver/b', '--for=phase=Running', '--timeout', '15s'], { env: { ...other.env, XDG_STATE_HOME: env.XDG_STATE_HOME } })).code, beside.output()).toBe(0);
    first.child.kill('SIGTERM');
    beside.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(await beside.exited).toBe(0);
  }, 60_000);

  it('after kill -9 of the controller, the next up adopts an HTTP server and replaces a stdio one: never two copies', async () => {
    const h = await harness();
    // An HTTP server keeps running without apiary; a stdio one cannot be talked to again (its stdio went with the controller).
    await h.write('web.yaml', tinyServer('web', h, { args: ['--ignore-stdin'], extra: '  transport: streamable-http\n' }));
    await h.write('io.yaml', tinyServer('io', h, { args: ['--ignore-stdin'] }));
    const first = up(h);
    for (const name of ['web', 'io']) {
      expect((await runCli(['wait', `mcpserver/${name}`, '--for=phase=Running', '--timeout', '15s'], { env: h.env })).code).toBe(0);
    }
    const [web] = await h.starts('web');
    const [io] = await h.starts('io');
    first.child.kill('SIGKILL');
    await first.exited;
    expect(isAlive(web!)).toBe(true);
    expect(isAlive(io!)).toBe(true);

    const secondAt = Date.now();
    const second = up(h);
    await h.waitFor('io replaced', async () => (await h.starts('io')).length === 2 && !isAlive(io!) && (await h.status('io'))?.phase === 'Running');
    expect((await runCli(['wait', 'mcpserver/web', '--for=phase=Running', '--timeout', '15s'], { env: h.env })).code).toBe(0);
    // web reconciled by the second controller (a controller writes each status once at least, so its
    // record is newer than the second up): its fate is in its status by now; a replacement shows as a new pid.
    const webStatusFile = new StateLayout(h.stateDir).statusFile('MCPServer', 'web');
    await h.waitFor('web reconciled by the second controller', async () => {
      const text = await readFile(webStatusFile, 'utf8').catch(() => '{}'); // written atomically: whole or absent
      return Date.parse((JSON.parse(text) as { writtenAt?: string }).writtenAt ?? '') >= secondAt;
    });
    expect(await h.starts('web')).toEqual([web]);
    expect((await h.status('web'))?.pid).toBe(web);
    expect(await h.starts('io')).toHaveLength(2);
    expect(second.output()).toContain('"msg":"adopted running server"');

    // The adopted process is still managed: an edit replaces it.
    await h.write('web.yaml', tinyServer('web', h, { args: ['--ignore-stdin', '--v2'], extra: '  transport: streamable-http\n' }));
    await h.waitFor('rolled', async () => (await h.starts('web')).length === 2 && !isAlive(web!));
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    const [, web2] = await h.starts('web');
    expect(isAlive(web2!)).toBe(false);
  }, 40_000);

  it('up -d runs the controller in the background until down stops it and its servers', async () => {
    const h = await harness();
    // No variable TOKEN: $(TOKEN) stays as written (as Kubernetes leaves it), and apiary says so.
    await h.write('a.yaml', tinyServer('a', h, { args: ['--label=$(TOKEN)'] }));
    const started = await runCli(['up', '-d'], { env: h.env });
    expect(started.code, started.stderr).toBe(0);
    const [, pidText] = /\(pid (\d+)\); logs: (\S+controller\.log); stop it with: apiary down\napiary console: http:\/\/127\.0\.0\.1:\d+\/#login=[\w-]+\n$/.exec(started.stdout) ?? [];
    expect(pidText).toBeDefined();
    const controller = Number(pidText);
    try {
      const again = await runCli(['up', '-d'], { env: h.env });
      expect(again.code).toBe(1);
      expect(again.stderr).toContain(`another apiary controller (pid ${controller}`);
      expect((await runCli(['wait', 'mcp/a', '--for=condition=Ready', '--timeout', '15s'], { env: h.env })).code).toBe(0);
      const server = (await h.status('a'))!.pid!;
      expect((await runCli(['describe', 'mcp', 'a'], { env: h.env })).stdout).toMatch(/^Manifest warnings:\n {2}\S+a\.yaml:\d+:\d+: spec\.args\[1\]: "\$\(TOKEN\)" is passed as written/m);
      const down = await runCli(['down'], { env: h.env });
      expect(down.stdout).toBe(`apiary controller (pid ${controller}) stopped, and its servers with it\n`);
      expect(isAlive(controller)).toBe(false);
      expect(isAlive(server)).toBe(false);
      // Its log went to the state directory, owner-only.
      const log = join(h.stateDir, 'controller.log');
      expect((await stat(log)).mode & 0o777).toBe(0o600);
      const logText = await readFile(log, 'utf8');
      expect(logText).toContain('"msg":"controller stopped"');
      expect(logText).toMatch(/"msg":"manifest warning","warning":"\S+a\.yaml:\d+:\d+: spec\.args\[1\]: \\"\$\(TOKEN\)\\" is passed as written/);
      expect((await runCli(['logs', '--controller', '--tail', '1'], { env: h.env })).stdout).toMatch(/^\{"time":"[^"]+","level":"info","msg":"controller stopped"\}\n$/);
      const none = await runCli(['down'], { env: h.env });
      expect([none.code, none.stderr]).toEqual([0, 'no apiary controller is running for this state directory\n']);
    } finally {
      if (isAlive(controller)) process.kill(controller, 'SIGTERM');
    }
  }, 30_000);
});

describe('a second Ctrl-C', () => {
  it('kills every server at once, a server that ignores SIGTERM too, before the controller goes', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h, { args: ['--ignore-stdin', '--ignore-sigterm'] }));
    const controller = up(h);
    const ready = await runCli(['wait', 'mcpserver/a', '--for=condition=Ready', '--timeout', '15s'], { env: h.env });
    expect(ready.code, controller.output()).toBe(0);
    const pid = JSON.parse((await runCli(['get', 'mcp', 'a', '-o', 'json'], { env: h.env })).stdout).status.pid as number;
    const died = new Promise<NodeJS.Signals | null>((resolve) => controller.child.on('exit', (_code, signal) => resolve(signal)));
    controller.child.kill('SIGINT');
    // The first one starts a graceful stop: stdin closed, then SIGTERM, which this server ignores.
    await h.waitFor('the graceful stop under way', async () => controller.output().includes('signal received, stopping'));
    controller.child.kill('SIGINT');
    expect(await died).toBe('SIGINT');
    expect(controller.output()).toContain('second signal: killed every server');
    await h.waitFor('the server gone', async () => !isAlive(pid));
  });
});

describe('what a crash or a careless setup could leak', () => {
  it('the controller and its servers run with no core dumps', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    const controller = up(h);
    const ready = await runCli(['wait', 'mcpserver/a', '--for=condition=Ready', '--timeout', '15s'], { env: h.env });
    expect(ready.code, controller.output()).toBe(0);
    expect((await stat(h.stateDir)).mode & 0o777).toBe(0o700);
    const pid = JSON.parse((await runCli(['get', 'mcp', 'a', '-o', 'json'], { env: h.env })).stdout).status.pid as number;
    for (const p of [controller.child.pid!, pid]) {
      expect(await readFile(`/proc/${p}/limits`, 'utf8')).toMatch(/^Max core file size\s+0\s+0\s+bytes/m);
    }
    controller.child.kill('SIGTERM');
    expect(await controller.exited).toBe(0);
  });

  it('a state directory open to others is refused with the command that closes it, and left as it was', async () => {
    const h = await harness();
    await mkdir(h.stateDir, { recursive: true });
    await chmod(h.stateDir, 0o777);
    await h.write('a.yaml', tinyServer('a', h));
    const controller = up(h);
    expect(await controller.exited).toBe(1);
    expect(controller.output()).toContain(`error: state directory ${h.stateDir} is open to others (mode 777)`);
    expect(controller.output()).toContain(`Close it with: chmod 700 ${h.stateDir}`);
    expect((await stat(h.stateDir)).mode & 0o777).toBe(0o777);
    expect(await readdir(h.stateDir)).toEqual([]);
  });
});

describe('a process record lost while no controller ran', () => {
  /** This test's server processes, by the REPORT_DIR in their environment. */
  const serversOf = (h: Harness): number[] =>
    readdirSync('/proc').filter((e) => /^\d+$/.test(e)).flatMap((e) => {
      try {
        const environ = readFileSync(`/proc/${e}/environ`, 'utf8').split('\0');
        const zombie = / Z /.test(readFileSync(`/proc/${e}/stat`, 'utf8').replace(/\(.*\)/, 'x'));
        return environ.includes(`REPORT_DIR=${h.reports}`) && !zombie ? [Number(e)] : [];
      } catch {
        return [];
      }
    });

  it('the next controller finds the server by its log file: it is adopted and rolled, never run twice', async () => {
    const h = await harness();
    // It ignores stdin EOF and SIGTERM: it outlives a killed controller, as many real servers do.
    await h.write('a.yaml', tinyServer('a', h, { args: ['--ignore-stdin', '--ignore-sigterm'] }));
    const first = up(h);
    expect((await runCli(['wait', 'mcpserver/a', '--for=condition=Ready', '--timeout', '15s'], { env: h.env })).code, first.output()).toBe(0);
    const [orphan] = serversOf(h);
    first.child.kill('SIGKILL');
    await first.exited;
    await writeFile(join(h.stateDir, 'processes', 'a.json'), '{"name": "a", "pi');

    const second = up(h);
    await h.waitFor('the orphan found', async () => second.output().includes('found a server without its record; adopted it'));
    expect(serversOf(h).length).toBeLessThanOrEqual(1);
    // Its configuration is unknown, so it is rolled to the manifest: stopped (after its grace), then started anew.
    const replaced = await h.waitFor('a replaced', async () => {
      const pids = serversOf(h);
      return pids.length === 1 && pids[0] !== orphan && pids[0];
    }, 20_000);
    expect(isAlive(orphan!)).toBe(false);
    expect(serversOf(h)).toEqual([replaced]);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 40_000);
});

describe.skipIf(!needsGit().available)('a signal while up is still starting', () => {
  it('stops what already started (a git fetch begun before the endpoints and the console were up) and exits 0, leaving no git behind', async () => {
    const h = await harness();
    // A remote that takes git's request and never answers: the fetch hangs for its whole 10 min timeout.
    const held: Socket[] = [];
    const remote = createServer((socket) => {
      held.push(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => remote.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(remote.address() as AddressInfo).port}/signal-${Date.now()}.git`;
      await h.write('source.yaml', `apiVersion: apiary.dev/v1alpha1\nkind: GitRepository\nmetadata:\n  name: origin\nspec:\n  url: ${url}\n  ref: { branch: main }\n  timeout: 10m\n`);
      const controller = up(h);
      // The moment git starts, as close as polling gets: up may still be starting its endpoints and console.
      for (const deadline = Date.now() + 20_000; processesNaming(url).length === 0; await new Promise((r) => setImmediate(r))) {
        if (Date.now() > deadline) throw new Error(`git never started; ${controller.output()}`);
      }
      controller.child.kill('SIGTERM');
      const code = await controller.exited;
      expect(code, controller.output()).toBe(0);
      expect(controller.output()).toContain('controller stopped');
      await h.waitFor('no git process of the fetch left', async () => processesNaming(url).length === 0, 5_000);
    } finally {
      for (const s of held) s.destroy();
      remote.close();
    }
  });
});
