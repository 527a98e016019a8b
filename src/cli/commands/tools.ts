/**
 * `apiary tools lock|diff|approve` (DESIGN.md section 10): pinning the tool
 * definitions servers offer in tools.lock.yaml, at the manifest directory's
 * root. They read what each server listed at its last start as the gateway
 * saw it, before any filter (`<state>/tools/NAME.json`): a withheld tool is
 * absent from the endpoint, so the endpoint cannot show what changed. None
 * needs a running controller; a running one takes a new lock at once.
 */
import type { Command } from 'commander';
import { createTwoFilesPatch } from 'diff';
import { approveTools, canonicalJson, digests, describeDrift, hasDrift, lockEntry, toolDigest, toolDrift, withEntry, type LockedTool, type ToolDefinition, type ToolsLock } from '../../api/tool-lock.js';
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
  return loaded.resources.filter((r) => r.kind === 'MCPServer').map((r) => r.name);
}

async function listedTools(stateDir: string, name: string): Promise<ToolDefinition[]> {
  const tools = await readObservedTools(new StateLayout(stateDir), name);
  if (tools === undefined) {
    throw new ApiaryError('NotFound', `mcpserver "${name}" has not listed its tools yet: apiary keeps what a server lists when it starts`, { hints: ['Start it with: apiary up, and wait for it: apiary wait mcpserver/' + name + ' --for=condition=Ready'] });
  }
  return tools;
}

async function checkedServer(dir: string, name: string): Promise<void> {
  if (!(await declaredServers(dir)).includes(name)) throw new ApiaryError('NotFound', `mcpserver "${name}" not found in ${dir}`);
}

/** What `tools diff` compares of a tool: its description, then its schemas and annotations as sorted, indented JSON. */
function readable(tool: ToolDefinition, descriptionOnly = false): string {
  const parts = [`description:\n${tool.description ?? ''}\n`];
  if (descriptionOnly) return parts[0]!;
  for (const field of ['inputSchema', 'outputSchema', 'annotations'] as const) {
    if (tool[field] !== undefined) parts.push(`${field}:\n${JSON.stringify(JSON.parse(canonicalJson(tool[field])), null, 2)}\n`);
  }
  return parts.join('');
}

/**
 * The text diff of one tool. The pinned side is the approved definition
 * kept in the state directory when its digest is the lock's; otherwise (a
 * lock from git, made on another machine) only the descriptions are
 * compared, and a note says the schemas differ when the descriptions do not.
 */
function toolPatch(name: string, tool: string, pin: LockedTool | undefined, approved: ToolDefinition | undefined, now: ToolDefinition | undefined): string {
  const whole = pin === undefined || (approved !== undefined && toolDigest(approved) === pin.digest);
  const before = pin === undefined ? '' : whole ? readable(approved!) : readable({ name: tool, description: pin.description }, true);
  const after = now === undefined ? '' : readable(now, !whole);
  const note = !whole && now !== undefined && before === after ? '(the description is the same: the schemas or annotations changed; the approved ones are not kept in this state directory to show)\n' : '';
  return createTwoFilesPatch(`${TOOLS_LOCK_FILE} ${name}/${tool}`, `listed ${name}/${tool}`, before, after, '', '', { context: 3 }) + note;
}

export function registerTools(program: Command, ctx: CliContext): void {
  const tools = program.command('tools').description(`pin the tool definitions servers offer (${TOOLS_LOCK_FILE} at the manifest directory's root), see what changed, approve it`);

  tools
    .command('lock')
    .description(`write ${TOOLS_LOCK_FILE}: per server, per tool a digest of its name, description, schemas and annotations, as the server listed them at its last start (NAME: only that server's entry)`)
    .argument('[NAME]', 'server name (default: every server that has listed its tools)')
    .action(async (name: string | undefined, _opts: unknown, cmd: Command) => {
      const { dir, stateDir } = ctx.locations(cmd);
      await refuseGitSourced(dir);
      const layout = new StateLayout(stateDir);
      let names: string[];
      if (name !== undefined) {
        await checkedServer(dir, name);
        names = [name];
      } else {
        names = [];
        for (const n of (await declaredServers(dir)).sort()) {
          if ((await readObservedTools(layout, n)) !== undefined) names.push(n);
          else ctx.io.err(`mcpserver "${n}" has not listed its tools yet: not locked\n`);
        }
      }
      let lock: ToolsLock = (await readToolsLock(dir)) ?? { servers: {} };
      for (const n of names) {
        const listed = await listedTools(stateDir, n);
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
      await checkedServer(dir, name);
      const entry = (await readToolsLock(dir))?.servers[name];
      if (entry === undefined) throw new ApiaryError('NotFound', `mcpserver "${name}" has no entry in ${TOOLS_LOCK_FILE}: its tools are not pinned`, { hints: [`Pin them with: apiary tools lock ${name}`] });
      const listed = await listedTools(stateDir, name);
      const approved = (await readObservedTools(new StateLayout(stateDir), name, 'approved')) ?? [];
      const drift = toolDrift(entry, digests(listed));
      if (!hasDrift(drift)) {
        ctx.io.out(`mcpserver/${name}: ${describeDrift(drift)}\n`);
        return;
      }
      ctx.io.out(`mcpserver/${name}: ${describeDrift(drift)}\n`);
      for (const tool of [...drift.changed, ...drift.added, ...drift.removed].sort()) {
        ctx.io.out(toolPatch(name, tool, entry[tool], approved.find((t) => t.name === tool), listed.find((t) => t.name === tool)));
      }
      ctx.exitCode = 1;
    });

  tools
    .command('approve')
    .description(`accept what a server lists now into ${TOOLS_LOCK_FILE} (TOOL: only that tool's pin); a running apiary lists the tool to clients again at once`)
    .argument('<NAME>', 'server name')
    .argument('[TOOL]', 'tool name (default: every tool of the server)')
    .action(async (name: string, tool: string | undefined, _opts: unknown, cmd: Command) => {
      const { dir, stateDir } = ctx.locations(cmd);
      await refuseGitSourced(dir);
      await checkedServer(dir, name);
      const listed = await listedTools(stateDir, name);
      const before = (await readToolsLock(dir)) ?? { servers: {} };
      if (tool !== undefined && before.servers[name]?.[tool] === undefined && !listed.some((t) => t.name === tool)) {
        throw new ApiaryError('NotFound', `mcpserver "${name}" neither lists nor pins a tool "${tool}"`);
      }
      const lock = approveTools(before, name, listed, tool);
      const layout = new StateLayout(stateDir);
      const approved = (await readObservedTools(layout, name, 'approved')) ?? [];
      const kept = tool === undefined ? listed : [...approved.filter((t) => t.name !== tool), ...listed.filter((t) => t.name === tool)];
      await writeObservedTools(layout, name, kept, 'approved');
      const written = await writeToolsLock(dir, lock);
      const left = toolDrift(lock.servers[name] ?? {}, digests(listed));
      ctx.io.out(`${written.written ? 'approved' : 'already approved:'} ${tool === undefined ? `every tool of mcpserver/${name}` : `mcpserver/${name} tool "${tool}"`} in ${written.path}${hasDrift(left) ? `; still: ${describeDrift(left)}` : ''}\n`);
    });
}
