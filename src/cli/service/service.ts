/**
 * `apiary service install|uninstall|status`: the unit file (systemd) or agent
 * (launchd) that runs `apiary up` at login, written atomically with a backup
 * of a different file that was there, and the service manager told of it
 * when it can be reached (else the commands to run are handed back).
 */
import { execFile } from 'node:child_process';
import { readdir, readlink, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ApiaryError } from '../../errors.js';
import { ensureDir, readTextIfPresent, writeFileAtomic } from '../../util/atomic.js';
import { configHome } from '../../util/config-home.js';
import { LAUNCHD_LABEL, LAUNCHD_MARKER, launchdPlist, SYSTEMD_MARKER, systemdUnit, type ServiceSpec } from './units.js';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The world a service is installed into: which system, whose home, and its service manager's command. */
export interface ServiceHost {
  platform: NodeJS.Platform;
  env: NodeJS.ProcessEnv;
  uid: number;
  /** Runs systemctl or launchctl; undefined when the program is not there. */
  run(command: string, args: readonly string[]): Promise<CommandResult | undefined>;
}

export type Manager = 'systemd' | 'launchd';

/** What was done with the service manager, or what to run by hand when it could not be reached. */
export interface Activation {
  reachable: boolean;
  /** Why it could not be reached (its own words). */
  unreachable?: string;
  /** Commands run, each as a person would type it. */
  ran: string[];
  /** A command that failed, with what it said. */
  failed?: { command: string; output: string };
  /** Commands to run by hand (the manager was not reachable). */
  todo: string[];
}

export interface InstallResult {
  file: string;
  action: 'created' | 'updated' | 'unchanged';
  /** Where the different file that was there was kept. */
  backup?: string;
  activation: Activation;
}

export interface UninstallResult {
  file: string;
  removed: boolean;
  /** The backups of files install replaced, left for the user. */
  backups: string[];
  activation?: Activation;
}

export interface ServiceStatus {
  file: string;
  manager: Manager;
  installed: boolean;
  /** Written by apiary (it starts with apiary's marker). */
  ours: boolean;
  /** Holds what install would write now (same directory, state directory, node and PATH), whatever options for up were added. */
  current: boolean;
  /** The manager's view: systemd's properties, or launchd's `print` lines of interest. */
  state?: Record<string, string>;
  unreachable?: string;
}

export const SYSTEMD_UNIT = 'apiary.service';

export function managerOf(host: ServiceHost): Manager {
  if (host.platform === 'linux') return 'systemd';
  if (host.platform === 'darwin') return 'launchd';
  throw new ApiaryError('Unsupported', `apiary service runs under systemd (Linux) or launchd (macOS), not on ${host.platform}`, {
    hints: ['Run apiary up from your session manager or scheduler instead.'],
  });
}

/** ~/.config/systemd/user/apiary.service (systemd reads $XDG_CONFIG_HOME too), or ~/Library/LaunchAgents/dev.apiary.plist. */
export function serviceFile(host: ServiceHost): string {
  if (managerOf(host) === 'systemd') return join(configHome(host.env), 'systemd', 'user', SYSTEMD_UNIT);
  return join(host.env['HOME'] || homedir(), 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`);
}

export function renderService(host: ServiceHost, spec: ServiceSpec): string {
  return managerOf(host) === 'systemd' ? systemdUnit(spec) : launchdPlist(spec);
}

export async function installService(host: ServiceHost, spec: ServiceSpec): Promise<InstallResult> {
  const file = serviceFile(host);
  const text = renderService(host, spec);
  const before = await readTextIfPresent(file);
  if (before === text) return { file, action: 'unchanged', activation: await activate(host, file, 'unchanged') };
  await ensureDir(dirname(file));
  const backup = before === undefined ? undefined : await keepBackup(file, before);
  // launchd opens the log before it runs anything: its folder (the state directory) must be there.
  if (managerOf(host) === 'launchd') await ensureDir(dirname(spec.logFile));
  await writeFileAtomic(file, text);
  const action = before === undefined ? 'created' : 'updated';
  return { file, action, ...(backup !== undefined ? { backup } : {}), activation: await activate(host, file, action) };
}

export async function uninstallService(host: ServiceHost): Promise<UninstallResult> {
  const file = serviceFile(host);
  const backups = await backupsOf(file);
  const before = await readTextIfPresent(file);
  if (before === undefined) return { file, removed: false, backups };
  if (!isOurs(host, before)) {
    throw new ApiaryError('NotOurs', `${file} was not written by apiary service install; it is left as it is`, {
      hints: ['Remove it yourself if it is no longer wanted.'],
    });
  }
  const activation = await deactivate(host, file);
  await rm(file, { force: true });
  if (activation.reachable && managerOf(host) === 'systemd') await runStep(host, activation, 'systemctl', ['--user', 'daemon-reload']);
  return { file, removed: true, backups, activation };
}

export async function serviceStatus(host: ServiceHost, spec: ServiceSpec | undefined): Promise<ServiceStatus> {
  const file = serviceFile(host);
  const manager = managerOf(host);
  const text = await readTextIfPresent(file);
  const status: ServiceStatus = {
    file,
    manager,
    installed: text !== undefined,
    ours: text !== undefined && isOurs(host, text),
    current: text !== undefined && spec !== undefined && holdsRendering(text, renderService(host, spec)),
  };
  if (text === undefined) return status;
  const reach = await reachable(host);
  if (!reach.reachable) return { ...status, unreachable: reach.unreachable ?? 'not reachable' };
  return { ...status, state: manager === 'systemd' ? await systemdState(host) : await launchdState(host) };
}

/**
 * Every line of `rendered` (written with no options for up) is in `text`, in
 * order, the command line allowed to go on: options given after `--` at
 * install (an extra line each in a plist) do not make a unit stale.
 */
function holdsRendering(text: string, rendered: string): boolean {
  const wanted = rendered.split('\n');
  let found = 0;
  for (const line of text.split('\n')) {
    const next = wanted[found];
    if (next !== undefined && (line === next || (next.startsWith('ExecStart=') && line.startsWith(`${next} `)))) found++;
  }
  return found === wanted.length;
}

function isOurs(host: ServiceHost, text: string): boolean {
  return managerOf(host) === 'systemd' ? text.startsWith(SYSTEMD_MARKER) : text.includes(LAUNCHD_MARKER);
}


/** `<file>.apiary-backup`, or a dated name beside it when that is taken: no earlier backup is ever replaced. */
async function keepBackup(file: string, text: string): Promise<string> {
  let backup = `${file}.apiary-backup`;
  if ((await readTextIfPresent(backup)) !== undefined) backup = `${file}.apiary-backup-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  await writeFileAtomic(backup, text);
  return backup;
}

async function backupsOf(file: string): Promise<string[]> {
  const names = await readdir(dirname(file)).catch(() => [] as string[]);
  const prefix = `${file.slice(dirname(file).length + 1)}.apiary-backup`;
  return names.filter((name) => name.startsWith(prefix)).sort().map((name) => join(dirname(file), name));
}

async function reachable(host: ServiceHost): Promise<{ reachable: boolean; unreachable?: string }> {
  const probe = managerOf(host) === 'systemd' ? await host.run('systemctl', ['--user', 'show-environment']) : await host.run('launchctl', ['print', `gui/${host.uid}`]);
  const program = managerOf(host) === 'systemd' ? 'systemctl' : 'launchctl';
  if (probe === undefined) return { reachable: false, unreachable: `${program} is not installed` };
  if (probe.code !== 0) return { reachable: false, unreachable: firstLine(probe.stderr || probe.stdout) || `${program} exited ${probe.code}` };
  return { reachable: true };
}

/**
 * systemd: enable --now starts a new unit; one that changed is restarted to
 * take it. launchd: a new or changed agent is booted out (whatever held the
 * label before) and in again; an unchanged one is bootstrapped only when not loaded.
 */
async function activate(host: ServiceHost, file: string, action: InstallResult['action']): Promise<Activation> {
  const restart: [string, string[]][] = action === 'updated' ? [['systemctl', ['--user', 'restart', SYSTEMD_UNIT]]] : [];
  const bootout: [string, string[]][] = action !== 'unchanged' ? [['launchctl', ['bootout', `gui/${host.uid}/${LAUNCHD_LABEL}`]]] : [];
  const steps: [string, string[]][] =
    managerOf(host) === 'systemd'
      ? [['systemctl', ['--user', 'daemon-reload']], ['systemctl', ['--user', 'enable', '--now', SYSTEMD_UNIT]], ...restart]
      : [...bootout, ['launchctl', ['bootstrap', `gui/${host.uid}`, file]]];
  return runSteps(host, steps, { launchdLoaded: action === 'unchanged' });
}

async function deactivate(host: ServiceHost, file: string): Promise<Activation> {
  const systemd = managerOf(host) === 'systemd';
  const steps: [string, string[]][] = systemd ? [['systemctl', ['--user', 'disable', '--now', SYSTEMD_UNIT]]] : [['launchctl', ['bootout', `gui/${host.uid}/${LAUNCHD_LABEL}`]]];
  const activation = await runSteps(host, steps, {});
  // Unreachable: the link `systemctl enable` makes is taken away here, if it points at this unit, so nothing dangles.
  if (!activation.reachable && systemd) await removeWantsLink(file);
  return activation;
}

async function runSteps(host: ServiceHost, steps: readonly [string, string[]][], options: { launchdLoaded?: boolean }): Promise<Activation> {
  const reach = await reachable(host);
  const activation: Activation = { reachable: reach.reachable, ran: [], todo: [], ...(reach.unreachable !== undefined ? { unreachable: reach.unreachable } : {}) };
  if (!reach.reachable) {
    activation.todo = steps.map(([command, args]) => [command, ...args].join(' '));
    return activation;
  }
  for (const [command, args] of steps) {
    // bootstrap of an agent launchd already runs fails: an unchanged, loaded agent needs nothing.
    if (command === 'launchctl' && args[0] === 'bootstrap' && options.launchdLoaded === true && (await host.run('launchctl', ['print', `gui/${host.uid}/${LAUNCHD_LABEL}`]))?.code === 0) continue;
    if (!(await runStep(host, activation, command, args)) && !(command === 'launchctl' && args[0] === 'bootout')) break;
  }
  return activation;
}

async function runStep(host: ServiceHost, activation: Activation, command: string, args: readonly string[]): Promise<boolean> {
  const shown = [command, ...args].join(' ');
  const result = await host.run(command, args);
  activation.ran.push(shown);
  if (result !== undefined && result.code === 0) return true;
  // launchctl bootout of an agent that is not loaded is not a failure worth stopping for.
  if (!(command === 'launchctl' && args[0] === 'bootout')) activation.failed = { command: shown, output: (result?.stderr || result?.stdout || `${command} is not installed`).trim() };
  return false;
}

async function removeWantsLink(file: string): Promise<void> {
  const link = join(dirname(file), 'default.target.wants', SYSTEMD_UNIT);
  const target = await readlink(link).catch(() => undefined);
  if (target !== undefined && resolve(dirname(link), target) === file) await rm(link, { force: true });
}

async function systemdState(host: ServiceHost): Promise<Record<string, string>> {
  const shown = await host.run('systemctl', ['--user', 'show', SYSTEMD_UNIT, '--property=UnitFileState,ActiveState,SubState,MainPID,NRestarts,ExecMainStartTimestamp']);
  return Object.fromEntries((shown?.stdout ?? '').split('\n').filter((line) => line.includes('=')).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}

async function launchdState(host: ServiceHost): Promise<Record<string, string>> {
  const shown = await host.run('launchctl', ['print', `gui/${host.uid}/${LAUNCHD_LABEL}`]);
  if (shown === undefined || shown.code !== 0) return { state: 'not loaded' };
  const pick = (key: string): [string, string][] => {
    const match = new RegExp(`^\\s*${key} = (.*)$`, 'm').exec(shown.stdout);
    return match?.[1] !== undefined ? [[key, match[1].trim()]] : [];
  };
  return Object.fromEntries([...pick('state'), ...pick('pid'), ...pick('runs'), ...pick('last exit code')]);
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}

/** The real host: this machine, its service manager run without a shell, with a bound on how long it may take. */
export function processHost(env: NodeJS.ProcessEnv): ServiceHost {
  return {
    platform: process.platform,
    env,
    uid: process.getuid?.() ?? 0,
    run: (command, args) =>
      new Promise((done) => {
        execFile(command, [...args], { env, timeout: 120_000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
          if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') return done(undefined);
          const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1;
          done({ code, stdout, stderr });
        });
      }),
  };
}
