import type { Command } from 'commander';
import type { MCPServerStatus } from '../../api/status.js';
import { ApiaryError } from '../../errors.js';
import { readEndpointToken } from '../../mcp/endpoint-token.js';
import { runStdioShim } from '../../mcp/stdio-shim.js';
import { StateLayout } from '../../state/layout.js';
import { readStateView } from '../../state/view.js';
import type { CliContext } from '../context.js';

/**
 * Where NAME's endpoint is: its status URL, else the port its manifest sets
 * (the URL it will have once apiary serves it). A client may start the shim
 * before apiary is up: its requests are then answered with an error, and the
 * shim keeps going.
 */
async function endpointOf(dir: string, stateDir: string, name: string): Promise<URL> {
  const view = await readStateView(dir, stateDir);
  const found = view.objects.find((o) => o.kind === 'MCPServer' && o.name === name);
  if (found === undefined) throw new ApiaryError('NotFound', `mcpserver "${name}" not found in ${dir}`);
  const url = (found.object.status as MCPServerStatus | undefined)?.url;
  if (url !== undefined && url.endsWith('/mcp')) return new URL(url);
  const port = found.resource?.kind === 'MCPServer' ? found.resource.manifest.spec.port : undefined;
  if (port !== undefined) return new URL(`http://127.0.0.1:${port}/mcp`);
  throw new ApiaryError('NotFound', `mcpserver "${name}" has no endpoint yet`, { hints: ['Start apiary with: apiary up'] });
}

export function registerProxy(program: Command, ctx: CliContext): void {
  program
    .command('proxy')
    .description("serve one server over stdio, as a pipe to apiary's endpoint for it (for clients that only start processes, such as Claude Desktop)")
    .argument('<NAME>', 'server name')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { dir, stateDir } = ctx.locations(cmd);
      const url = await endpointOf(dir, stateDir, name);
      const token = await readEndpointToken(new StateLayout(stateDir));
      await runStdioShim({ url, ...(token !== undefined ? { token } : {}), onError: (message) => ctx.io.err(`apiary proxy ${name}: ${message}`) });
    });
}
