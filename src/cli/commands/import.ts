import type { Command } from 'commander';
import { resolve } from 'node:path';
import { createTwoFilesPatch } from 'diff';
import { ApiaryError } from '../../errors.js';
import { IMPORT_CLIENTS, importClient, importTargets, redacted, sealedOriginalPath, undoImport, type ImportClient, type TargetResult } from '../../clients/import.js';
import { refuseGitSourced } from '../../source/directory.js';
import { StateLayout } from '../../state/layout.js';
import type { CliContext } from '../context.js';
import { paint } from '../io.js';
import { displayPath } from '../paths.js';

interface ImportFlags {
  client?: string;
  file?: string;
  project?: string;
  only?: string[];
  dryRun?: boolean;
  undo?: boolean;
  force?: boolean;
  sealAll?: boolean;
  plain: string[];
  rename?: boolean;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), ...value.split(',').filter(Boolean)];

export function registerImport(program: Command, ctx: CliContext): void {
  program
    .command('import')
    .description("bring a client's MCP servers into apiary: credentials sealed into secrets, the client pointed at apiary's endpoints, its file as it was kept only sealed")
    .requiredOption('--client <CLIENT>', IMPORT_CLIENTS.join(', '))
    .option('--file <PATH>', "the client's file, if not where the client keeps it")
    .option('--project <DIR>', "the servers of one project (Claude Code: DIR/.mcp.json and DIR's entry in ~/.claude.json; Cursor: DIR/.cursor/mcp.json; VS Code: DIR/.vscode/mcp.json)")
    .option('--only <NAME,...>', 'only these entries (as the client names them)', collect, undefined as string[] | undefined)
    .option('--dry-run', 'print the manifests (credentials redacted) and the change to the client file; write nothing')
    .option('--undo', 'give the client file back as it was before the last import, byte for byte (the servers stay in apiary)')
    .option('--force', 'with --undo: even when the file was changed since the import (those changes are lost)')
    .option('--seal-all', 'seal every value, even those that are plainly not credentials')
    .option('--plain <VAR>', 'keep this variable (or header) plain (repeatable, or comma-separated)', collect, [])
    .option('--rename', 'import an entry whose name a server already has under another name (<name>-<client>), instead of skipping it')
    .action(async (opts: ImportFlags, cmd: Command) => {
      const client = opts.client as ImportClient;
      if (!(IMPORT_CLIENTS as readonly string[]).includes(client)) throw new ApiaryError('Usage', `unknown client "${opts.client}"; use ${IMPORT_CLIENTS.join(', ')}`);
      const { dir, stateDir } = ctx.locations(cmd);
      const layout = new StateLayout(stateDir);
      const targets = importTargets(client, { ...(opts.file !== undefined ? { file: opts.file } : {}), ...(opts.project !== undefined ? { project: opts.project } : {}) }, ctx.env);
      if (opts.undo === true) return undo(ctx, client, layout, targets, opts.force === true);
      if (opts.dryRun !== true) await refuseGitSourced(dir);
      const launcher = { command: process.execPath, args: process.argv[1] !== undefined ? [process.argv[1]] : [] };
      const results = await importClient({ dir, layout, keys: ctx.keys, env: ctx.env, launcher }, client, targets, {
        ...(opts.only !== undefined ? { only: opts.only } : {}),
        plain: opts.plain,
        sealAll: opts.sealAll === true,
        rename: opts.rename === true,
        dryRun: opts.dryRun === true,
        environment: ctx.env,
        ...(opts.project !== undefined ? { workspace: resolve(opts.project) } : {}),
      });
      for (const result of results) report(ctx, client, result, opts.dryRun === true);
      const found = new Set(results.flatMap((r) => r.found));
      for (const name of opts.only ?? []) if (!found.has(name)) ctx.io.err(paint(ctx.io, 'yellow', `warning: --only names "${name}", which no ${client} file here has (it has: ${[...found].join(', ') || 'none'})`));
      if (results.every((r) => r.missing === true)) throw new ApiaryError('NotFound', `no ${client} configuration found at ${results.map((r) => displayPath(r.target.file)).join(' or ')}`, { hints: ['--file PATH names another file'] });
    });
}

async function undo(ctx: CliContext, client: ImportClient, layout: StateLayout, targets: ReturnType<typeof importTargets>, force: boolean): Promise<void> {
  let restored = 0;
  for (const target of targets) {
    const shown = displayPath(target.file);
    const result = await undoImport({ keys: ctx.keys, layout }, target, { force });
    if (result.outcome === 'nothing') continue;
    if (result.outcome === 'changed') {
      throw new ApiaryError('Usage', `${shown} was changed since apiary imported from it; nothing was given back`, { hints: ['--force gives back the file as it was before the import all the same (the changes made since are lost)'] });
    }
    restored++;
    if (result.outcome === 'entries') {
      const { restored: back, left } = result.entries!;
      ctx.io.out(`${shown}: changed since the import, so only the imported entries were given back (${back.join(', ')}); everything else stays as it is now (--force gives back the whole file as it was)`);
      if (left.length > 0) ctx.io.err(paint(ctx.io, 'yellow', `warning: ${shown}: ${left.join(', ')} changed since apiary wrote them; left as they are`));
      continue;
    }
    ctx.io.out(`${shown}: back as it was before the import${result.left ? ` (${result.left} earlier import(s) can be undone too)` : ''}; the servers imported stay in apiary (apiary delete mcpserver NAME removes one)`);
  }
  if (restored === 0) throw new ApiaryError('NotFound', `nothing of an import from ${client} to undo at ${targets.map((t) => displayPath(t.file)).join(' or ')}`);
}

/** What happened in one file: servers, where each value went (never a value), and the client's change. */
function report(ctx: CliContext, client: ImportClient, result: TargetResult, dryRun: boolean): void {
  const shown = displayPath(result.target.file);
  const where = result.target.container.length > 1 ? ` (${result.target.container.slice(0, -1).join('.')})` : '';
  if (result.missing === true) return;
  for (const name of result.already) ctx.io.out(`${shown}${where}: ${name} already points at apiary; left as it is`);
  for (const s of result.skipped) ctx.io.err(paint(ctx.io, 'yellow', `warning: ${shown}${where}: ${s.entry}: ${s.why}`));
  if (result.plans.length === 0) {
    ctx.io.out(`${shown}${where}: nothing to import`);
    return;
  }
  for (const { server, install, url, written, resumed } of result.plans) {
    if (resumed === true) {
      ctx.io.out(`mcpserver/${server.name} was imported from ${server.entry} before; ${dryRun ? 'the entry would point' : 'the entry points'} at it again, at ${url}`);
      continue;
    }
    const file = written !== undefined ? ` (${displayPath(written.file)})` : '';
    ctx.io.out(`mcpserver/${server.name} ${dryRun ? 'would be created' : (written?.action ?? 'created')}${file} from ${server.entry}, at ${url}`);
    for (const placed of server.placed) {
      if (placed.unresolved !== undefined) {
        const { secret, key, refs } = placed.unresolved;
        ctx.io.out(`  ${placed.from} -> secret/${secret} key ${key}, to be set: ${refs.join(', ')} is not set here (apiary secret set ${secret} ${key}; the server waits for it)`);
        continue;
      }
      const secret = install.newSecrets.find((s) => s.variable === placed.variable);
      const to = placed.sealed ? `$(${placed.variable}), secret/${secret?.secret ?? '?'} key ${secret?.key ?? placed.variable} (sealed)` : `${placed.variable} (plain)`;
      ctx.io.out(`  ${placed.from} -> ${placed.from.startsWith('env ') ? to.replace(/^\$\((\w+)\), /, '') : to}`);
    }
    for (const note of server.notes) ctx.io.out(`  note: ${note}`);
    if (server.placed.some((p) => p.from.startsWith('args') && p.sealed)) {
      ctx.io.err(paint(ctx.io, 'yellow', `warning: mcpserver/${server.name}: a secret goes into its command line through $(VAR), where every local user can read it in the process list; if the server reads it from its environment too, drop the argument`));
    }
    if (dryRun) ctx.io.out(redacted(install.yaml, result).trimEnd());
  }
  const edit = result.edit;
  if (edit === undefined) return;
  if (dryRun) {
    ctx.io.out(redacted(createTwoFilesPatch(shown, shown, edit.before ?? '', edit.after ?? '', '', '', { context: 2 }), result).trimEnd());
    return;
  }
  const names = result.plans.map((p) => p.server.entry).join(', ');
  ctx.io.out(`${shown}${where}: ${names} now ${result.plans.length === 1 ? 'reaches' : 'reach'} apiary; the file as it was is kept only sealed, in ${displayPath(sealedOriginalPath(result.target.file))} (apiary import --undo --client ${client} gives it back)`);
  ctx.io.out(`restart or reload the client to pick it up; apiary up runs the servers`);
}
