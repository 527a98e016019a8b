import type { Command } from 'commander';
import { requireServers, setSuspend } from '../../manifests/resource-edits.js';
import { liveController } from '../../state/controller-lock.js';
import { StateLayout } from '../../state/layout.js';
import { requestRestart } from '../../state/requests.js';
import { readStateView } from '../../state/view.js';
import { findCondition, type MCPServerStatus } from '../../api/status.js';
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
      await requireServers(dir, names);
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

  for (const [verb, suspend] of [['suspend', true], ['resume', false]] as const) {
    program
      .command(verb)
      .description(suspend ? 'stop servers and keep them listed (sets spec.suspend: true in each manifest, keeping comments)' : 'start suspended servers again (clears spec.suspend in each manifest)')
      .argument('<NAME...>', 'server names')
      .option('-o, --output <format>', 'text or json', 'text')
      .action(async (names: string[], opts: { output: string }, cmd: Command) => {
        const { dir } = ctx.locations(cmd);
        await requireServers(dir, names);
        const results = [];
        for (const name of names) {
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
