import type { Command } from 'commander';
import { findCondition, type MCPServerStatus } from '../../api/status.js';
import { ApiaryError } from '../../errors.js';
import { readStateView } from '../../state/view.js';
import type { CliContext } from '../context.js';
import { paint } from '../io.js';
import { clientConfig, type ClientKind } from '../../mcp/client-config.js';
import { readEndpointToken } from '../../mcp/endpoint-token.js';
import { StateLayout } from '../../state/layout.js';
import { liveController } from '../../state/controller-lock.js';
import { AGGREGATE_PORT_KEY } from '../../mcp/ports.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export function registerClient(program: Command, ctx: CliContext): void {
  const client = program.command('client').description('connect MCP clients to the servers apiary runs');
  client
    .command('config')
    .description('print the JSON a client needs to reach every Ready server')
    .option('--client <NAME>', 'claude, cursor or vscode', 'claude')
    .option('--aggregate', "one entry, apiary's aggregate endpoint, serving every Ready server's tools as <server>__<tool>")
    .action(async (opts: { client: string; aggregate?: boolean }, cmd: Command) => {
      if (!['claude', 'cursor', 'vscode'].includes(opts.client)) throw new ApiaryError('Usage', `unknown client "${opts.client}"; use claude, cursor or vscode`);
      const { dir, stateDir } = ctx.locations(cmd);
      if (opts.aggregate === true) {
        const layout = new StateLayout(stateDir);
        if ((await liveController(layout)) === undefined) throw new ApiaryError('NotFound', 'no apiary controller is running for this state directory', { hints: ['Start one with: apiary up'] });
        const port = (JSON.parse(await readFile(join(stateDir, 'ports.json'), 'utf8').catch(() => '{}')) as Record<string, number>)[AGGREGATE_PORT_KEY];
        if (port === undefined) throw new ApiaryError('NotFound', 'the running controller serves no aggregate endpoint (see its log)');
        ctx.io.out(JSON.stringify(clientConfig(opts.client as ClientKind, { apiary: `http://127.0.0.1:${port}/mcp` }, await readEndpointToken(layout)), null, 2));
        return;
      }
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
