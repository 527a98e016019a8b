import type { Command } from 'commander';
import { findCondition, type MCPServerStatus } from '../../api/status.js';
import { ApiaryError } from '../../errors.js';
import { readStateView } from '../../state/view.js';
import type { CliContext } from '../context.js';
import { paint } from '../io.js';
import { clientConfig, type ClientKind } from '../../mcp/client-config.js';
import { readEndpointToken } from '../../mcp/endpoint-token.js';
import { StateLayout } from '../../state/layout.js';

export function registerClient(program: Command, ctx: CliContext): void {
  const client = program.command('client').description('connect MCP clients to the servers apiary runs');
  client
    .command('config')
    .description('print the JSON a client needs to reach every Ready server')
    .option('--client <NAME>', 'claude, cursor or vscode', 'claude')
    .action(async (opts: { client: string }, cmd: Command) => {
      if (!['claude', 'cursor', 'vscode'].includes(opts.client)) throw new ApiaryError('Usage', `unknown client "${opts.client}"; use claude, cursor or vscode`);
      const { dir, stateDir } = ctx.locations(cmd);
      const view = await readStateView(dir, stateDir);
      const servers: Record<string, string> = {};
      const skipped: string[] = [];
      for (const o of view.objects) {
        if (o.kind !== 'MCPServer') continue;
        const status = o.object.status as MCPServerStatus | undefined;
        if (view.controller !== undefined && status?.url && findCondition(status.conditions, 'Ready')?.status === 'True') servers[o.name] = status.url;
        else skipped.push(o.name);
      }
      const token = await readEndpointToken(new StateLayout(stateDir));
      ctx.io.out(JSON.stringify(clientConfig(opts.client as ClientKind, servers, token), null, 2));
      if (skipped.length > 0) ctx.io.err(paint(ctx.io, 'yellow', `note: not Ready, left out: ${skipped.join(', ')}${view.controller ? '' : ' (no apiary controller is running)'}`));
    });
}
