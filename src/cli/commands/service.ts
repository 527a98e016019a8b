/**
 * `apiary service install|uninstall|status`: apiary up as a user service that
 * starts at login and again after a failure (systemd on Linux, launchd on
 * macOS), on the same manifest and state directories the other verbs find.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { delimiter, dirname, isAbsolute } from 'node:path';
import { ApiaryError } from '../../errors.js';
import { StateLayout } from '../../state/layout.js';
import { isDirectory } from '../../util/config-home.js';
import { redactUrl } from '../../util/redact-url.js';
import { apiaryPackageDir, cliEntry } from '../../util/package-dir.js';
import type { CliContext } from '../context.js';
import { paint } from '../io.js';
import { installService, managerOf, processHost, renderService, serviceStatus, uninstallService, type Activation, type ServiceHost, type ServiceStatus } from '../service/service.js';
import type { ServiceSpec } from '../service/units.js';

/** Options the service sets itself: given again after --, they would fight the unit's own. */
const OWN_OPTIONS = new Set(['--dir', '--state-dir', '--git', '-d', '--detach']);

export function registerService(program: Command, ctx: CliContext): void {
  const service = program.command('service').description('run apiary up at every login, restarted on failure: a systemd user unit (Linux) or a launchd agent (macOS)');
  service
    .command('install')
    .description('write the unit (~/.config/systemd/user/apiary.service, or ~/Library/LaunchAgents/dev.apiary.plist) for up on this --dir and --state-dir, and enable and start it; a different file that was there is kept as <file>.apiary-backup')
    .argument('[UP-OPTIONS...]', 'more options for up, after --: apiary service install -- --ui-port 7000')
    .option('--dry-run', 'print the file that would be written; write and start nothing')
    .action(async (extra: string[], opts: { dryRun?: boolean }, cmd: Command) => {
      const host = processHost(ctx.env);
      const spec = serviceSpec(ctx, cmd, extra);
      if (opts.dryRun === true) return ctx.io.out(renderService(host, spec).trimEnd());
      reportInstall(ctx, host, spec, await installService(host, spec));
    });
  service
    .command('uninstall')
    .description('stop and disable the service and remove the file install wrote (nothing else: backups, manifests and state stay)')
    .action(async () => {
      const host = processHost(ctx.env);
      const result = await uninstallService(host);
      if (!result.removed) ctx.io.out(`no service installed (${result.file} does not exist); nothing to do`);
      else ctx.io.out(`removed ${result.file}`);
      if (result.activation !== undefined) reportActivation(ctx, result.activation, 'to stop it and take it out of your logins, run');
      for (const backup of result.backups) ctx.io.out(`kept ${backup} (the file an install replaced); restore it by hand if you want it back`);
    });
  service
    .command('status')
    .description('whether the service is installed, whether it matches what install would write now, and what the service manager says; exit 1 when not installed')
    .action(async (_opts: unknown, cmd: Command) => {
      const host = processHost(ctx.env);
      const spec = specIfPossible(ctx, cmd);
      const status = await serviceStatus(host, spec);
      reportStatus(ctx, status);
      if (!status.installed) ctx.exitCode = 1;
    });
}

/** What the unit runs: this node, this apiary, up on the directories the other verbs would use, with this shell's PATH. */
function serviceSpec(ctx: CliContext, cmd: Command, extra: readonly string[]): ServiceSpec {
  const { dir, dirDisplay, stateDir, git } = ctx.locations(cmd);
  if (git === undefined && !isDirectory(dir)) {
    throw new ApiaryError('NotFound', `manifest directory ${dirDisplay} does not exist`, {
      hints: ['Make your own with: apiary init (then apiary service install), or pass --dir DIR.'],
    });
  }
  const clash = extra.find((arg) => OWN_OPTIONS.has(arg.split('=')[0]!));
  if (clash !== undefined) throw new ApiaryError('Usage', `${clash} is the service's own: give --dir, --state-dir or --git before --, as for any verb`);
  const packageDir = apiaryPackageDir();
  const entry = packageDir === undefined ? undefined : cliEntry(packageDir);
  if (entry === undefined || !existsSync(entry)) {
    throw new ApiaryError('NotFound', `cannot find apiary's built CLI from ${process.argv[1] ?? 'this process'}`, { hints: ['Run apiary service install from an installed apiary (npm install -g) or a built checkout (npm install).'] });
  }
  const source = git !== undefined ? ['--git', git] : ['--dir', dir];
  return {
    node: process.execPath,
    entry,
    args: ['up', ...source, '--state-dir', stateDir, ...extra],
    path: servicePath(ctx.env['PATH'], process.execPath),
    description: `apiary: the MCP servers of ${dirDisplay}`,
    logFile: new StateLayout(stateDir).controllerLogFile,
  };
}

function specIfPossible(ctx: CliContext, cmd: Command): ServiceSpec | undefined {
  try {
    return serviceSpec(ctx, cmd, []);
  } catch {
    return undefined;
  }
}

/**
 * The installing shell's PATH (the servers' npx, uvx or docker are found the
 * same way from the service), absolute entries only, node's own folder
 * first when it is missing (a login session may not set up nvm's).
 */
export function servicePath(path: string | undefined, node: string): string {
  const entries = (path ?? '').split(delimiter).filter((entry) => isAbsolute(entry));
  const all = entries.includes(dirname(node)) ? entries : [dirname(node), ...entries];
  return [...new Set(all.length > 1 ? all : [...all, '/usr/local/bin', '/usr/bin', '/bin'])].join(delimiter);
}

function reportInstall(ctx: CliContext, host: ServiceHost, spec: ServiceSpec, result: Awaited<ReturnType<typeof installService>>): void {
  // A followed repository's URL may carry a token: the unit needs it, the terminal does not.
  const runs = ['apiary', ...spec.args.map((arg, i) => (spec.args[i - 1] === '--git' ? redactUrl(arg) : arg))].join(' ');
  if (result.action === 'unchanged') ctx.io.out(`${result.file} is already installed as this; unchanged (runs: ${runs})`);
  else ctx.io.out(`${result.action === 'created' ? 'wrote' : 'updated'} ${result.file} (runs: ${runs})`);
  if (result.backup !== undefined) ctx.io.out(`kept the different file that was there as ${result.backup}`);
  if (/[/\\]_npx[/\\]/.test(spec.entry)) ctx.io.out(`${paint(ctx.io, 'yellow', 'warning:')} this apiary runs from npx's cache (${spec.entry}), which npm may clean; install it for good with npm install -g, then run apiary service install again`);
  reportActivation(ctx, result.activation, 'to start it now and at every login, run');
  if (result.activation.failed !== undefined) return;
  const systemd = managerOf(host) === 'systemd';
  ctx.io.out(`apiary up starts at every login and again after a failure; apiary service status shows it${systemd ? ', journalctl --user -u apiary its log' : ', apiary logs --controller its log'}.`);
  if (systemd) ctx.io.out('To start it at boot, before you log in: loginctl enable-linger $USER');
}

function reportActivation(ctx: CliContext, activation: Activation, todoLead: string): void {
  for (const command of activation.ran) ctx.io.out(`  ran: ${command}`);
  if (activation.failed !== undefined) {
    ctx.io.err(`${paint(ctx.io, 'red', 'error:')} ${activation.failed.command} failed: ${activation.failed.output}`);
    ctx.exitCode = 1;
  }
  if (activation.todo.length === 0) return;
  ctx.io.out(`the service manager is not reachable here (${activation.unreachable ?? 'unknown'}); ${todoLead}:`);
  for (const command of activation.todo) ctx.io.out(`  ${command}`);
}

function reportStatus(ctx: CliContext, status: ServiceStatus): void {
  const { io } = ctx;
  if (!status.installed) {
    io.out(`not installed (${status.file} does not exist); apiary service install writes it`);
    return;
  }
  io.out(`file:     ${status.file}${status.ours ? '' : ' (not written by apiary)'}`);
  if (status.ours) io.out(`matches:  ${status.current ? 'what apiary service install would write now' : 'no: it differs from what apiary service install would write now (another directory, node or PATH); run it again to update'}`);
  if (status.unreachable !== undefined) {
    io.out(`manager:  ${status.manager}, not reachable here (${status.unreachable})`);
    return;
  }
  for (const line of managerLines(status)) io.out(line);
}

/** systemd's properties or launchd's fields, as `systemctl status` would put them. */
function managerLines(status: ServiceStatus): string[] {
  const state = status.state ?? {};
  if (status.manager === 'launchd') {
    const pid = state['pid'] !== undefined ? `, pid ${state['pid']}` : '';
    const exit = state['last exit code'] !== undefined ? `, last exit code ${state['last exit code']}` : '';
    return [`state:    ${state['state'] ?? 'unknown'}${pid}${exit}`];
  }
  const pid = state['MainPID'] !== undefined && state['MainPID'] !== '0' ? `, pid ${state['MainPID']}` : '';
  const restarts = state['NRestarts'] !== undefined ? `, restarted ${state['NRestarts']} time(s)` : '';
  return [
    `enabled:  ${state['UnitFileState'] || 'unknown'}`,
    `active:   ${state['ActiveState'] ?? 'unknown'}${state['SubState'] ? ` (${state['SubState']})` : ''}${pid}${restarts}`,
    ...(state['ExecMainStartTimestamp'] ? [`since:    ${state['ExecMainStartTimestamp']}`] : []),
  ];
}

