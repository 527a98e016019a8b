/**
 * From a catalog entry to an install request: which package runs (and with
 * what command), and what each of its variables needs. Pure: the CLI and the
 * console gather the values, and `planInstall` (manifests/install.ts) turns
 * the request into the manifests both write.
 */
import type { CatalogVariableView } from '../api/console.js';
import type { Sandbox, Transport } from '../api/manifests.js';
import { RUNNER_IMAGES } from '../api/runner-images.js';
import { ApiaryError } from '../errors.js';
import { secretNameFor, shellWord, type InstallRequest, type SecretBinding } from '../manifests/install.js';
import type { CatalogEntry } from './catalog.js';
import { isRunnable, runnerWords, RUNNABLE_TYPES } from './package-ref.js';
import type { Argument, KeyValueInput, Package, Remote, ServerJson } from './server-json.js';

/** Annotations an installed server carries, so `upgrade` knows where it came from. */
export const CATALOG_NAME_ANNOTATION = 'apiary.dev/catalog-name';
export const CATALOG_VERSION_ANNOTATION = 'apiary.dev/catalog-version';

/** One thing an install needs from a person: an environment variable or an argument (the shape the console shows too). */
export type CatalogVariable = CatalogVariableView;

/** How the chosen package runs. */
export interface Launch {
  command: string;
  /** Arguments, with `{ARG}` where an argument variable's value goes. */
  args: string[];
  transport: Transport;
  /** A PORT the package's own transport URL names (apiary forwards to it). */
  port?: number;
  package: Package;
}

/** The package apiary runs: the first one it knows how to start (npm, pypi, oci, nuget, in the entry's order). */
export function choosePackage(server: ServerJson): Package {
  const packages = server.packages ?? [];
  const runnable = packages.find((p) => isRunnable(p.registryType));
  if (runnable !== undefined) return runnable;
  const kinds = packages.map((p) => p.registryType).join(', ');
  throw new ApiaryError('Usage', `${server.name} has no package apiary can start${kinds ? ` (it has: ${kinds}; apiary runs ${RUNNABLE_TYPES.join(', ')} packages)` : ''}`);
}

/** What an install sets up: a package apiary runs, or (with none it can run, or when asked) a hosted server it fronts. */
export function targetOf(server: ServerJson, preferRemote = false): { package: Package } | { remote: Remote } {
  const remote = server.remotes?.[0];
  if (remote !== undefined && (preferRemote || !(server.packages ?? []).some((p) => isRunnable(p.registryType)))) return { remote };
  if (preferRemote) throw new ApiaryError('Usage', `${server.name} has no remote (hosted) endpoint`);
  return { package: choosePackage(server) };
}

/** HEADER or {var} names as environment variable names: X-API-Key -> X_API_KEY. */
function envName(name: string): string {
  const cleaned = name.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  return /^[0-9]/.test(cleaned) ? `_${cleaned}` : cleaned;
}

/** A hosted server's variables: its URL's {variables}, and its headers (each {variable} in a header's value, or the header itself). */
function remoteVariables(remote: Remote): CatalogVariable[] {
  const vars: CatalogVariable[] = [];
  for (const [name, input] of Object.entries(remote.variables ?? {})) vars.push(variable(envName(name), 'env', input));
  for (const header of headersOf(remote)) {
    const slots = [...(header.value ?? '').matchAll(/\{([a-zA-Z_][a-zA-Z0-9_]*)\}/g)].map((m) => m[1]!);
    if (header.value !== undefined && slots.length === 0) continue;
    if (slots.length === 0) {
      vars.push(variable(envName(header.name), 'env', header));
      continue;
    }
    for (const slot of slots) {
      const input = header.variables?.[slot] ?? {};
      vars.push(variable(envName(slot), 'env', { ...input, isSecret: input.isSecret ?? header.isSecret, isRequired: input.isRequired ?? header.isRequired, description: input.description ?? header.description }));
    }
  }
  return vars;
}

/** `{var}` in a template as `$(VAR)`: what spec.remote expands from spec.env. */
function asReference(template: string): string {
  return template.replace(/\{([a-zA-Z_][a-zA-Z0-9_]*)\}/g, (_, name: string) => `$(${envName(name)})`);
}

/** The headers apiary sends: with an OAuth login, not the Authorization header (a pasted token's place), which apiary's token takes. */
function headersOf(remote: Remote): NonNullable<Remote['headers']> {
  const headers = remote.headers ?? [];
  return remote.auth === undefined ? headers : headers.filter((h) => h.name.toLowerCase() !== 'authorization');
}

function remoteSpec(remote: Remote): NonNullable<InstallRequest['remote']> {
  const headers = headersOf(remote).map((h) => ({ name: h.name, value: h.value !== undefined ? asReference(h.value) : `$(${envName(h.name)})` }));
  const auth = remote.auth === undefined ? undefined : { type: remote.auth.type, ...(remote.auth.scopes !== undefined ? { scopes: remote.auth.scopes } : {}) };
  return { url: asReference(remote.url), transport: remote.type, ...(headers.length > 0 ? { headers } : {}), ...(auth !== undefined ? { auth } : {}) };
}

export function launchOf(entry: CatalogEntry): Launch {
  return launchOfPackage(choosePackage(entry.server));
}

/** What an install would set up, in words: the command apiary runs, or the hosted URL it fronts. */
export function describeTarget(entry: CatalogEntry, preferRemote = false): string {
  const target = targetOf(entry.server, preferRemote);
  if ('remote' in target) return `fronts the hosted server ${target.remote.url} (${target.remote.type})`;
  const launch = launchOfPackage(target.package);
  return [launch.command, ...launch.args].join(' ');
}

/** The runner of the package's registry type, its options, the entry's runtime arguments, then the package and its arguments. */
function launchOfPackage(pkg: Package): Launch {
  const runner = runnerWords(pkg);
  const runtimeArgs = (pkg.runtimeArguments ?? []).flatMap(argumentWords);
  const env = pkg.registryType === 'oci' ? (pkg.environmentVariables ?? []).flatMap((v) => ['-e', v.name]) : [];
  const args = [...runner.before, ...runtimeArgs, ...env, ...runner.package, ...(pkg.packageArguments ?? []).flatMap(argumentWords)];
  const transport = pkg.transport.type;
  const port = transport === 'stdio' ? undefined : portOf(pkg.transport.url);
  return { command: runner.command, args, transport, ...(port !== undefined ? { port } : {}), package: pkg };
}

/** A literal port in the package's transport URL (`http://localhost:3000/mcp`). */
function portOf(url: string): number | undefined {
  const port = /^https?:\/\/[^/:]+:(\d+)/.exec(url)?.[1];
  return port === undefined ? undefined : Number(port);
}

/** The words one argument adds: a fixed value as it is, or a `{NAME}` slot for a value to be given. */
function argumentWords(arg: Argument): string[] {
  const value = arg.value !== undefined ? substitute(arg.value, arg.variables) : arg.default;
  if (arg.type === 'positional') return [value ?? `{${arg.valueHint ?? 'value'}}`];
  if (value === undefined) return arg.isRequired === true ? [`${arg.name}={${argumentName(arg)}}`] : [];
  return [`${arg.name}=${value}`];
}

/** `{name}` in a value, from its variables' values or defaults; unknown ones stay as they are. */
function substitute(value: string, variables: Record<string, { value?: string | undefined; default?: string | undefined }> | undefined): string {
  return value.replace(/\{([a-zA-Z_][a-zA-Z0-9_]*)\}/g, (whole, name: string) => variables?.[name]?.value ?? variables?.[name]?.default ?? whole);
}

function argumentName(arg: Argument): string {
  return arg.type === 'positional' ? (arg.valueHint ?? 'value') : arg.name.replace(/^-+/, '');
}

/** Everything the install asks for: the package's environment variables and arguments without a fixed value, or a hosted server's. */
export function variablesOf(entry: CatalogEntry, preferRemote = false): CatalogVariable[] {
  const target = targetOf(entry.server, preferRemote);
  if ('remote' in target) return remoteVariables(target.remote);
  const pkg = target.package;
  const vars: CatalogVariable[] = (pkg.environmentVariables ?? []).map((v) => variable(v.name, 'env', v));
  for (const arg of [...(pkg.runtimeArguments ?? []), ...(pkg.packageArguments ?? [])]) {
    if (arg.value !== undefined) continue;
    if (arg.type === 'named' && arg.default === undefined && arg.isRequired !== true) continue;
    if (arg.type === 'positional' && arg.default !== undefined) continue;
    vars.push(variable(argumentName(arg), 'argument', { ...arg, isRequired: arg.type === 'positional' ? true : arg.isRequired }));
  }
  return vars;
}

function variable(name: string, kind: CatalogVariable['kind'], input: Omit<KeyValueInput, 'name'>): CatalogVariable {
  const fixed = input.value !== undefined ? substitute(input.value, input.variables) : undefined;
  return {
    name,
    kind,
    required: input.isRequired === true,
    secret: input.isSecret === true,
    ...(input.description !== undefined ? { description: input.description } : {}),
    ...(input.default !== undefined ? { default: input.default } : {}),
    ...(input.choices !== undefined && input.choices.length > 0 ? { choices: input.choices } : {}),
    ...(input.format !== undefined ? { format: input.format } : {}),
    ...(fixed !== undefined && !/\{[a-zA-Z_]/.test(fixed) ? { fixed } : {}),
  };
}

/** What a person gave for the variables. */
export interface VariableValues {
  /** Plain values (non-secret variables and arguments). */
  plain: ReadonlyMap<string, string>;
  /** Secret variables bound to an existing secret's key. */
  bound: ReadonlyMap<string, { secret: string; key: string }>;
  /** Secret variables whose value was typed or read (sealed into a new secret at write time). */
  typed: ReadonlySet<string>;
}

export interface CatalogInstall {
  request: InstallRequest;
  /** Required variables with nothing given (the install stops unless allowed; then the server is Stuck). */
  missing: CatalogVariable[];
}

/**
 * The install request for an entry and the values given. A required
 * variable without a value is reported in `missing`; with `allowMissing`, a
 * missing secret is still bound (to the secret it would be kept in), so the
 * server is written and reported Stuck, naming it, until that secret exists.
 */
export function catalogInstall(entry: CatalogEntry, name: string, values: VariableValues, options: { allowMissing?: boolean; remote?: boolean } = {}): CatalogInstall {
  const target = targetOf(entry.server, options.remote === true);
  const launch: Launch | undefined = 'package' in target ? launchOfPackage(target.package) : undefined;
  const vars = variablesOf(entry, options.remote === true);
  const missing: CatalogVariable[] = [];
  const env: { name: string; value: string }[] = [];
  const secrets: SecretBinding[] = [];
  const argValues = new Map<string, string>();
  for (const v of vars) {
    if (v.fixed !== undefined) {
      if (v.kind === 'env') env.push({ name: v.name, value: v.fixed });
      continue;
    }
    if (v.kind === 'argument') {
      const given = values.plain.get(v.name) ?? v.default;
      if (given !== undefined) argValues.set(v.name, given);
      else if (v.required) missing.push(v);
      continue;
    }
    if (v.secret) {
      const bound = values.bound.get(v.name);
      if (bound !== undefined) secrets.push({ variable: v.name, existing: bound });
      else if (values.typed.has(v.name)) secrets.push({ variable: v.name, create: {} });
      else if (v.required) {
        missing.push(v);
        if (options.allowMissing === true) secrets.push({ variable: v.name, unresolved: { secret: secretNameFor(v.name), key: v.name } });
      }
      continue;
    }
    const given = values.plain.get(v.name) ?? v.default;
    if (given !== undefined) env.push({ name: v.name, value: given });
    else if (v.required) missing.push(v);
  }
  const annotations = { [CATALOG_NAME_ANNOTATION]: entry.server.name, [CATALOG_VERSION_ANNOTATION]: entry.server.version };
  if (launch === undefined) {
    const remote = (target as { remote: Remote }).remote;
    return { request: { name, command: '', remote: remoteSpec(remote), env, secrets, annotations }, missing };
  }
  const args = launch.args.map((word) => word.replace(/\{([^{}]+)\}/g, (whole, slot: string) => argValues.get(slot) ?? whole));
  if (launch.port !== undefined && !env.some((e) => e.name === 'PORT')) env.push({ name: 'PORT', value: String(launch.port) });
  // npx and uvx packages get the image their runner is in, so render and the cluster runtime take them as they are.
  const image = RUNNER_IMAGES.get(launch.command);
  const request: InstallRequest = {
    name,
    command: launch.command,
    args,
    ...(image !== undefined ? { image } : {}),
    ...(launch.transport !== 'stdio' ? { transport: launch.transport } : {}),
    env,
    secrets,
    annotations,
  };
  return { request, missing };
}

/** How to give a missing variable on the command line. */
export function howToGive(v: CatalogVariable): string {
  if (v.kind === 'argument') return `--arg ${v.name}=VALUE`;
  if (v.secret) return `--secret ${v.name}=SECRET/KEY (an existing secret) or --secret-stdin ${v.name}`;
  return `--env ${v.name}=${v.choices ? v.choices.join('|') : 'VALUE'}`;
}

/** The `apiary install` command that writes the same (typed secret values are asked for when it runs). */
export function installCommand(entry: CatalogEntry, name: string, values: VariableValues): string {
  const vars = new Map(variablesOf(entry).map((v) => [v.name, v]));
  const words = ['apiary', 'install', entry.server.name, '--version', entry.server.version, '--name', name];
  for (const [k, v] of values.plain) words.push(vars.get(k)?.kind === 'argument' ? '--arg' : '--env', `${k}=${v}`);
  for (const [k, ref] of values.bound) words.push('--secret', `${k}=${ref.secret}/${ref.key}`);
  return words.map(shellWord).join(' ');
}

/** A spec.sandbox to start from, for `install --dry-run`: what the runner needs; the server's own folders and hosts are the user's to add. */
export interface SandboxSuggestion {
  /** Absent where bubblewrap cannot help (a hosted server, a container). */
  sandbox?: Sandbox;
  note: string;
}

const ADD_YOURS = "add the folders it works on (filesystem) and the hosts it talks to (allow)";

/** By the runner the install writes: npx and uvx fetch their package on a first run, so their registry is allowed. */
export function suggestedSandbox(request: InstallRequest): SandboxSuggestion {
  if (request.remote !== undefined) return { note: 'a hosted server runs nothing here to sandbox' };
  switch (request.command) {
    case 'npx':
      return { sandbox: { network: 'allow', allow: ['registry.npmjs.org:443'] }, note: `npx fetches the package from registry.npmjs.org on a first run (the default profile grants the npm cache ~/.npm); ${ADD_YOURS}` };
    case 'uvx':
      return {
        sandbox: { filesystem: { read: ['~/.local/bin'], write: ['~/.cache/uv', '~/.local/share/uv'] }, network: 'allow', allow: ['pypi.org:443', 'files.pythonhosted.org:443'] },
        note: `uvx (installed in ~/.local/bin by default) fetches the package from PyPI into its cache on a first run; ${ADD_YOURS}`,
      };
    case 'docker':
    case 'podman':
      return { note: 'a container isolates the server already, and bubblewrap cannot run a container engine' };
    default:
      return { sandbox: { network: 'none' }, note: ADD_YOURS };
  }
}
