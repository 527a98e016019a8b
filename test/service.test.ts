/**
 * `apiary service install|uninstall|status`: the systemd unit passes
 * systemd-analyze verify (Debian's systemd), the launchd agent is a property
 * list Python's plistlib reads back to the same arguments, a second install
 * changes nothing, a different file is kept, and uninstall removes exactly
 * what install wrote. No systemd user manager runs in a test machine's
 * container, so the CLI tests put a recording systemctl first on PATH: the
 * one edge that cannot run here.
 */
import { execFile } from 'node:child_process';
import { chmod, lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { installService, serviceFile, uninstallService, type ServiceHost } from '../src/cli/service/service.js';
import { systemdUnit, type ServiceSpec } from '../src/cli/service/units.js';
import { servicePath } from '../src/cli/commands/service.js';
import { ROOT, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { needsPython, needsSystemdAnalyze } from './helpers/tools.js';

const run = promisify(execFile);
const analyze = needsSystemdAnalyze();
const python = needsPython();

/** A path with every character a unit file or a property list treats specially. */
const AWKWARD = '/tmp/apiary test/100% "sure"/$HOME/a\\b/<&>';

function spec(overrides: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    node: process.execPath,
    entry: join(ROOT, 'dist', 'src', 'cli', 'launch.cjs'),
    args: ['up', '--dir', AWKWARD, '--state-dir', '/tmp/state %h'],
    path: servicePath('/usr/bin:relative/bin:/bin', process.execPath),
    description: 'apiary: the MCP servers of 100% of it',
    logFile: '/tmp/state %h/controller.log',
    ...overrides,
  };
}

async function verify(file: string): Promise<{ code: number; output: string }> {
  try {
    const result = await run('/usr/bin/systemd-analyze', ['verify', '--man=no', file]);
    return { code: 0, output: `${result.stdout}${result.stderr}` };
  } catch (err) {
    const failed = err as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? 1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

/** The property list as macOS reads it: Python's plistlib, over expat, to JSON. */
async function readPlist(file: string): Promise<Record<string, unknown>> {
  const script = 'import json, plistlib, sys\nwith open(sys.argv[1], "rb") as f: print(json.dumps(plistlib.load(f)))';
  return JSON.parse((await run('python3', ['-c', script, file])).stdout) as Record<string, unknown>;
}

function fakeHost(platform: NodeJS.Platform, home: string): ServiceHost {
  return { platform, env: { HOME: home, XDG_CONFIG_HOME: join(home, '.config') }, uid: 501, run: () => Promise.resolve(undefined) };
}

describe.runIf(analyze.available)('the systemd unit', () => {
  it('passes systemd-analyze verify with nothing to say, quoting every argument', async () => {
    const dir = await tempDir('apiary-unit-');
    const file = join(dir, 'apiary.service');
    await writeFile(file, systemdUnit(spec()));
    expect(await verify(file)).toEqual({ code: 0, output: '' });
    const text = await readFile(file, 'utf8');
    expect(text).toContain('ExecStart="' + process.execPath + '"');
    expect(text).toContain('"/tmp/apiary test/100%% \\"sure\\"/$$HOME/a\\\\b/<&>"');
    expect(text).toContain('Restart=on-failure\n');
    expect(text).toContain('WantedBy=default.target\n');
    expect(text).not.toContain('relative/bin');
  });

  it('verify is the judge: a unit it finds wrong fails the check', async () => {
    const dir = await tempDir('apiary-unit-');
    const file = join(dir, 'apiary.service');
    await writeFile(file, systemdUnit(spec()).replace('Restart=on-failure', 'Restart=sometimes'));
    expect((await verify(file)).output).toContain('Failed to parse service restart specifier');
    await writeFile(file, systemdUnit(spec({ node: '/no/such/node' })));
    expect(await verify(file)).toMatchObject({ code: 1 });
  });
});

describe.runIf(python.available)('the launchd agent', () => {
  it('is a property list that reads back to the same arguments, RunAtLoad, KeepAlive on failure and no core dumps', async () => {
    const home = await tempDir('apiary-mac-');
    const host = fakeHost('darwin', home);
    const result = await installService(host, spec({ logFile: join(home, 'state', 'controller.log') }));
    expect(result.file).toBe(join(home, 'Library', 'LaunchAgents', 'dev.apiary.plist'));
    expect(result.activation?.todo).toEqual(['launchctl bootout gui/501/dev.apiary', `launchctl bootstrap gui/501 ${result.file}`]);
    const plist = await readPlist(result.file);
    expect(plist).toEqual({
      Label: 'dev.apiary',
      ProgramArguments: [process.execPath, join(ROOT, 'dist', 'src', 'cli', 'launch.cjs'), 'up', '--dir', AWKWARD, '--state-dir', '/tmp/state %h'],
      EnvironmentVariables: { PATH: servicePath('/usr/bin:relative/bin:/bin', process.execPath) },
      RunAtLoad: true,
      KeepAlive: { SuccessfulExit: false },
      ExitTimeOut: 90,
      StandardOutPath: join(home, 'state', 'controller.log'),
      StandardErrorPath: join(home, 'state', 'controller.log'),
      SoftResourceLimits: { Core: 0 },
      HardResourceLimits: { Core: 0 },
    });
    // launchd opens the log before it runs apiary: its folder is there.
    expect((await stat(join(home, 'state'))).isDirectory()).toBe(true);
    expect((await installService(host, spec({ logFile: join(home, 'state', 'controller.log') }))).action).toBe('unchanged');
    expect((await uninstallService(host)).removed).toBe(true);
    expect(await readdir(join(home, 'Library', 'LaunchAgents'))).toEqual([]);
  });
});

describe('the launchd agent with launchctl answering', () => {
  it('bootstraps it once, leaves a loaded unchanged agent alone, boots out and in again when it changes, and boots it out on uninstall', async () => {
    const home = await tempDir('apiary-mac-');
    const loaded = { value: false };
    const asked: string[] = [];
    const host: ServiceHost = {
      ...fakeHost('darwin', home),
      run: (command, args) => {
        asked.push([command, ...args].join(' '));
        if (args[0] === 'bootstrap') loaded.value = true;
        if (args[0] === 'bootout') loaded.value = false;
        const answers = args[0] !== 'print' || args[1] === 'gui/501' || loaded.value;
        return Promise.resolve({ code: answers ? 0 : 113, stdout: answers ? '\tstate = running\n\tpid = 777\n' : '', stderr: answers ? '' : 'Could not find service' });
      },
    };
    const logFile = join(home, 'state', 'controller.log');
    const file = join(home, 'Library', 'LaunchAgents', 'dev.apiary.plist');
    await installService(host, spec({ logFile }));
    await installService(host, spec({ logFile }));
    await installService(host, spec({ logFile, args: [...spec().args, '--ui-port', '7999'] }));
    await uninstallService(host);
    expect(asked.filter((line) => line !== 'launchctl print gui/501')).toEqual([
      'launchctl bootout gui/501/dev.apiary',
      `launchctl bootstrap gui/501 ${file}`,
      'launchctl print gui/501/dev.apiary',
      'launchctl bootout gui/501/dev.apiary',
      `launchctl bootstrap gui/501 ${file}`,
      'launchctl bootout gui/501/dev.apiary',
    ]);
    expect(loaded.value).toBe(false);
  });
});

describe('apiary service on Linux', () => {

  /** A systemctl that records what it was asked and answers as a user manager (STUB_SYSTEMD=up) or as none. */
  async function stubSystemctl(dir: string): Promise<void> {
    await mkdir(dir);
    await writeFile(
      join(dir, 'systemctl'),
      [
        '#!/bin/sh',
        'printf "%s\\n" "$*" >> "$STUB_LOG"',
        'if [ "$STUB_SYSTEMD" != up ]; then echo "Failed to connect to bus: No medium found" >&2; exit 1; fi',
        'if [ "$2" = show ]; then printf "UnitFileState=enabled\\nActiveState=active\\nSubState=running\\nMainPID=4242\\nNRestarts=0\\n"; fi',
        'exit 0',
        '',
      ].join('\n'),
    );
    await chmod(join(dir, 'systemctl'), 0o755);
  }

  async function home(systemd: 'up' | 'down'): Promise<{ root: string; cwd: string; unit: string; log: string; env: NodeJS.ProcessEnv }> {
    const root = await tempDir('apiary-svc-');
    const cwd = join(root, 'elsewhere');
    await mkdir(cwd);
    const stubDir = join(root, 'bin');
    await stubSystemctl(stubDir);
    const log = join(root, 'systemctl.log');
    await writeFile(log, '');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: root,
      XDG_CONFIG_HOME: join(root, 'config'),
      XDG_STATE_HOME: join(root, 'state'),
      XDG_DATA_HOME: join(root, 'data'),
      PATH: `${stubDir}:${process.env['PATH'] ?? ''}`,
      STUB_SYSTEMD: systemd,
      STUB_LOG: log,
    };
    delete env['APIARY_DIR'];
    delete env['APIARY_STATE_DIR'];
    delete env['APIARY_GIT'];
    expect((await runCli(['init'], { cwd, env })).code).toBe(0);
    return { root, cwd, unit: join(root, 'config', 'systemd', 'user', 'apiary.service'), log, env };
  }

  async function filesUnder(dir: string): Promise<string[]> {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries.filter((e) => !e.isDirectory()).map((e) => join(e.parentPath, e.name)).sort();
  }

  it('without a reachable user manager: writes a unit that verifies, prints what to run, a second install is a no-op, uninstall removes exactly what was written', async () => {
    const h = await home('down');
    const before = await filesUnder(h.root);
    const install = await runCli(['service', 'install'], { cwd: h.cwd, env: h.env });
    expect(install.stderr).toBe('');
    expect(install.code).toBe(0);
    const perUser = join(h.root, 'config', 'apiary', 'manifests');
    expect(install.stdout).toContain(`wrote ${h.unit} (runs: apiary up --dir ${perUser} --state-dir ${join(h.root, 'state', 'apiary')}/`);
    expect(install.stdout).toContain('the service manager is not reachable here (Failed to connect to bus: No medium found); to start it now and at every login, run:\n  systemctl --user daemon-reload\n  systemctl --user enable --now apiary.service\n');
    expect((await stat(h.unit)).mode & 0o777).toBe(0o600);
    const unit = await readFile(h.unit, 'utf8');
    expect(unit).toContain(`ExecStart="${process.execPath}" "${join(ROOT, 'dist', 'src', 'cli', 'launch.cjs')}" "up" "--dir" "${perUser}" "--state-dir" "`);
    if (analyze.available) expect(await verify(h.unit)).toEqual({ code: 0, output: '' });

    const again = await runCli(['service', 'install'], { cwd: h.cwd, env: h.env });
    expect(again.stdout).toContain(`${h.unit} is already installed as this; unchanged`);
    expect(await readFile(h.unit, 'utf8')).toBe(unit);
    expect(await readdir(join(h.root, 'config', 'systemd', 'user'))).toEqual(['apiary.service']);

    const status = await runCli(['service', 'status'], { cwd: h.cwd, env: h.env });
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('matches:  what apiary service install would write now');
    expect(status.stdout).toContain('manager:  systemd, not reachable here (Failed to connect to bus: No medium found)');

    // What `systemctl --user enable` would have made, had the user run it: uninstall takes it away with the unit.
    await mkdir(join(h.root, 'config', 'systemd', 'user', 'default.target.wants'));
    await symlink(h.unit, join(h.root, 'config', 'systemd', 'user', 'default.target.wants', 'apiary.service'));
    const uninstall = await runCli(['service', 'uninstall'], { cwd: h.cwd, env: h.env });
    expect(uninstall.code).toBe(0);
    expect(uninstall.stdout).toContain(`removed ${h.unit}`);
    expect(uninstall.stdout).toContain('  systemctl --user disable --now apiary.service');
    expect(await filesUnder(h.root)).toEqual(before);
    const none = await runCli(['service', 'status'], { cwd: h.cwd, env: h.env });
    expect(none.code).toBe(1);
    expect(none.stdout).toContain('not installed');
  }, 120_000);

  it('with a user manager: enables and starts it, restarts it when the unit changes, and disables it on uninstall', async () => {
    const h = await home('up');
    expect((await runCli(['service', 'install'], { cwd: h.cwd, env: h.env })).code).toBe(0);
    expect((await runCli(['service', 'install', '--', '--ui-port', '7999'], { cwd: h.cwd, env: h.env })).stdout).toContain(`updated ${h.unit}`);
    expect(await readFile(h.unit, 'utf8')).toContain('"--ui-port" "7999"');
    const status = await runCli(['service', 'status'], { cwd: h.cwd, env: h.env });
    expect(status.stdout).toContain('matches:  what apiary service install would write now');
    expect(status.stdout).toContain('enabled:  enabled\nactive:   active (running), pid 4242, restarted 0 time(s)\n');
    expect((await runCli(['service', 'uninstall'], { cwd: h.cwd, env: h.env })).code).toBe(0);
    const asked = (await readFile(h.log, 'utf8')).split('\n').filter((line) => line !== '' && line !== '--user show-environment');
    expect(asked).toEqual([
      '--user daemon-reload',
      '--user enable --now apiary.service',
      '--user daemon-reload',
      '--user enable --now apiary.service',
      '--user restart apiary.service',
      '--user show apiary.service --property=UnitFileState,ActiveState,SubState,MainPID,NRestarts,ExecMainStartTimestamp',
      '--user disable --now apiary.service',
      '--user daemon-reload',
    ]);
    // The first unit, replaced by the second, was apiary's own: kept all the same.
    expect(await readdir(join(h.root, 'config', 'systemd', 'user'))).toEqual(['apiary.service.apiary-backup']);
  }, 120_000);

  it("keeps a different unit that was there byte for byte, and uninstall leaves alone a unit it did not write", async () => {
    const h = await home('down');
    const theirs = '[Unit]\nDescription=my own apiary\n\n[Service]\nExecStart=/usr/bin/true\n';
    await mkdir(join(h.root, 'config', 'systemd', 'user'), { recursive: true });
    await writeFile(h.unit, theirs);
    const install = await runCli(['service', 'install'], { cwd: h.cwd, env: h.env });
    expect(install.stdout).toContain(`kept the different file that was there as ${h.unit}.apiary-backup`);
    expect(await readFile(`${h.unit}.apiary-backup`, 'utf8')).toBe(theirs);

    await writeFile(h.unit, theirs);
    const refused = await runCli(['service', 'uninstall'], { cwd: h.cwd, env: h.env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`error: ${h.unit} was not written by apiary service install; it is left as it is`);
    expect(await readFile(h.unit, 'utf8')).toBe(theirs);
  }, 120_000);

  it('--dry-run writes nothing; a missing manifest directory and an option the unit sets itself are refused', async () => {
    const h = await home('down');
    const dry = await runCli(['service', 'install', '--dry-run'], { cwd: h.cwd, env: h.env });
    expect(dry.stdout).toContain('ExecStart=');
    expect(await lstat(h.unit).catch(() => undefined)).toBeUndefined();
    const missing = await runCli(['service', 'install', '--dir', join(h.root, 'nope')], { cwd: h.cwd, env: h.env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`error: manifest directory ${join(h.root, 'nope')} does not exist`);
    expect(missing.stderr).toContain('apiary init');
    const clash = await runCli(['service', 'install', '--', '--state-dir', '/x'], { cwd: h.cwd, env: h.env });
    expect(clash.code).toBe(2);
    expect(clash.stderr).toContain('--state-dir is the service');
  }, 120_000);

  it('a followed repository: the unit runs up --git with its URL, which the terminal sees without the token in it', async () => {
    const h = await home('down');
    const url = 'https://someone:tok3n-canary@example.com/team/servers.git';
    const install = await runCli(['service', 'install', '--git', url], { cwd: h.cwd, env: h.env });
    expect(install.code).toBe(0);
    expect(install.stdout).toContain('runs: apiary up --git https://***@example.com/team/servers.git --state-dir ');
    expect(install.stdout + install.stderr).not.toContain('tok3n-canary');
    expect(await readFile(h.unit, 'utf8')).toContain(`"up" "--git" "${url}" "--state-dir"`);
    expect((await stat(h.unit)).mode & 0o777).toBe(0o600);
  }, 120_000);

  it('the unit file is found under $XDG_CONFIG_HOME as systemd looks for it', () => {
    expect(serviceFile(fakeHost('linux', '/home/u'))).toBe('/home/u/.config/systemd/user/apiary.service');
    expect(() => serviceFile(fakeHost('win32', '/home/u'))).toThrow('apiary service runs under systemd (Linux) or launchd (macOS), not on win32');
  });
});
