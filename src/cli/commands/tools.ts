/**
 * `apiary tools lock|diff|approve` (DESIGN.md section 10): pinning the tool
 * definitions servers offer in tools.lock.yaml, at the manifest directory's
 * root. They read what each server listed at its last start as the gateway
 * saw it, before any filter (`<state>/tools/NAME.json`): a withheld tool is
 * absent from the endpoint, so the endpoint cannot show what changed. None
 * needs a running controller; a running one takes a new lock at once.
 */
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { lockEntry, withEntry, type ToolsLock } from '../../api/tool-lock.js';
import { approveServerTools, listedTools, requireServer, serverToolsDrift } from '../../console/tools-drift.js';
import { underDirectoryLock } from '../../console/locked-write.js';
import { ApiaryError } from '../../errors.js';
import { loadDirectory } from '../../manifests/loader.js';
import { readToolsLock, TOOLS_LOCK_FILE, writeToolsLock } from '../../manifests/tools-lock.js';
import { refuseGitSourced } from '../../source/directory.js';
import { StateLayout } from '../../state/layout.js';
import { readObservedTools, writeObservedTools } from '../../state/observed-tools.js';
import type { CliContext } from '../context.js';

/** The servers the directory declares (every transport is judged: stdio at the bridge, HTTP and hosted at the proxy). */
async function declaredServers(dir: string): Promise<string[]> {
  const loaded = await loadDirectory(dir);
  return loaded.resources.flatMap((r) => (r.kind === 'MCPServer' ? [r.name] : [])).sort();
}

/** The account the CLI runs as; the environment's word for it where the system has no entry for the uid (a container). */
function cliUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env['USER'] ?? process.env['LOGNAME'] ?? `uid ${process.getuid?.() ?? '?'}`;
  }
}

export function registerTools(program: Command, ctx: CliContext): void {
  const tools = program.command('tools').description(`pin the tool definitions servers offer (${TOOLS_LOCK_FILE} at the manifest directory's root), see what changed, approve it`);

  tools
    .command('lock')
    .description(`write ${TOOLS_LOCK_FILE}: per server, per tool a digest of its name, description, schemas and annotations, as the server listed them at its last start (NAME: only that server's entry)`)
    .argument('[NAME]', 'server name (default: every stdio server that has listed its tools)')
    .action(async (name: string | undefined, _opts: unknown, cmd: Command) => {
      const { dir, stateDir } = ctx.locations(cmd);
      await refuseGitSourced(dir);
      const layout = new StateLayout(stateDir);
      let names: string[];
      if (name !== undefined) {
        requireServer(await loadDirectory(dir), dir, name);
        names = [name];
      } else {
        names = [];
        for (const n of await declaredServers(dir)) {
          if ((await readObservedTools(layout, n)) !== undefined) names.push(n);
          else ctx.io.err(`mcpserver "${n}" has not listed its tools yet: not locked\n`);
        }
      }
      let lock: ToolsLock = (await readToolsLock(dir)) ?? { servers: {} };
      for (const n of names) {
        const listed = await listedTools(layout, n);
        lock = withEntry(lock, n, lockEntry(listed));
        await writeObservedTools(layout, n, listed, 'approved');
      }
      const written = await writeToolsLock(dir, lock);
      const count = names.reduce((sum, n) => sum + Object.keys(lock.servers[n] ?? {}).length, 0);
      ctx.io.out(`${written.written ? 'wrote' : 'unchanged:'} ${written.path}: ${names.length} server(s), ${count} tool(s) pinned${written.backup !== undefined ? `; the previous file kept as ${written.backup}` : ''}\n`);
    });

  tools
    .command('diff')
    .description(`what the tools a server lists differ in from its entry in ${TOOLS_LOCK_FILE}: a text diff of descriptions and schemas (exit 1 when they differ)`)
    .argument('<NAME>', 'server name')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { dir, stateDir } = ctx.locations(cmd);
      requireServer(await loadDirectory(dir), dir, name);
      const drift = await serverToolsDrift(dir, new StateLayout(stateDir), name);
      if (!drift.pinned) throw new ApiaryError('NotFound', `mcpserver "${name}" has no entry in ${TOOLS_LOCK_FILE}: its tools are not pinned`, { hints: [`Pin them with: apiary tools lock ${name}`] });
      ctx.io.out(`mcpserver/${name}: ${drift.summary}\n`);
      for (const tool of drift.tools) ctx.io.out(tool.patch);
      if (drift.tools.length > 0) ctx.exitCode = 1;
    });

  tools
    .command('approve')
    .description(`accept what a server lists now into ${TOOLS_LOCK_FILE} (TOOL: only that tool's pin); a running apiary lists the tool to clients again at once`)
    .argument('<NAME>', 'server name')
    .argument('[TOOL]', 'tool name (default: every tool of the server)')
    .action(async (name: string, tool: string | undefined, _opts: unknown, cmd: Command) => {
      const { dir, stateDir } = ctx.locations(cmd);
      await refuseGitSourced(dir);
      // The audit log names the person at the terminal (the account the CLI runs as).
      const who = { kind: 'user' as const, user: cliUser() };
      const done = await underDirectoryLock(dir, (loaded) => approveServerTools(dir, loaded, new StateLayout(stateDir), who, name, tool));
      const left = done.drifted ? `; still: ${done.summary}` : '';
      ctx.io.out(`${done.written ? 'approved' : 'already approved:'} ${tool === undefined ? `every tool of mcpserver/${name}` : `mcpserver/${name} tool "${tool}"`} in ${done.file}${left}\n`);
    });
}
