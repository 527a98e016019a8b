import type { Command } from 'commander';
import { ApiaryError } from '../../errors.js';
import { loadDirectory } from '../../manifests/loader.js';
import { setSuspend } from '../../manifests/resource-edits.js';
import { liveController } from '../../state/controller-lock.js';
import { StateLayout } from '../../state/layout.js';
import { requestRestart } from '../../state/requests.js';
import type { CliContext } from '../context.js';
import { paint } from '../io.js';
import { displayPath } from '../paths.js';

function print(ctx: CliContext, output: string, json: Record<string, unknown>, text: string): void {
  ctx.io.out(output === 'json' ? JSON.stringify(json, null, 2) : text);
}

export function registerRollout(program: Command, ctx: CliContext): void {
  program
    .command('restart')
    .description('roll a server: stop it and start it again with the same manifest (like kubectl rollout restart)')
    .argument('<NAME>', 'server name')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (name: string, opts: { output: string }, cmd: Command) => {
      const { dir, stateDir } = ctx.locations(cmd);
      const loaded = await loadDirectory(dir);
      if (!loaded.documents.some((d) => d.kind === 'MCPServer' && d.name === name)) {
        throw new ApiaryError('NotFound', `mcpserver/${name} not found in ${dir}`);
      }
      const layout = new StateLayout(stateDir);
      const request = await requestRestart(layout, name);
      print(ctx, opts.output, { kind: 'MCPServer', name, restartRequestedAt: request.requestedAt }, `mcpserver/${name} restart requested`);
      if ((await liveController(layout)) === undefined) {
        ctx.io.err(paint(ctx.io, 'yellow', 'warning: no apiary controller is running for this state directory; the restart happens when one starts'));
      }
    });

  for (const [verb, suspend] of [['suspend', true], ['resume', false]] as const) {
    program
      .command(verb)
      .description(suspend ? 'stop a server and keep it listed (sets spec.suspend: true in its manifest, keeping comments)' : 'start a suspended server again (clears spec.suspend in its manifest)')
      .argument('<NAME>', 'server name')
      .option('-o, --output <format>', 'text or json', 'text')
      .action(async (name: string, opts: { output: string }, cmd: Command) => {
        const { dir } = ctx.locations(cmd);
        const result = await setSuspend(dir, name, suspend);
        const state = suspend ? 'suspended' : 'resumed';
        print(
          ctx,
          opts.output,
          { kind: 'MCPServer', name, suspend, changed: result.changed, file: displayPath(result.file) },
          result.changed ? `mcpserver/${name} ${state} (${displayPath(result.file)})` : `mcpserver/${name} already ${suspend ? 'suspended' : 'running (not suspended)'}`,
        );
      });
  }
}
