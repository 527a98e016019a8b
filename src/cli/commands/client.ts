import type { Command } from 'commander';
import { ApiaryError } from '../../errors.js';
import { readStateView } from '../../state/view.js';
import type { CliContext } from '../context.js';
import { paint } from '../io.js';
import { readyServerUrls } from '../../mcp/client-config.js';
import { readEndpointToken } from '../../mcp/endpoint-token.js';
import { StateLayout } from '../../state/layout.js';
import { liveController } from '../../state/controller-lock.js';
import { AGGREGATE_PORT_KEY } from '../../mcp/ports.js';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createTwoFilesPatch } from 'diff';
import { clientConfigPath, freshClientText, updateClientFile, type ClientFileResult } from '../../clients/config-file.js';
import { displayPath } from '../paths.js';
import { outputOption } from '../context.js';
import { table } from '../table.js';
import { clientEntries, clientInfo, isKnownClient, KNOWN_CLIENTS, type KnownClient } from '../../clients/known.js';
import { clientFile, registerClient as registerClientFile, underRegistry, unregisterClient } from '../../clients/registry.js';
import { AGGREGATE_ENTRY, clientStatuses, selfLauncher, syncClient, wantedFrom, type Wanted } from '../../clients/sync.js';

interface ClientOptions {
  client: string;
  aggregate?: boolean;
  write?: boolean;
  remove?: boolean;
  file?: string;
  dryRun?: boolean;
  force?: boolean;
}

/** --write (entries given) or --remove (none): plan, show or write, and say what changed. */
async function writeClientFile(ctx: CliContext, kind: KnownClient, layout: StateLayout, opts: ClientOptions, entries: Record<string, unknown> | undefined): Promise<void> {
  const path = opts.file !== undefined ? resolve(opts.file) : clientConfigPath(kind, ctx.env);
  const result = await updateClientFile(kind, path, entries, layout, { force: opts.force === true, dryRun: opts.dryRun === true });
  const { edit } = result;
  for (const s of edit.skipped) ctx.io.err(paint(ctx.io, 'yellow', `warning: ${s.why}`));
  const shown = displayPath(path);
  if (opts.dryRun === true) {
    if (edit.after === edit.before) ctx.io.out(`${shown}: no change`);
    else ctx.io.out(createTwoFilesPatch(shown, shown, edit.before ?? '', edit.after ?? '', edit.before === undefined ? '(new file)' : '', edit.after === undefined ? '(deleted)' : '', { context: 3 }).trimEnd());
    return;
  }
  const putBack = edit.putBack ?? [];
  if (edit.added.length + edit.updated.length + edit.removed.length + putBack.length === 0) {
    ctx.io.out(`${shown}: ${entries === undefined ? 'nothing of apiary\'s to remove' : 'already up to date'}`);
    return;
  }
  for (const name of edit.added) ctx.io.out(`${shown}: added ${name}`);
  for (const name of edit.updated) ctx.io.out(`${shown}: updated ${name}${edit.replacing?.includes(name) === true ? ' (replacing an entry apiary did not write: --force)' : ''}`);
  for (const name of edit.removed) ctx.io.out(`${shown}: removed ${name}`);
  for (const name of putBack) ctx.io.out(`${shown}: ${name} put back as it was before --force`);
  if (entries === undefined) {
    ctx.io.out(edit.restored === true ? (edit.after === undefined ? `${shown}: deleted (apiary had created it)` : `${shown}: back as it was before apiary wrote to it`) : `${shown}: apiary's entries taken out; everything else left as it is`);
    return;
  }
  reportWrite(ctx, kind, shown, result);
}

/** After a write: where the backup is (only one that exists is named), what it holds, and a mode made owner-only. */
function reportWrite(ctx: CliContext, kind: KnownClient, shown: string, result: ClientFileResult): void {
  const kept = result.backup !== undefined ? ` (the previous file is kept as ${displayPath(result.backup.path)})` : result.original !== undefined ? ` (the file as it was before apiary first wrote to it is kept as ${displayPath(result.original)})` : '';
  ctx.io.out(`${shown}: written${kept}; restart or reload ${clientInfo(kind).title} to pick it up`);
  if (result.mode !== undefined) ctx.io.out(`${shown}: mode ${result.mode.from.toString(8)} -> ${result.mode.to.toString(8)}: it holds apiary's endpoint token now, so only you may read it`);
  const credentials = result.backup?.credentials ?? [];
  if (result.backup !== undefined && credentials.length > 0) {
    const listed = credentials.slice(0, 3).join(', ') + (credentials.length > 3 ? ` and ${credentials.length - 3} more` : '');
    ctx.io.err(paint(ctx.io, 'yellow', `warning: ${displayPath(result.backup.path)} holds plaintext credentials copied from ${shown} (${listed}); only you can read it (mode 600); delete it once you no longer need it (--remove uses it to put your entries back)`));
  }
}

/** What apiary would write into a client now, read from the state directory (the controller's status and ports). */
async function wantedNow(dir: string, stateDir: string): Promise<{ wanted: Wanted; running: boolean }> {
  const view = await readStateView(dir, stateDir);
  return { wanted: await wantedFrom(view, new StateLayout(stateDir), dir), running: view.controller !== undefined };
}

function knownClient(name: string | undefined): KnownClient {
  if (name === undefined) throw new ApiaryError('Usage', `--client is required: one of ${KNOWN_CLIENTS.join(', ')}`);
  if (!isKnownClient(name)) throw new ApiaryError('Usage', `unknown client "${name}"; use one of ${KNOWN_CLIENTS.join(', ')}`);
  return name;
}

/** client add|remove|list: registered clients, kept in sync by the controller. */
function registerSyncVerbs(client: Command, ctx: CliContext): void {
  client
    .command('add')
    .description('register a client: apiary writes its servers into the client now, and the controller rewrites them whenever servers are installed, deleted or renamed')
    .requiredOption('--client <NAME>', KNOWN_CLIENTS.join(', '))
    .option('--aggregate', "one entry, apiary's aggregate endpoint (every server's tools as <server>__<tool>): nothing to rewrite when servers change")
    .option('--file <PATH>', "another file than the client's user-level one")
    .action(async (opts: { client: string; aggregate?: boolean; file?: string }, cmd: Command) => {
      const kind = knownClient(opts.client);
      const { dir, stateDir } = ctx.locations(cmd);
      const layout = new StateLayout(stateDir);
      const file = clientFile(kind, opts.file, ctx.env);
      const { wanted, running } = await wantedNow(dir, stateDir);
      // Written first: a file apiary cannot edit (a syntax error) is reported and the client is not registered.
      const result = await underRegistry(layout, async () => {
        const written = running ? await syncClient(layout, { client: kind, file, aggregate: opts.aggregate === true }, wanted) : {};
        await registerClientFile(layout, kind, file, opts.aggregate === true);
        return written;
      });
      const shown = displayPath(file);
      const edits = [result.written?.edit, result.removed?.edit].filter((e) => e !== undefined);
      for (const e of edits) for (const s of e.skipped) ctx.io.err(paint(ctx.io, 'yellow', `warning: ${s.why}`));
      for (const e of edits) for (const name of [...e.added, ...e.updated]) ctx.io.out(`${shown}: wrote ${name}`);
      for (const e of edits) for (const name of e.removed) ctx.io.out(`${shown}: removed ${name}`);
      if (result.written?.backup !== undefined) ctx.io.out(`${shown}: the previous file is kept as ${displayPath(result.written.backup.path)}`);
      ctx.io.out(`${kind} registered (${shown})${opts.aggregate === true ? ", pointing at apiary's aggregate endpoint" : ': the controller keeps it in sync with the servers'}`);
      if (!running) ctx.io.out('no controller is running: the entries are written when apiary up starts');
    });
  client
    .command('remove')
    .description("take apiary's entries out of a client's file and unregister it")
    .requiredOption('--client <NAME>', KNOWN_CLIENTS.join(', '))
    .option('--file <PATH>', "another file than the client's user-level one")
    .action(async (opts: { client: string; file?: string }, cmd: Command) => {
      const kind = knownClient(opts.client);
      const { stateDir } = ctx.locations(cmd);
      const layout = new StateLayout(stateDir);
      const file = clientFile(kind, opts.file, ctx.env);
      // Under the registry's lock: the controller writes nothing back while the entries are taken out.
      const was = await underRegistry(layout, async () => {
        const registered = await unregisterClient(layout, kind, file);
        await writeClientFile(ctx, kind, layout, { client: kind, ...(opts.file !== undefined ? { file } : {}) }, undefined);
        return registered;
      });
      if (was) ctx.io.out(`${kind} unregistered`);
    });
  client
    .command('list')
    .description('each known client on this machine: registered or not, connected / stale / not configured, and its file')
    .option('--all', 'also the clients not found on this machine')
    .addOption(outputOption(client, ['table', 'json'], 'table'))
    .action(async (opts: { all?: boolean; output: 'table' | 'json' }, cmd: Command) => {
      const { dir, stateDir } = ctx.locations(cmd);
      const { wanted } = await wantedNow(dir, stateDir);
      const statuses = (await clientStatuses(new StateLayout(stateDir), wanted, ctx.env)).filter((s) => opts.all === true || s.found || s.registered);
      if (opts.output === 'json') {
        ctx.io.out(JSON.stringify(statuses, null, 2));
        return;
      }
      if (statuses.length === 0) {
        ctx.io.out('No known MCP client found on this machine (--all lists them all).');
        return;
      }
      ctx.io.out(table(['CLIENT', 'REGISTERED', 'STATE', 'FILE'], statuses.map((s) => [s.client, s.registered ? (s.aggregate ? 'yes (aggregate)' : 'yes') : 'no', s.detail !== undefined && s.state === 'stale' ? `stale (${s.detail})` : s.state, displayPath(s.file)])));
      for (const s of statuses) if (s.state === 'unreadable') ctx.io.err(paint(ctx.io, 'yellow', `warning: ${s.detail ?? ''}`));
    });
}

export function registerClient(program: Command, ctx: CliContext): void {
  const client = program.command('client').description('connect MCP clients to the servers apiary runs');
  registerSyncVerbs(client, ctx);
  client
    .command('config')
    .description("print what a client's file needs to reach every Ready server (JSON, or TOML for codex and YAML for goose)")
    .option('--client <NAME>', KNOWN_CLIENTS.join(', '), 'claude')
    .option('--aggregate', "one entry, apiary's aggregate endpoint, serving every Ready server's tools as <server>__<tool>")
    .option('--write', "merge the entries into the client's own configuration file (keeping everything else; the file as it was kept as <file>.apiary-backup, owner-only)")
    .option('--remove', 'take out of that file what --write put there')
    .option('--file <PATH>', "another file than the client's user-level one (e.g. a project's .mcp.json or .vscode/mcp.json)")
    .option('--dry-run', 'with --write or --remove: show the change as a diff, write nothing')
    .option('--force', 'with --write: replace an entry of the same name that apiary did not write (kept in a backup; --remove puts it back)')
    .action(async (opts: ClientOptions, cmd: Command) => {
      const kind = knownClient(opts.client);
      const { dir, stateDir } = ctx.locations(cmd);
      const launcher = selfLauncher(dir, stateDir);
      const layout = new StateLayout(stateDir);
      if (opts.remove === true) return writeClientFile(ctx, kind, layout, opts, undefined);
      if (opts.aggregate === true) {
        if ((await liveController(layout)) === undefined) throw new ApiaryError('NotFound', 'no apiary controller is running for this state directory', { hints: ['Start one with: apiary up'] });
        const port = (JSON.parse(await readFile(join(stateDir, 'ports.json'), 'utf8').catch(() => '{}')) as Record<string, number>)[AGGREGATE_PORT_KEY];
        if (port === undefined) throw new ApiaryError('NotFound', 'the running controller serves no aggregate endpoint (see its log)');
        const entries = clientEntries(kind, { [AGGREGATE_ENTRY]: `http://127.0.0.1:${port}/mcp` }, await readEndpointToken(layout), launcher);
        if (opts.write === true) return writeClientFile(ctx, kind, layout, opts, entries);
        ctx.io.out(freshClientText(kind, entries).trimEnd());
        return;
      }
      const view = await readStateView(dir, stateDir);
      const { servers, notReady: skipped } = readyServerUrls(view);
      const token = await readEndpointToken(layout);
      const entries = clientEntries(kind, servers, token, launcher);
      if (opts.write === true) {
        if (Object.keys(servers).length === 0) throw new ApiaryError('NotFound', 'no Ready server to write', { hints: [view.controller ? `Not Ready: ${skipped.join(', ')}` : 'Start the controller with: apiary up'] });
        await writeClientFile(ctx, kind, layout, opts, entries);
      } else {
        ctx.io.out(freshClientText(kind, entries).trimEnd());
      }
      if (skipped.length > 0) ctx.io.err(paint(ctx.io, 'yellow', `note: not Ready, left out: ${skipped.join(', ')}${view.controller ? '' : ' (no apiary controller is running)'}`));
    });
}
