import { delimiter, resolve } from 'node:path';
import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, rename, stat } from 'node:fs/promises';
import { createLogger } from '../../util/logger.js';
import { ApiaryError } from '../../errors.js';
import { requireDuration } from '../../util/duration.js';
import { isControllerLockHeld, liveController } from '../../state/controller-lock.js';
import { StateLayout } from '../../state/layout.js';
import { ensureDir } from '../../util/atomic.js';
import type { CliContext } from '../context.js';
import { logSink } from '../log-sink.js';
import { checkNamespace } from '../namespace.js';
import { guardProcess } from '../process-guard.js';
import { displayPath } from '../paths.js';
import { LOGIN_CODE_MS, loginLink, mintLoginCode, readConsoleRecord } from '../../console/auth.js';
import type { KubeCluster } from '../../kubernetes/cluster.js';
import { readSourceDirectory, writeFlagSource } from '../../source/directory.js';
import { redactUrl } from '../../util/redact-url.js';
import { APIARY_VERSION } from '../../util/version.js';
import type { AccessConfig } from '../../api/gate.js';

interface UpOptions {
  resync: string;
  verbose?: boolean;
  detach?: boolean;
  ui: boolean;
  uiPort?: string;
  auth: boolean;
  catalog: string[];
  registry: string[];
  runtime: string;
  context?: string;
  namespace?: string;
  kubeconfig?: string;
  ref?: string;
  path?: string;
  interval?: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function registerUp(program: Command, ctx: CliContext): void {
  program
    .command('up')
    .description('run the controller: watch --dir and keep the servers matching it (foreground: Ctrl-C stops everything; -d: in the background, until apiary down)')
    .option('--resync <seconds>', 'full resync period', '30')
    .option('-d, --detach', 'run in the background, logging to controller.log in the state directory')
    .option('-v, --verbose', 'debug logging')
    .option('--ui-port <PORT>', 'port of the web console on 127.0.0.1 (default: the one used last time if free, else any free port)')
    .option('--no-ui', 'do not serve the web console')
    .option('--no-auth', "serve the MCP endpoints without the bearer token (any local process may call every server's tools)")
    .option('--catalog <PATH>', "the console's Catalog page also lists these server.json files or folders (repeatable)", collect, [])
    .option('--registry <URL>', "the console's Catalog page also lists this MCP registry's servers (repeatable)", collect, [])
    .option('--runtime <RUNTIME>', 'where servers run: process (local processes) or kubernetes (Deployments on a cluster, by server-side apply)', 'process')
    .option('--context <NAME>', 'kubernetes runtime: the kubeconfig context (default: the current one)')
    .option('-n, --namespace <NS>', "kubernetes runtime: the namespace apiary's objects go to (default: the context's, else default)")
    .option('--kubeconfig <FILE>', 'kubernetes runtime: the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)')
    .option('--ref <REF>', "with --git: the branch or tag to follow, or a commit sha to pin (default: the remote's default branch)")
    .option('--path <SUBDIR>', 'with --git: the folder in the repository that holds the manifests (default: the top)')
    .option('--interval <DURATION>', 'with --git: how often to fetch (default 1m)')
    .action(async (opts: UpOptions, cmd: Command) => {
      const { dir, dirDisplay, stateDir, git } = ctx.locations(cmd);
      if (git === undefined && (opts.ref !== undefined || opts.path !== undefined || opts.interval !== undefined)) {
        throw new ApiaryError('Usage', '--ref, --path and --interval are for --git URL');
      }
      if (git !== undefined) {
        // Refused before anything is written: a second up must not change what the running one follows.
        const running = await liveController(new StateLayout(stateDir));
        if (running !== undefined) {
          throw new ApiaryError('ControllerRunning', `another apiary controller (pid ${running.pid}, started ${running.startedAt}) already follows ${dirDisplay}`, { hints: ['Stop it first (apiary down), or use another --state-dir.'] });
        }
        await writeFlagSource(dir, { url: git, ref: opts.ref, path: opts.path, interval: opts.interval });
      }
      const info = await stat(dir).catch(() => undefined);
      if (info?.isDirectory() !== true) {
        throw new ApiaryError('NotFound', `manifest directory ${dirDisplay} does not exist`, {
          hints: ['Pass --dir DIR, set APIARY_DIR, run from a folder that has ./manifests, or make your own with: apiary init'],
        });
      }
      const resyncSeconds = Number(opts.resync);
      if (!Number.isFinite(resyncSeconds) || resyncSeconds < 1) throw new ApiaryError('Usage', '--resync takes a number of seconds (at least 1)');
      const uiPort = opts.uiPort === undefined ? undefined : Number(opts.uiPort);
      if (uiPort !== undefined && (!Number.isInteger(uiPort) || uiPort < 1 || uiPort > 65535)) throw new ApiaryError('Usage', '--ui-port takes a port number (1-65535)');
      if (opts.runtime !== 'process' && opts.runtime !== 'kubernetes') throw new ApiaryError('Usage', `--runtime must be process or kubernetes; got "${opts.runtime}"`);
      if (opts.runtime === 'process' && (opts.context !== undefined || opts.namespace !== undefined || opts.kubeconfig !== undefined)) {
        throw new ApiaryError('Usage', '--context, --namespace and --kubeconfig are for --runtime kubernetes');
      }
      if (opts.namespace !== undefined) checkNamespace(opts.namespace);
      // A directory that declares a GitRepository follows it: the manifests that run are the repository's.
      const source = await readSourceDirectory(dir, dirDisplay);
      if (source.declared > 0 && source.resource === undefined) {
        throw new ApiaryError('ManifestInvalid', `${dirDisplay} declares a GitRepository, so it may hold only that one, valid:`, { hints: source.errors });
      }
      if (opts.detach) return detach(ctx, dir, stateDir, opts);
      const logger = createLogger(logSink(ctx.io, process.stderr.isTTY === true), opts.verbose ? 'debug' : 'info');
      let stopRequested!: () => void;
      const stopping = new Promise<void>((resolve) => (stopRequested = resolve));
      // From here on an error nothing handled is logged, not the end of the process with its servers orphaned.
      const unguard = guardProcess({
        logger,
        stop: () => {
          ctx.exitCode = 1;
          stopRequested();
        },
      });
      // Signals are heard from before anything starts: a Ctrl-C while the controller starts (a server spawned, a
      // git fetch begun, the console still to come) stops what started, instead of ending the process and orphaning it.
      let controller: { killServersNow(): number } | undefined = undefined;
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals): void => {
        signals += 1;
        if (signals === 1) {
          logger.info('signal received, stopping (again to kill every server at once)', { signal });
          stopRequested();
          return;
        }
        // The second one: kill every server first, then go the way the signal says.
        const killed = controller?.killServersNow() ?? 0;
        logger.warn('second signal: killed every server', { signal, killed });
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        process.kill(process.pid, signal);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      // Loaded here: the controller brings the MCP SDK, which no other verb needs.
      const { Controller } = await import('../../controller/controller.js');
      const cluster = opts.runtime === 'kubernetes' ? await loadCluster(opts, ctx) : undefined;
      const started = new Controller({ dir, stateDir, keys: ctx.keys, logger, env: ctx.env, resyncMs: resyncSeconds * 1000, auth: opts.auth, ...(cluster !== undefined ? { cluster } : {}), ...(source.resource !== undefined ? { git: true } : {}) });
      controller = started;
      // Registered clients (apiary client add) follow the servers: the controller sees every change, whoever made it.
      const { clientSyncRunnable } = await import('../../clients/sync.js');
      started.add(clientSyncRunnable(started, { layout: new StateLayout(stateDir), logger, dir, stateDir }));
      // The console is one more runnable: started after everything else (it reads their state), stopped first.
      const ui: { server?: { loginLink(): Promise<string>; stop(): Promise<void> } } = {};
      if (opts.ui) {
        started.add({
          name: 'the web console',
          async start() {
            // Asked to stop while starting: the console is not started only to be stopped.
            if (signals > 0) return;
            const { ConsoleServer } = await import('../../console/server.js');
            const catalog = { paths: opts.catalog.map((p) => resolve(p)), registries: opts.registry };
            const server = new ConsoleServer({ dir, stateDir, keys: ctx.keys, logger, backend: started, version: APIARY_VERSION, catalog, ...(uiPort !== undefined ? { port: uiPort } : {}) });
            await server.start();
            ui.server = server;
          },
          stop: async () => {
            await ui.server?.stop();
          },
        });
      }
      await started.start();
      if (source.resource !== undefined) {
        const spec = source.resource.manifest.spec;
        ctx.io.out(`following git repository ${redactUrl(spec.url)} (gitrepository/${source.resource.name}); status: apiary${git !== undefined ? ` --git ${redactUrl(git)}` : ''} get sources`);
      }
      if (cluster !== undefined) ctx.io.out(`servers run on Kubernetes: context ${cluster.context}, namespace ${cluster.namespace} (${cluster.server})`);
      if (started.aggregateUrl !== undefined) ctx.io.out(`apiary MCP endpoint (every Ready server, tools named <server>__<tool>): ${started.aggregateUrl}`);
      const access = accessLine(started);
      if (access !== undefined) ctx.io.out(access);
      if (ui.server !== undefined) {
        ctx.io.out(`apiary console: ${await ui.server.loginLink()}`);
        ctx.io.out(`  (the link signs you in once, within ${LOGIN_CODE_MS / 60_000} minutes; apiary ui prints a fresh one)`);
      }
      await stopping;
      // A stop that takes long says what it waits for (a second signal still kills every server at once).
      const slow = setInterval(() => logger.warn('still stopping', started.stopProgress()), 10_000);
      slow.unref();
      await started.stop();
      clearInterval(slow);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      unguard();
    });

  program
    .command('down')
    .description('stop the controller running for this state directory (up -d or another terminal) and, with it, every server')
    .option('--timeout <DURATION>', 'how long to wait for it to stop', '60s')
    .action(async (opts: { timeout: string }, cmd: Command) => {
      const timeoutMs = requireDuration(opts.timeout, '--timeout');
      const layout = new StateLayout(ctx.locations(cmd).stateDir);
      const running = await liveController(layout);
      if (running === undefined) {
        ctx.io.err('no apiary controller is running for this state directory');
        return;
      }
      process.kill(running.pid, 'SIGTERM');
      const deadline = Date.now() + timeoutMs;
      // The lock is the truth: it is released once every server has stopped.
      while (await isControllerLockHeld(layout)) {
        if (Date.now() >= deadline) {
          throw new ApiaryError('Timeout', `the controller (pid ${running.pid}) is still stopping its servers after ${opts.timeout}`, {
            hints: ['Wait longer with --timeout, or look at its log. A controller killed with -9 leaves its servers running; the next up takes them over.'],
          });
        }
        ctx.io.status(`stopping the controller (pid ${running.pid}) and its servers...`);
        await sleep(100);
      }
      // The lock goes a moment before the process: "stopped" means gone (bounded: it has nothing left to do).
      const { isSameProcess } = await import('../../util/proc.js');
      for (let waited = 0; waited < 2_000 && isSameProcess(running.pid, running.procStart); waited += 20) await sleep(20);
      ctx.io.status(undefined);
      ctx.io.out(`apiary controller (pid ${running.pid}) stopped, and its servers with it`);
    });
}

/** The cluster `up --runtime kubernetes` runs servers on, read from the kubeconfig as kubectl reads it. */
async function loadCluster(opts: UpOptions, ctx: CliContext): Promise<KubeCluster> {
  const { KubeCluster } = await import('../../kubernetes/cluster.js');
  const { systemClock } = await import('../../util/clock.js');
  // One file in $KUBECONFIG is read from the CLI's environment; a list is merged by client-node, as kubectl does.
  const fromEnv = ctx.env['KUBECONFIG'];
  const kubeconfig = opts.kubeconfig ?? (fromEnv !== undefined && fromEnv !== '' && !fromEnv.includes(delimiter) ? fromEnv : undefined);
  return KubeCluster.load({ env: ctx.env, ...(opts.context !== undefined ? { context: opts.context } : {}), ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}), ...(kubeconfig !== undefined ? { kubeconfig } : {}) }, systemClock);
}

/** The background controller's console link, once it serves one (it starts right after the controller). */
async function printConsoleLink(ctx: CliContext, stateDir: string, pid: number): Promise<void> {
  for (const started = Date.now(); Date.now() - started < 10_000; await sleep(50)) {
    const record = await readConsoleRecord(stateDir);
    if (record?.pid === pid) {
      ctx.io.out(`apiary console: ${loginLink(record.url, await mintLoginCode(stateDir))}`);
      return;
    }
  }
  ctx.io.err('note: the web console has not started yet; apiary ui prints its link once it has');
}

/**
 * Starts `apiary up` again as a background process of its own (a new session,
 * stdio to a log file) and returns once it holds the controller lock, or says
 * why it did not start.
 */
async function detach(ctx: CliContext, dir: string, stateDir: string, opts: UpOptions): Promise<void> {
  const layout = new StateLayout(stateDir);
  const running = await liveController(layout);
  if (running !== undefined) {
    throw new ApiaryError('ControllerRunning', `another apiary controller (pid ${running.pid}, started ${running.startedAt}) is running for state directory ${stateDir}`, {
      hints: ['Stop it with: apiary down'],
    });
  }
  await ensureDir(layout.root);
  await rename(layout.controllerLogFile, layout.previousControllerLogFile).catch(() => undefined);
  const log = openSync(layout.controllerLogFile, 'a', 0o600);
  const args = [
    process.argv[1]!, 'up', '--dir', dir, '--state-dir', stateDir, '--resync', opts.resync,
    ...(opts.verbose ? ['--verbose'] : []),
    ...(opts.ui ? (opts.uiPort !== undefined ? ['--ui-port', opts.uiPort] : []) : ['--no-ui']),
    ...(opts.auth ? [] : ['--no-auth']),
    ...opts.catalog.flatMap((p) => ['--catalog', resolve(p)]),
    ...opts.registry.flatMap((u) => ['--registry', u]),
    ...(opts.runtime !== 'process' ? ['--runtime', opts.runtime] : []),
    ...(opts.context !== undefined ? ['--context', opts.context] : []),
    ...(opts.namespace !== undefined ? ['--namespace', opts.namespace] : []),
    ...(opts.kubeconfig !== undefined ? ['--kubeconfig', resolve(opts.kubeconfig)] : []),
  ];
  const child = spawn(process.execPath, [...process.execArgv, ...args], { detached: true, stdio: ['ignore', log, log], env: ctx.env });
  closeSync(log);
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  child.unref();
  const logPath = displayPath(layout.controllerLogFile);
  for (const started = Date.now(); Date.now() - started < 30_000; ) {
    if ((await liveController(layout))?.pid === child.pid) {
      ctx.io.out(`apiary controller started in the background (pid ${child.pid}); logs: ${logPath}; stop it with: apiary down`);
      if (opts.ui) await printConsoleLink(ctx, stateDir, child.pid!);
      return;
    }
    if (exited !== undefined) {
      const tail = (await readFile(layout.controllerLogFile, 'utf8').catch(() => '')).trim().split('\n').slice(-5);
      throw new ApiaryError('StartFailed', `the background controller exited (code ${exited}) before it started`, { hints: tail.length > 0 && tail[0] !== '' ? tail : [`see ${logPath}`] });
    }
    await sleep(50);
  }
  throw new ApiaryError('Timeout', `the background controller (pid ${child.pid}) did not start within 30 s; see ${logPath}`);
}

/** What the endpoints enforce, said once at start when the directory has a Gateway (without one: nothing new to say). */
function accessLine(controller: { desired: { resources(): readonly { kind: string }[] }; accessConfig(): AccessConfig | undefined }): string | undefined {
  const config = controller.accessConfig();
  if (config === undefined || !controller.desired.resources().some((r) => r.kind === 'Gateway')) return undefined;
  const mode = config.mode === 'oidc' && config.oidc !== undefined ? `oidc (issuer ${config.oidc.issuer})` : config.mode;
  return `access (gateway/default): auth mode ${mode}, ${config.policies.policies} AccessPolicy(s), audit log ${config.audit !== undefined ? 'on (apiary audit)' : 'off'}; status: apiary get gateway`;
}
