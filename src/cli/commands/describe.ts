import type { Command } from 'commander';
import { readStateView } from '../../state/view.js';
import type { CliContext } from '../context.js';
import { describe } from '../format.js';
import { parseKinds, select } from './get.js';

export function registerDescribe(program: Command, ctx: CliContext): void {
  program
    .command('describe')
    .description('show one resource: spec summary, status, conditions and events')
    .argument('<KIND>', 'mcpserver (mcp) or secret')
    .argument('<NAME>', 'resource name')
    .action(async (kind: string, name: string, _opts: unknown, cmd: Command) => {
      const kinds = parseKinds(kind);
      const { dir, stateDir } = ctx.locations(cmd);
      const view = await readStateView(dir, stateDir);
      const [object] = select(view, kinds, name);
      ctx.io.out(describe(object!, view, Date.now()));
    });
}
