import type { Command } from 'commander';
import { kindFromAlias, type Kind } from '../../api/names.js';
import { ApiaryError } from '../../errors.js';
import { matchesSelector, parseSelector, type Selector } from '../../manifests/selector.js';
import { asList, readStateView, type ObjectView, type StateView, type WantedSecret } from '../../state/view.js';
import { closest } from '../../util/suggest.js';
import type { CliContext, GlobalOptionSource } from '../context.js';
import { outputOption } from '../context.js';
import { controllerNotice, kindLabel, missingSecretMessage, secretTable, serialize, serverTable, sourceTable } from '../format.js';
import { gatewayTable, policyTable } from '../access-format.js';
import { escapeTerminalLines } from '../escape.js';
import { paint } from '../io.js';

export const GET_OUTPUTS = ['table', 'wide', 'json', 'yaml', 'name'] as const;
type Output = (typeof GET_OUTPUTS)[number];
export interface GetOptions {
  output: Output;
  watch?: boolean;
  selector?: string;
}

export function parseKinds(type: string | undefined): Kind[] {
  if (type === undefined || type.toLowerCase() === 'all') return ['MCPServer', 'Secret', 'GitRepository', 'Gateway', 'AccessPolicy'];
  const kind = kindFromAlias(type);
  if (kind === undefined) {
    const suggestion = closest(type, ['mcpservers', 'secrets', 'sources', 'gateways', 'accesspolicies', 'all']);
    throw new ApiaryError('Usage', `unknown resource type "${type}"; use mcpservers, secrets, sources, gateways, accesspolicies or all${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`);
  }
  return [kind];
}

export function select(view: StateView, kinds: readonly Kind[], name: string | undefined, selector: Selector = []): ObjectView[] {
  const objects = view.objects.filter(
    (o) => kinds.includes(o.kind) && (name === undefined || o.name === name) && matchesSelector(selector, o.object.metadata.labels),
  );
  if (name !== undefined && objects.length === 0) {
    const wanted = kinds.includes('Secret') ? view.wanted.find((w) => w.name === name) : undefined;
    if (wanted !== undefined) throw new ApiaryError('NotFound', `${kindLabel('Secret', name)} not found: ${missingSecretMessage(wanted)}`);
    const why = view.manifestsError !== undefined ? ` (${view.manifestsError})` : '';
    throw new ApiaryError('NotFound', `${kinds.map((k) => kindLabel(k, name)).join(' or ')} not found${why}`);
  }
  return objects;
}

/** What get and describe share: the kinds, name and selector asked for, and the objects they pick. */
export async function query(ctx: CliContext, cmd: GlobalOptionSource, type: string | undefined, name: string | undefined, selectorText: string | undefined) {
  const kinds = parseKinds(type);
  const selector = parseSelector(selectorText ?? '');
  if (name !== undefined && selector.length > 0) throw new ApiaryError('Usage', 'a NAME and --selector do not go together');
  const { dir, stateDir } = ctx.locations(cmd);
  const view = await readStateView(dir, stateDir);
  return { kinds, selector, dir, stateDir, view, objects: select(view, kinds, name, selector), wanted: wantedOf(view, kinds, name, selector) };
}

/** The missing secrets a listing shows: none for one named object or a label selector (they have no labels). */
function wantedOf(view: StateView, kinds: readonly Kind[], name: string | undefined, selector: Selector): WantedSecret[] {
  return kinds.includes('Secret') && name === undefined && selector.length === 0 ? view.wanted : [];
}

/** As kubectl: one named resource prints as the object itself, anything else as a List (even of one). */
function render(objects: readonly ObjectView[], kinds: readonly Kind[], output: Output, now: number, single = false, wanted: readonly WantedSecret[] = []): string {
  if (output === 'name') return objects.map((o) => kindLabel(o.kind, o.name)).join('\n');
  if (output === 'json' || output === 'yaml') {
    return serialize(single && objects[0] !== undefined ? objects[0].object : asList(objects), output);
  }
  const wide = output === 'wide';
  const parts: string[] = [];
  const servers = objects.filter((o) => o.kind === 'MCPServer');
  const secrets = objects.filter((o) => o.kind === 'Secret');
  if (kinds.includes('MCPServer') && (servers.length > 0 || kinds.length === 1)) parts.push(servers.length ? serverTable(servers, wide, now) : 'No mcpservers found.');
  if (kinds.includes('Secret') && (secrets.length + wanted.length > 0 || kinds.length === 1)) parts.push(secrets.length + wanted.length ? secretTable(secrets, wide, now, wanted) : 'No secrets found.');
  const sources = objects.filter((o) => o.kind === 'GitRepository');
  if (kinds.includes('GitRepository') && (sources.length > 0 || kinds.length === 1)) parts.push(sources.length ? sourceTable(sources, wide, now) : 'No sources found (apiary follows a git repository with: apiary up --git URL).');
  const gateways = objects.filter((o) => o.kind === 'Gateway');
  if (kinds.includes('Gateway') && (gateways.length > 0 || kinds.length === 1)) parts.push(gateways.length ? gatewayTable(gateways, wide) : 'No gateways found (without one, endpoints take the bearer token: auth mode token).');
  const policies = objects.filter((o) => o.kind === 'AccessPolicy');
  if (kinds.includes('AccessPolicy') && (policies.length > 0 || kinds.length === 1)) parts.push(policies.length ? policyTable(policies, wide) : 'No accesspolicies found.');
  return parts.length ? parts.join('\n\n') : 'No resources found.';
}

export function registerGet(program: Command, ctx: CliContext): void {
  program
    .command('get')
    .description('list servers and secrets with phase, ready, restarts, age and url (never secret values)')
    .argument('[TYPE]', 'mcpservers (mcp), secrets, sources, gateways (gw), accesspolicies (policies), or all', 'all')
    .argument('[NAME]', 'one resource')
    .addOption(outputOption(program, GET_OUTPUTS, 'table'))
    .option('-l, --selector <SELECTOR>', 'only resources whose labels match, e.g. team=tools,tier!=dev')
    .option('-w, --watch', 'after listing, print a line for every change')
    .action((type: string, name: string | undefined, opts: GetOptions, cmd: Command) => runGet(ctx, type, name, opts, cmd));
}

/** get, once its arguments are read (by commander, or by the start-up snapshot's parser: src/cli/snapshot-argv.ts). */
export async function runGet(ctx: CliContext, type: string, name: string | undefined, opts: GetOptions, cmd: GlobalOptionSource): Promise<void> {
  const { kinds, selector, dir, stateDir, view, objects, wanted } = await query(ctx, cmd, type, name, opts.selector);
  if (view.manifestsError !== undefined) ctx.io.err(paint(ctx.io, 'yellow', `warning: ${escapeTerminalLines(view.manifestsError)}`));
  for (const problem of view.stateProblems) ctx.io.err(paint(ctx.io, 'yellow', `warning: ${escapeTerminalLines(problem)}`));
  const notice = controllerNotice(view, Date.now());
  if (notice) ctx.io.err(paint(ctx.io, 'yellow', `warning: ${notice}`));
  if (opts.output !== 'name' || objects.length > 0) ctx.io.out(render(objects, kinds, opts.output, Date.now(), name !== undefined && kinds.length === 1, wanted));
  if (opts.watch) await watch(ctx, { dir, stateDir, kinds, name, selector, output: opts.output, shown: objects });
}

interface WatchOptions {
  dir: string;
  stateDir: string;
  kinds: readonly Kind[];
  name: string | undefined;
  selector: Selector;
  output: Output;
  /** What the listing showed: a change after it is a line, however soon it comes. */
  shown: readonly ObjectView[];
}

async function watch(ctx: CliContext, w: WatchOptions): Promise<void> {
  const signature = (o: ObjectView): string => JSON.stringify([o.object.status, o.errors, o.object.metadata.generation]);
  let seen = new Map(w.shown.map((o) => [o.key, signature(o)]));
  let stop = false;
  const onSignal = (): void => {
    stop = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  while (!stop) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const objects = select(await readStateView(w.dir, w.stateDir), w.kinds, undefined, w.selector).filter((o) => w.name === undefined || o.name === w.name);
    const next = new Map(objects.map((o) => [o.key, signature(o)]));
    const changed = objects.filter((o) => seen.get(o.key) !== next.get(o.key));
    for (const o of changed) {
      const text = render([o], [o.kind], w.output, Date.now(), true);
      // Tables: one row per change, without repeating the header.
      ctx.io.out(w.output === 'table' || w.output === 'wide' ? (text.split('\n')[1] ?? text) : text);
    }
    for (const key of seen.keys()) {
      if (!next.has(key)) ctx.io.out(`${key.split('/')[1]}   <deleted>`);
    }
    seen = next;
  }
}
