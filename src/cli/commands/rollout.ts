import type { Command } from 'commander';
import { requireServers, setSuspend } from '../../manifests/resource-edits.js';
import { liveController } from '../../state/controller-lock.js';
import { StateLayout } from '../../state/layout.js';
import { requestReconcile, requestRestart } from '../../state/requests.js';
import { kindFromAlias } from '../../api/names.js';
import { ApiaryError } from '../../errors.js';
import { requireDuration } from '../../util/duration.js';
import type { GitRepositoryResource } from '../../manifests/resource.js';
import { readSourceDirectory, refuseGitSourced, runningManifestDir } from '../../source/directory.js';
import { redactUrl } from '../../util/redact-url.js';
import { readStateView } from '../../state/view.js';
import { StatusStore } from '../../state/status-store.js';
import { findCondition, type GitRepositoryStatus, type MCPServerStatus } from '../../api/status.js';
import type { CliContext } from '../context.js';
import { paint } from '../io.js';
import { displayPath } from '../paths.js';

/** One object for one name (as before), a list for several, as kubectl prints them. */
function print(ctx: CliContext, output: string, results: { json: Record<string, unknown>; text: string }[]): void {
  if (output === 'json') {
    const objects = results.map((r) => r.json);
    ctx.io.out(JSON.stringify(objects.length === 1 ? objects[0] : objects, null, 2));
  } else {
    for (const r of results) ctx.io.out(r.text);
  }
}

export function registerRollout(program: Command, ctx: CliContext): void {
  program
    .command('restart')
    .description('roll servers with the same manifest, like kubectl rollout restart: a new process beside each, switched to once it answers (strategy Recreate: stop, then start)')
    .argument('<NAME...>', 'server names')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (names: string[], opts: { output: string }, cmd: Command) => {
      const { dir, stateDir } = ctx.locations(cmd);
      await requireServers(await runningManifestDir(dir, stateDir), names);
      const layout = new StateLayout(stateDir);
      const results = [];
      for (const name of names) {
        const request = await requestRestart(layout, name);
        results.push({ json: { kind: 'MCPServer', name, restartRequestedAt: request.requestedAt }, text: `mcpserver/${name} restart requested` });
      }
      print(ctx, opts.output, results);
      if ((await liveController(layout)) === undefined) {
        ctx.io.err(paint(ctx.io, 'yellow', 'warning: no apiary controller is running for this state directory; the restart happens when one starts'));
        return;
      }
      // A server that could not start again is not stopped: say so, and what the restart waits for.
      const view = await readStateView(dir, stateDir);
      for (const name of names) {
        const status = view.objects.find((o) => o.kind === 'MCPServer' && o.name === name)?.object.status as MCPServerStatus | undefined;
        const secrets = findCondition(status?.conditions, 'SecretsResolved');
        if (status?.phase === 'Running' && secrets?.status === 'False') {
          ctx.io.err(paint(ctx.io, 'yellow', `warning: mcpserver/${name} is not stopped while a secret it needs is missing (${secrets.message.split(';')[0]}); the restart happens once it is back`));
        }
      }
    });

  program
    .command('reconcile')
    .description('fetch the git repository now, like flux reconcile source git: waits for the fetch and prints the revision')
    .argument('<source>', 'source (or gitrepository)')
    .argument('[NAME]', "the GitRepository's name (default: the one the directory follows)")
    .option('--timeout <DURATION>', 'how long to wait for the fetch', '2m')
    .action(async (kind: string, name: string | undefined, opts: { timeout: string }, cmd: Command) => {
      if (kindFromAlias(kind) !== 'GitRepository') throw new ApiaryError('Usage', `reconcile takes "source" (the git repository apiary follows); got "${kind}"`);
      const { dir, dirDisplay, stateDir } = ctx.locations(cmd);
      const source = await requireSource(dir, dirDisplay, name);
      if (source.manifest.spec.suspend === true) {
        throw new ApiaryError('GitOperationFailed', `gitrepository/${source.name} is suspended: nothing is fetched`, { hints: ['Resume it first: apiary resume source'] });
      }
      const layout = new StateLayout(stateDir);
      const controller = await liveController(layout);
      if (controller === undefined) {
        throw new ApiaryError('NotFound', `no apiary controller is running for ${dirDisplay}; nothing can fetch`, { hints: ['Start one: apiary up' + (dirDisplay !== dir ? ` --git ${dirDisplay}` : '')] });
      }
      const request = await requestReconcile(layout);
      ctx.io.status(`asking the controller (pid ${controller.pid}) to fetch ${redactUrl(source.manifest.spec.url)}...`);
      const deadline = Date.now() + requireDuration(opts.timeout, '--timeout');
      // Only the source's own status file is read while waiting: the repository may hold thousands of manifests.
      const store = new StatusStore(layout);
      for (;;) {
        const record = await store.read('GitRepository', source.name);
        const status = record?.status as GitRepositoryStatus | undefined;
        if (status?.lastHandledReconcileAt !== undefined && status.lastHandledReconcileAt >= request.requestedAt && record?.writtenBy.runId === controller.runId) {
          const ready = findCondition(status.conditions, 'Ready');
          if (status.phase === 'Suspended') {
            throw new ApiaryError('GitOperationFailed', `gitrepository/${source.name} is suspended: nothing was fetched`, { hints: ['Resume it first: apiary resume source'] });
          }
          if (ready?.status === 'True') {
            ctx.io.out(`gitrepository/${source.name} fetched revision ${status.artifact?.revision ?? '(none)'}`);
            return;
          }
          throw new ApiaryError('GitOperationFailed', `gitrepository/${source.name}: ${ready?.reason ?? 'NotReady'}: ${ready?.message ?? status.message ?? 'not ready'}`);
        }
        if (Date.now() >= deadline) throw new ApiaryError('Timeout', `gitrepository/${source.name}: the controller has not finished the fetch after ${opts.timeout}`, { hints: ['apiary describe source shows where it is'] });
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    });

  for (const [verb, suspend] of [['suspend', true], ['resume', false]] as const) {
    program
      .command(verb)
      .description(suspend ? 'stop servers and keep them listed (sets spec.suspend: true in each manifest, keeping comments); suspend source: stop fetching the git repository' : 'start suspended servers again (clears spec.suspend in each manifest); resume source: fetch the git repository again')
      .argument('<NAME...>', 'server names, or: source [NAME]')
      .option('-o, --output <format>', 'text or json', 'text')
      .action(async (names: string[], opts: { output: string }, cmd: Command) => {
        const { dir, dirDisplay, stateDir } = ctx.locations(cmd);
        if (names.length <= 2 && kindFromAlias(names[0]!) === 'GitRepository') {
          const source = await requireSource(dir, dirDisplay, names[1]);
          const result = await setSuspend(dir, source.name, suspend, 'GitRepository');
          const layout = new StateLayout(stateDir);
          // Wake the controller: it reads the source's manifest at each fetch.
          if (result.changed && (await liveController(layout)) !== undefined) await requestReconcile(layout);
          const state = suspend ? 'suspended' : 'resumed';
          print(ctx, opts.output, [{
            json: { kind: 'GitRepository', name: source.name, suspend, changed: result.changed, file: displayPath(result.file) },
            text: result.changed ? `gitrepository/${source.name} ${state}${suspend ? ': no fetch until apiary resume source; what runs stays as it is' : ''}` : `gitrepository/${source.name} already ${suspend ? 'suspended' : 'resumed (not suspended)'}`,
          }]);
          return;
        }
        await requireServers(await runningManifestDir(dir, stateDir), names);
        const results = [];
        for (const name of names) {
          await refuseGitSourced(dir);
          const result = await setSuspend(dir, name, suspend);
          const state = suspend ? 'suspended' : 'resumed';
          results.push({
            json: { kind: 'MCPServer', name, suspend, changed: result.changed, file: displayPath(result.file) },
            text: result.changed ? `mcpserver/${name} ${state} (${displayPath(result.file)})` : `mcpserver/${name} already ${suspend ? 'suspended' : 'running (not suspended)'}`,
          });
        }
        print(ctx, opts.output, results);
      });
  }
}

/** The GitRepository the directory follows (and is named NAME, if given). */
async function requireSource(dir: string, dirDisplay: string, name: string | undefined): Promise<GitRepositoryResource> {
  const source = await readSourceDirectory(dir).catch(() => undefined);
  if (source === undefined || source.declared === 0) {
    throw new ApiaryError('NotFound', `${dirDisplay} follows no git repository`, { hints: ['Follow one with: apiary up --git URL, or a GitRepository manifest in the directory'] });
  }
  if (source.resource === undefined) throw new ApiaryError('ManifestInvalid', `the GitRepository in ${dirDisplay} is invalid: ${source.errors.join('; ')}`);
  if (name !== undefined && name !== source.resource.name) throw new ApiaryError('NotFound', `gitrepository/${name} not found: ${dirDisplay} follows gitrepository/${source.resource.name}`);
  return source.resource;
}
