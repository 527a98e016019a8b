import type { Command } from 'commander';
import { mkdir, stat } from 'node:fs/promises';
import { stringify } from 'yaml';
import { loadCatalog, findEntry, shadowWarning, shortName, transportOf, type CatalogEntry, type CatalogOptions, type LoadedCatalog } from '../../catalog/catalog.js';
import {
  CATALOG_NAME_ANNOTATION,
  CATALOG_VERSION_ANNOTATION,
  catalogInstall,
  howToGive,
  describeTarget,
  suggestedSandbox,
  variablesOf,
  type CatalogVariable,
  type SandboxSuggestion,
  type VariableValues,
} from '../../catalog/install-plan.js';
import { SecretValue } from '../../crypto/secret-value.js';
import { ApiaryError } from '../../errors.js';
import { planInstall, shellWord, writeInstall, type InstallPlan, type InstallRequest } from '../../manifests/install.js';
import { loadDirectory } from '../../manifests/loader.js';
import type { MCPServerResource } from '../../manifests/resource.js';
import type { CliContext } from '../context.js';
import { refuseGitSourced } from '../../source/directory.js';
import { paint } from '../io.js';
import { displayPath } from '../paths.js';
import { hiddenPrompt, readAll } from '../secret-input.js';
import { table } from '../table.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

interface SourceOptions {
  catalog: string[];
  registry: string[];
  bundled: boolean;
}

function sourcesOf(opts: SourceOptions): CatalogOptions {
  return { bundled: opts.bundled, paths: opts.catalog, registries: opts.registry };
}

function withSources(cmd: Command): Command {
  return cmd
    .option('--catalog <PATH>', 'a server.json file, or a folder of them (repeatable)', collect, [])
    .option('--registry <URL>', 'an MCP registry (its /v0.1/servers API), e.g. https://registry.modelcontextprotocol.io (repeatable)', collect, [])
    .option('--no-bundled', 'leave out the catalog bundled with apiary');
}

/** Entries that did not validate, and ones left out for a bundled entry's name: said once, on stderr, with where and why; never fatal. */
function reportProblems(ctx: CliContext, listing: LoadedCatalog): void {
  for (const p of listing.problems) ctx.io.err(paint(ctx.io, 'yellow', `warning: skipped ${p.where}: ${p.field}: ${p.message}`));
  for (const s of listing.shadowed) ctx.io.err(paint(ctx.io, 'yellow', `warning: ${shadowWarning(s)} (to use the other, leave the bundled catalog out with --no-bundled)`));
}

function listRows(entries: readonly CatalogEntry[]): string[][] {
  return entries.map((e) => [e.server.name, e.server.version, transportOf(e.server), e.source === 'bundled' ? 'bundled' : displayPath(e.source), e.server.description]);
}

export function registerCatalog(program: Command, ctx: CliContext): void {
  const catalog = program.command('catalog').description('servers you can install, from server.json catalogs (bundled, files, or an MCP registry)');
  for (const [verb, description] of [
    ['list', 'every catalog entry'],
    ['search', 'entries whose name, title or description has every word of TEXT'],
  ] as const) {
    const sub = catalog.command(verb).description(description);
    if (verb === 'search') sub.argument('<TEXT...>', 'words to look for');
    withSources(sub)
      .option('-o, --output <format>', 'text or json', 'text')
      .action(async (...args: unknown[]) => {
        const text = verb === 'search' ? (args[0] as string[]).join(' ') : undefined;
        const opts = args[verb === 'search' ? 1 : 0] as SourceOptions & { output: string };
        const listing = await loadCatalog(sourcesOf(opts), text);
        reportProblems(ctx, listing);
        if (opts.output === 'json') {
          ctx.io.out(JSON.stringify({ servers: listing.entries.map((e) => ({ server: e.server, source: e.source })), problems: listing.problems, shadowed: listing.shadowed }, null, 2));
        } else if (listing.entries.length === 0) {
          ctx.io.err(text === undefined ? 'No catalog entries.' : `No catalog entry matches "${text}".`);
        } else {
          ctx.io.out(table(['NAME', 'VERSION', 'TRANSPORT', 'SOURCE', 'DESCRIPTION'], listRows(listing.entries)));
        }
      });
  }
  withSources(catalog.command('show').description('one entry: its package, the command apiary would run, and every variable it asks for').argument('<NAME>', 'full or short name'))
    .option('--version <V>', 'a version other than the newest')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (name: string, opts: SourceOptions & { version?: string; output: string }) => {
      const listing = await loadCatalog(sourcesOf(opts));
      reportProblems(ctx, listing);
      const entry = findEntry(listing.entries, name, opts.version);
      if (opts.output === 'json') {
        ctx.io.out(JSON.stringify({ server: entry.server, source: entry.source, variables: variablesOf(entry) }, null, 2));
        return;
      }
      ctx.io.out(describeEntry(entry));
    });

  withSources(
    program
      .command('install')
      .description('write the manifests for a catalog entry: the MCPServer, and a sealed Secret for each secret you give (asked for, hidden)')
      .argument('<NAME>', 'catalog entry (full or short name)'),
  )
    .option('--name <N>', 'the MCPServer name (default: from the entry, e.g. everything)')
    .option('--version <V>', 'a version other than the newest')
    .option('--env <VAR=VALUE>', 'a plain variable (repeatable)', collect, [])
    .option('--arg <NAME=VALUE>', 'an argument the entry asks for (repeatable)', collect, [])
    .option('--secret <VAR=SECRET/KEY>', 'bind a secret variable to an existing secret (repeatable)', collect, [])
    .option('--secret-stdin <VAR>', 'read VAR\'s value from standard input (sealed into a new secret)')
    .option('--allow-missing', 'write the server even when required variables have no value; it is Stuck, saying which, until they do')
    .option('--remote', "front the entry's hosted (remote) endpoint even when it also has a package apiary could run")
    .option('--dry-run', 'print the manifests instead of writing them')
    .option('-y, --yes', 'write without asking (on a terminal, install shows the command it writes and asks first)')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (name: string, opts: InstallOptions, cmd: Command) => {
      const { dir } = ctx.locations(cmd);
      const listing = await loadCatalog(sourcesOf(opts));
      reportProblems(ctx, listing);
      const entry = findEntry(listing.entries, name, opts.version);
      const serverName = opts.name ?? shortName(entry.server.name);
      await installEntry(ctx, dir, entry, serverName, opts, { replace: false });
    });

  withSources(
    program
      .command('upgrade')
      .description('move a server installed from a catalog to a newer version, saying first which variables were added or removed')
      .argument('<NAME>', 'the MCPServer name'),
  )
    .option('--version <V>', 'the version to move to (default: the newest)')
    .option('--env <VAR=VALUE>', 'a plain variable the new version asks for (repeatable)', collect, [])
    .option('--arg <NAME=VALUE>', 'an argument the new version asks for (repeatable)', collect, [])
    .option('--secret <VAR=SECRET/KEY>', 'bind a new secret variable to an existing secret (repeatable)', collect, [])
    .option('--secret-stdin <VAR>', 'read a new secret variable\'s value from standard input')
    .option('--allow-missing', 'upgrade even when a new required variable has no value (the server is then Stuck, saying which)')
    .option('--dry-run', 'show what would change, write nothing')
    .option('-y, --yes', 'write without asking (on a terminal, upgrade shows the command it writes and asks first)')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (name: string, opts: InstallOptions, cmd: Command) => {
      const { dir } = ctx.locations(cmd);
      const loaded = await loadDirectory(dir);
      const server = loaded.resources.find((r): r is MCPServerResource => r.kind === 'MCPServer' && r.name === name);
      if (server === undefined) throw new ApiaryError('NotFound', `mcpserver/${name} not found in ${displayPath(dir)}`);
      const annotations = server.manifest.metadata.annotations ?? {};
      const catalogName = annotations[CATALOG_NAME_ANNOTATION];
      const installed = annotations[CATALOG_VERSION_ANNOTATION];
      if (catalogName === undefined || installed === undefined) {
        throw new ApiaryError('Usage', `mcpserver/${name} was not installed from a catalog (it has no ${CATALOG_NAME_ANNOTATION} annotation); edit its manifest instead`);
      }
      const listing = await loadCatalog(sourcesOf(opts));
      reportProblems(ctx, listing);
      const target = findEntry(listing.entries, catalogName, opts.version);
      if (target.server.version === installed && opts.version === undefined) {
        ctx.io.out(`mcpserver/${name} is at ${catalogName} ${installed}, the newest in the catalog`);
        return;
      }
      // A hosted server stays hosted, a package stays a package.
      const remote = server.manifest.spec.remote !== undefined;
      // What changed between the two versions' variables (the old entry, when the catalog still has it).
      const previous = listing.entries.find((e) => e.server.name === catalogName && e.server.version === installed);
      const before = new Map((previous !== undefined ? variablesOf(previous, remote) : envOf(server).map((n) => ({ name: n }) as CatalogVariable)).map((v) => [v.name, v]));
      const after = new Map(variablesOf(target, remote).map((v) => [v.name, v]));
      const added = [...after.values()].filter((v) => !before.has(v.name));
      const removed = [...before.values()].filter((v) => !after.has(v.name));
      ctx.io.out(`mcpserver/${name}: ${catalogName} ${installed} -> ${target.server.version}`);
      for (const v of added) ctx.io.out(`  + ${v.name}${v.required ? ' (required)' : ''}${v.secret ? ' (secret)' : ''}${v.description ? `: ${v.description}` : ''}`);
      for (const v of removed) ctx.io.out(`  - ${v.name} (no longer used: removed from the manifest)`);
      if (added.length === 0 && removed.length === 0) ctx.io.out('  variables unchanged');
      // What the server is given today carries over: plain values, and secret bindings.
      const carried = carriedValues(server, new Set(after.keys()));
      await installEntry(ctx, dir, target, name, { ...opts, remote }, { replace: true, carried });
    });
}

interface InstallOptions extends SourceOptions {
  name?: string;
  version?: string;
  env: string[];
  arg: string[];
  secret: string[];
  secretStdin?: string;
  allowMissing?: boolean;
  remote?: boolean;
  dryRun?: boolean;
  yes?: boolean;
  output: string;
}

function envOf(server: MCPServerResource): string[] {
  return (server.manifest.spec.env ?? []).map((e) => e.name);
}

/** An installed server's values for the variables a new version still has. */
function carriedValues(server: MCPServerResource, keep: ReadonlySet<string>): { plain: Map<string, string>; bound: Map<string, { secret: string; key: string }> } {
  const plain = new Map<string, string>();
  const bound = new Map<string, { secret: string; key: string }>();
  for (const e of server.manifest.spec.env ?? []) {
    if (!keep.has(e.name)) continue;
    if (e.value !== undefined) plain.set(e.name, e.value);
    const ref = e.valueFrom?.secretKeyRef;
    if (ref !== undefined) bound.set(e.name, { secret: ref.name, key: ref.key });
  }
  return { plain, bound };
}

function pairs(flags: readonly string[], flag: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const pair of flags) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ApiaryError('Usage', `${flag} takes NAME=VALUE; got "${pair}"`);
    out.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return out;
}

async function installEntry(
  ctx: CliContext,
  dir: string,
  entry: CatalogEntry,
  serverName: string,
  opts: InstallOptions,
  mode: { replace: boolean; carried?: { plain: Map<string, string>; bound: Map<string, { secret: string; key: string }> } },
): Promise<void> {
  const vars = variablesOf(entry, opts.remote === true);
  const known = new Map(vars.map((v) => [v.name, v]));
  const plain = new Map([...(mode.carried?.plain ?? []), ...pairs(opts.env, '--env'), ...pairs(opts.arg, '--arg')]);
  const bound = new Map(mode.carried?.bound ?? []);
  for (const [variable, ref] of pairs(opts.secret, '--secret')) {
    const [secret, key, ...rest] = ref.split('/');
    if (!secret || !key || rest.length > 0) throw new ApiaryError('Usage', `--secret takes VAR=SECRET/KEY; got "${variable}=${ref}"`);
    bound.set(variable, { secret, key });
  }
  for (const name of [...plain.keys(), ...bound.keys(), ...(opts.secretStdin ? [opts.secretStdin] : [])]) {
    if (!known.has(name)) throw new ApiaryError('Usage', `${entry.server.name} ${entry.server.version} has no variable or argument ${name}; it has: ${vars.map((v) => v.name).join(', ') || 'none'}`);
  }
  for (const [name] of plain) if (known.get(name)?.secret === true && !mode.carried?.plain.has(name)) throw new ApiaryError('Usage', `${name} is a secret: give it with --secret ${name}=SECRET/KEY or --secret-stdin ${name}, never on the command line`);
  for (const [name, value] of plain) {
    const choices = known.get(name)?.choices;
    if (choices !== undefined && !choices.includes(value)) throw new ApiaryError('Usage', `${name} must be one of ${choices.join(', ')}; got "${value}"`);
  }

  // Secret values: one from stdin, the rest asked for (hidden) on a terminal.
  const typed = new Map<string, SecretValue>();
  if (opts.secretStdin !== undefined) {
    const text = (await readAll(process.stdin, `the value for ${opts.secretStdin}`)).replace(/\r?\n$/, '');
    if (text === '') throw new ApiaryError('Usage', `no value on standard input for ${opts.secretStdin}`);
    typed.set(opts.secretStdin, new SecretValue(text));
  }
  const interactive = process.stdin.isTTY === true && opts.secretStdin === undefined && opts.dryRun !== true;
  for (const v of vars) {
    if (v.fixed !== undefined || plain.has(v.name) || bound.has(v.name) || typed.has(v.name)) continue;
    // Asked for: every secret (optional ones may be skipped), and required values without a default.
    if (!interactive || (!v.secret && (!v.required || v.default !== undefined))) continue;
    const about = `${v.name}${v.description ? ` (${v.description})` : ''}`;
    if (v.secret) {
      const text = await hiddenPrompt(`Value for ${about}, input hidden${v.required ? '' : ', Enter to skip'}: `);
      if (text !== '') typed.set(v.name, new SecretValue(text));
    } else {
      const text = await plainPrompt(`Value for ${about}${v.choices ? ` [${v.choices.join('|')}]` : ''}: `);
      if (text !== '') plain.set(v.name, text);
    }
  }

  const values: VariableValues = { plain, bound, typed: new Set(typed.keys()) };
  const { request, missing } = catalogInstall(entry, serverName, values, { allowMissing: opts.allowMissing === true, remote: opts.remote === true });
  if (missing.length > 0 && opts.allowMissing !== true) {
    const lines = missing.map((v) => `${v.name}${v.secret ? ' (secret)' : ''}${v.description ? `: ${v.description}` : ''}; give it with ${howToGive(v)}`);
    throw new ApiaryError('Usage', `${entry.server.name} needs ${missing.map((v) => v.name).join(', ')}; nothing was written`, { hints: [...lines, 'Or write it anyway with --allow-missing: it is then Stuck, saying what it waits for'] });
  }
  // A manifest directory that does not exist yet is an empty one: the install makes it.
  const exists = (await stat(dir).catch(() => undefined))?.isDirectory() === true;
  const plan: InstallPlan = planInstall(request, exists ? (await loadDirectory(dir)).resources : [], { replace: mode.replace });
  if (opts.dryRun === true) {
    const suggestion = suggestedSandbox(request);
    if (opts.output === 'json') ctx.io.out(JSON.stringify({ server: plan.server, newSecrets: plan.newSecrets, missing: missing.map((v) => v.name), suggestedSandbox: suggestion }, null, 2));
    else ctx.io.out(`${plan.yaml.trimEnd()}\n${sandboxComment(suggestion)}`);
    return;
  }
  await confirmRuns(ctx, serverName, request, opts);
  if (!exists) await mkdir(dir, { recursive: true, mode: 0o755 });
  await refuseGitSourced(dir);
  const result = await writeInstall(dir, plan, typed, ctx.keys);
  const created = [...new Set(result.secretsCreated.map((s) => s.secret))];
  if (opts.output === 'json') {
    const runs = request.remote !== undefined ? { remote: request.remote.url } : { command: request.command, args: request.args ?? [] };
    ctx.io.out(JSON.stringify({ kind: 'MCPServer', name: serverName, catalog: entry.server.name, version: entry.server.version, ...runs, action: result.server?.action, file: result.server ? displayPath(result.server.file) : undefined, secretsCreated: created, missing: missing.map((v) => v.name) }, null, 2));
    return;
  }
  for (const s of created) ctx.io.out(`secret/${s} created (sealed)`);
  ctx.io.out(`mcpserver/${serverName} ${result.server?.action ?? 'unchanged'}${result.server ? ` (${displayPath(result.server.file)})` : ''}: ${entry.server.name} ${entry.server.version}`);
  if (request.remote?.auth !== undefined) ctx.io.out(`it logs in with OAuth: connect it once with: apiary connect ${serverName} (or Connect in the console)`);
  for (const v of missing) {
    const ref = request.secrets?.find((s) => s.variable === v.name);
    const secret = ref !== undefined && 'unresolved' in ref ? ref.unresolved : undefined;
    ctx.io.err(paint(ctx.io, 'yellow', `warning: ${v.name} has no value: mcpserver/${serverName} is Stuck until ${secret ? `secret ${secret.secret} has key ${secret.key} (apiary secret set ${secret.secret} ${secret.key})` : `it is set in the manifest`}`));
  }
}

/**
 * What the manifest will have apiary run (a catalog's text, so a person sees
 * it before it is written): printed always, and on a terminal asked about
 * unless --yes. Off a terminal it is printed and written, as kubectl apply
 * and helm install do: the caller named the entry already, the line stays in
 * its log, and stdin may be a secret's value (--secret-stdin), not an answer.
 */
async function confirmRuns(ctx: CliContext, serverName: string, request: InstallRequest, opts: InstallOptions): Promise<void> {
  const runs =
    request.remote !== undefined
      ? `mcpserver/${serverName} will front ${request.remote.url} (${request.remote.transport ?? 'streamable-http'})`
      : `mcpserver/${serverName} will run: ${[request.command, ...(request.args ?? [])].map(shellWord).join(' ')}`;
  const ask = process.stdin.isTTY === true && opts.yes !== true;
  // -o json keeps stdout for the answer; the line then goes with the question, to stderr.
  if (opts.output !== 'json') ctx.io.out(runs);
  else if (ask) ctx.io.err(runs);
  if (!ask) return;
  const answer = (await plainPrompt('Write? [y/N] ')).toLowerCase();
  if (answer !== 'y' && answer !== 'yes') throw new ApiaryError('Usage', 'nothing was written (the answer was not yes)', { exitCode: 1 });
}

/** A plain prompt (the value is not secret, so it is echoed). */
async function plainPrompt(question: string): Promise<string> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

/** `catalog show`: what a person reads before installing. */
function describeEntry(entry: CatalogEntry): string {
  const { server } = entry;
  const out: string[] = [`Name:          ${server.name}`, `Version:       ${server.version}`];
  if (server.title) out.push(`Title:         ${server.title}`);
  out.push(`Description:   ${server.description}`, `Source:        ${entry.source === 'bundled' ? 'bundled with apiary' : entry.source}`);
  if (server.websiteUrl) out.push(`Website:       ${server.websiteUrl}`);
  if (server.repository) out.push(`Repository:    ${server.repository.url}`);
  for (const p of server.packages ?? []) out.push(`Package:       ${p.registryType} ${p.identifier}${p.version ? `@${p.version}` : ''} (${p.transport.type}${p.runtimeHint ? `, run with ${p.runtimeHint}` : ''})`);
  for (const r of server.remotes ?? []) out.push(`Remote:        ${r.type} ${r.url}${r.auth !== undefined ? ' (OAuth login: apiary connect)' : ''}`);
  try {
    out.push(`Runs:          ${describeTarget(entry)}`);
    out.push(`Installs as:   apiary install ${server.name} --name ${shortName(server.name)}`);
    const vars = variablesOf(entry);
    out.push('Variables:');
    if (vars.length === 0) out.push('  <none>');
    else {
      out.push(
        table(
          ['  NAME', 'KIND', 'REQUIRED', 'SECRET', 'DEFAULT', 'DESCRIPTION'],
          vars.map((v) => [`  ${v.name}`, v.kind, v.required ? 'yes' : 'no', v.secret ? 'yes' : 'no', v.fixed !== undefined ? `(fixed) ${v.fixed}` : (v.default ?? (v.choices ? v.choices.join('|') : '-')), v.description ?? '']),
        ),
      );
    }
  } catch (err) {
    out.push(`Installs:      no (${err instanceof Error ? err.message : String(err)})`);
  }
  return out.join('\n');
}

/** The suggested spec.sandbox as YAML comments under the manifest: shown, never written (what a server needs is the user's call). */
function sandboxComment(suggestion: SandboxSuggestion): string {
  if (suggestion.sandbox === undefined) return `# No sandbox suggested: ${suggestion.note}`;
  const yaml = stringify({ sandbox: suggestion.sandbox }, { flowCollectionPadding: false }).trimEnd().split('\n');
  return [`# Suggested spec.sandbox (not written; add it under spec to run the server under bubblewrap): ${suggestion.note}`, ...yaml.map((line) => `#   ${line}`)].join('\n');
}
