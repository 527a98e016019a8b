import type { Command } from 'commander';
import { kindLower } from '../../api/names.js';
import { ApiaryError } from '../../errors.js';
import type { CliContext } from '../context.js';
import { escapeTerminalLines } from '../escape.js';
import { controllerNotice, describe } from '../format.js';
import { internalPortOf } from '../internal-port.js';
import { query } from './get.js';

export function registerDescribe(program: Command, ctx: CliContext): void {
  program
    .command('describe')
    .description('show resources in detail: spec summary, status, conditions and events (every one of the kind without NAME)')
    .argument('<KIND>', 'mcpserver (mcp), secret, source, gateway (gw) or accesspolicy (policy)')
    .argument('[NAME]', 'resource name')
    .option('-l, --selector <SELECTOR>', 'only resources whose labels match, e.g. team=tools')
    .action(async (kind: string, name: string | undefined, opts: { selector?: string }, cmd: Command) => {
      const { kinds, selector, view, objects, stateDir } = await query(ctx, cmd, kind, name, opts.selector);
      if (objects.length === 0) throw new ApiaryError('NotFound', `no ${kinds.map((k) => `${kindLower(k)}s`).join(' or ')} found${selector.length > 0 ? ' matching the selector' : ''}`);
      // One note about the controller, after everything, however many resources.
      const now = Date.now();
      const notice = controllerNotice(view, now);
      const notes = [...view.stateProblems, ...(notice ? [notice] : [])].map((n) => `\n\nNote: ${escapeTerminalLines(n)}`).join('');
      const internal = await Promise.all(objects.map((o) => (o.resource?.kind === 'MCPServer' ? internalPortOf(stateDir, o.name, o.resource.manifest.spec) : undefined)));
      ctx.io.out(objects.map((o, i) => describe(o, view, now, internal[i])).join('\n\n\n') + notes);
    });
}
