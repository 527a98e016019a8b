/**
 * Installing a server: from a request (name, command, variables) to the
 * manifests that declare it, planned purely, then written through the same
 * code as `secret set` and `apply`. `apiary add` and the console's install
 * form both come here, so what one writes the other would too.
 */
import { stringify } from 'yaml';
import { sealerFor, type Sealer } from '../crypto/sealer.js';
import { API_GROUP_VERSION, DNS1123_MAX, isDns1123Label, resourceKey, SECRET_KEY } from '../api/names.js';
import { MCPServerManifest, TRANSPORTS, type Transport } from '../api/manifests.js';
import { referencedNames } from '../api/remote.js';
import type { KeyStore } from '../crypto/keys.js';
import { secretForms } from '../crypto/secret-data.js';
import type { SecretValue } from '../crypto/secret-value.js';
import { ApiaryError } from '../errors.js';
import { applyLoaded, type AppliedChange, type InputDocument } from './apply.js';
import { withDirectoryLock } from './edit.js';
import { loadDirectory, type LoadResult } from './loader.js';
import { parseManifestText } from './parse.js';
import type { Resource, SecretResource } from './resource.js';
import { setSecretValuesLoaded } from './secret-edits.js';

/** An environment variable's name as a shell and most servers accept it. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A secret variable: bound to an existing secret's key, or to a new sealed secret made from a value given at write time. */
export type SecretBinding =
  | { variable: string; existing: { secret: string; key: string } }
  /** A new secret: named after the variable unless a name is given. */
  | { variable: string; create: { secret?: string; key?: string } }
  /** Bound to a secret that does not exist yet (install --allow-missing): the server is Stuck, naming it, until it does. */
  | { variable: string; unresolved: { secret: string; key: string } };

export interface InstallRequest {
  name: string;
  command: string;
  args?: string[];
  /** spec.workingDir (relative to the manifest's folder, or absolute). */
  workingDir?: string;
  /** spec.suspend: written but not started. */
  suspend?: boolean;
  transport?: Transport;
  port?: number;
  /** spec.image: the container it runs in on Kubernetes (unused by local processes). */
  image?: string;
  env?: { name: string; value: string }[];
  secrets?: SecretBinding[];
  /** metadata.annotations (where a catalog install came from). */
  annotations?: Record<string, string>;
  /** A hosted server instead of a command (spec.remote); `command` is then empty. */
  remote?: { url: string; transport?: 'streamable-http' | 'sse'; headers?: { name: string; value: string }[]; auth?: { type: 'oauth'; scopes?: string[] } };
}

export interface NewSecret {
  variable: string;
  secret: string;
  key: string;
}

export interface InstallPlan {
  name: string;
  /** The MCPServer manifest, as it will be written. */
  server: Record<string, unknown>;
  /** Secrets (or keys) to seal from the values given at write time. */
  newSecrets: NewSecret[];
  /** Every manifest the install writes, values shown as placeholders: what a person reviews first. */
  yaml: string;
  /** The `apiary add` command that writes the same thing. */
  command: string;
}

/** GITHUB_TOKEN -> github-token: the secret a variable's value is kept in. */
export function secretNameFor(variable: string): string {
  return variable.toLowerCase().replace(/_/g, '-').replace(/[^a-z0-9-]/g, '').replace(/-+/g, '-').replace(/^-+|-+$/g, '');
}

/**
 * The name for a new secret holding `variable`: after the variable, or, when
 * that name is taken, scoped to the server (`gh-github-token`), never a
 * counter such as `_2` that says nothing about whose it is.
 */
export function newSecretName(variable: string, server: string, taken: ReadonlySet<string>): string | undefined {
  const base = secretNameFor(variable);
  const scoped = `${server}-${base}`.slice(0, DNS1123_MAX).replace(/-+$/, '');
  for (const candidate of [base, scoped]) if (isDns1123Label(candidate) && !taken.has(candidate)) return candidate;
  return undefined;
}

/** Plans an install against the declared resources; every problem is reported at once, nothing is written. */
export function planInstall(request: InstallRequest, resources: readonly Resource[], options: { replace?: boolean } = {}): InstallPlan {
  const problems: string[] = [];
  const { name } = request;
  if (!isDns1123Label(name)) problems.push(`name "${name}" is not valid: use lowercase letters, digits and "-" (at most 63)`);
  else if (options.replace !== true && resources.some((r) => r.kind === 'MCPServer' && r.name === name)) problems.push(`mcpserver/${name} already exists; pick another name or edit its manifest`);
  if (request.remote === undefined && request.command.trim() === '') problems.push('the command is empty');
  if (request.transport !== undefined && !TRANSPORTS.includes(request.transport)) problems.push(`transport must be one of ${TRANSPORTS.join(', ')}`);
  const secrets = new Map(resources.filter((r): r is SecretResource => r.kind === 'Secret').map((s) => [s.name, s]));
  const taken = new Set(secrets.keys());
  const seen = new Set<string>();
  const env: Record<string, unknown>[] = [];
  for (const variable of request.env ?? []) {
    checkVariable(variable.name, seen, problems);
    env.push({ name: variable.name, value: variable.value });
  }
  const newSecrets: NewSecret[] = [];
  for (const binding of request.secrets ?? []) {
    checkVariable(binding.variable, seen, problems);
    let ref: { secret: string; key: string } | undefined;
    if ('unresolved' in binding) {
      ref = binding.unresolved;
    } else if ('existing' in binding) {
      const { secret, key } = binding.existing;
      const found = secrets.get(secret);
      if (found === undefined) problems.push(`${binding.variable}: secret "${secret}" not found`);
      else if (!secretForms(found).has(key)) problems.push(`${binding.variable}: secret "${secret}" has no key "${key}"`);
      ref = { secret, key };
    } else {
      const key = binding.create.key ?? binding.variable;
      const secret = binding.create.secret ?? newSecretName(binding.variable, name, taken);
      if (secret === undefined) problems.push(`${binding.variable}: the names "${secretNameFor(binding.variable)}" and "${name}-${secretNameFor(binding.variable)}" are both taken; bind an existing secret instead`);
      else if (!isDns1123Label(secret)) problems.push(`${binding.variable}: "${secret}" is not a valid secret name`);
      else if (!SECRET_KEY.test(key)) problems.push(`${binding.variable}: "${key}" is not a valid key`);
      else if (secrets.get(secret) !== undefined && secretForms(secrets.get(secret)!).has(key)) problems.push(`${binding.variable}: secret "${secret}" already has key "${key}"; bind it as an existing secret, or update its value on the Secrets page`);
      else {
        taken.add(secret);
        newSecrets.push({ variable: binding.variable, secret, key });
        ref = { secret, key };
      }
    }
    if (ref !== undefined) env.push({ name: binding.variable, valueFrom: { secretKeyRef: { name: ref.secret, key: ref.key } } });
  }
  if (request.remote !== undefined) problems.push(...undeclaredReferences(request.remote, seen));
  const args = request.args ?? [];
  const server = {
    apiVersion: API_GROUP_VERSION,
    kind: 'MCPServer',
    metadata: { name, ...(request.annotations !== undefined ? { annotations: request.annotations } : {}) },
    spec: {
      ...(request.image !== undefined ? { image: request.image } : {}),
      ...(request.remote !== undefined ? { remote: request.remote } : { command: request.command }),
      ...(args.length ? { args } : {}),
      ...(request.workingDir !== undefined ? { workingDir: request.workingDir } : {}),
      ...(request.transport ? { transport: request.transport } : {}),
      ...(request.port !== undefined ? { port: request.port } : {}),
      ...(env.length ? { env } : {}),
      ...(request.suspend === true ? { suspend: true } : {}),
    },
  };
  if (problems.length === 0) {
    const checked = MCPServerManifest.safeParse(server);
    if (!checked.success) problems.push(...checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  if (problems.length > 0) throw new ApiaryError('Usage', `cannot install ${name}: ${problems.join('; ')}`, { hints: problems.length > 1 ? problems : [] });
  return { name, server, newSecrets, yaml: previewYaml(server, newSecrets), command: addCommand(request, newSecrets) };
}

/** A hosted server's $(VAR) that no variable of the request declares: sent as written, it would never be the value meant. */
function undeclaredReferences(remote: NonNullable<InstallRequest['remote']>, declared: ReadonlySet<string>): string[] {
  const places = [{ where: 'the URL', text: remote.url }, ...(remote.headers ?? []).map((h) => ({ where: `header ${h.name}`, text: h.value }))];
  return places.flatMap(({ where, text }) =>
    referencedNames(text)
      .filter((name) => !declared.has(name))
      .map((name) => `${where} refers to $(${name}), which no variable declares: add --secret ${name} (its value sealed) or --env ${name}=VALUE`),
  );
}

function checkVariable(variable: string, seen: Set<string>, problems: string[]): void {
  if (!ENV_NAME.test(variable)) problems.push(`"${variable}" is not a valid variable name (letters, digits and "_", not starting with a digit)`);
  else if (seen.has(variable)) problems.push(`variable ${variable} is given twice`);
  seen.add(variable);
}

function previewYaml(server: Record<string, unknown>, newSecrets: readonly NewSecret[]): string {
  const bySecret = new Map<string, string[]>();
  for (const s of newSecrets) bySecret.set(s.secret, [...(bySecret.get(s.secret) ?? []), s.key]);
  const docs = [`# MCPServer\n${stringify(server)}`];
  for (const [secret, keys] of bySecret) {
    const encryptedData = Object.fromEntries(keys.map((k) => [k, '<sealed for this machine when written>']));
    docs.push(`# Secret (new, or new keys in an existing one)\n${stringify({ apiVersion: API_GROUP_VERSION, kind: 'Secret', metadata: { name: secret }, encryptedData })}`);
  }
  return docs.join('---\n');
}

/** A word as a POSIX shell reads it back. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function addCommand(request: InstallRequest, newSecrets: readonly NewSecret[]): string {
  const words = ['apiary', 'add', request.name];
  if (request.transport) words.push('--transport', request.transport);
  if (request.port !== undefined) words.push('--port', String(request.port));
  if (request.image !== undefined) words.push('--image', request.image);
  for (const e of request.env ?? []) words.push('--env', `${e.name}=${e.value}`);
  for (const binding of request.secrets ?? []) {
    const created = newSecrets.find((s) => s.variable === binding.variable);
    const ref = 'existing' in binding ? binding.existing : 'unresolved' in binding ? binding.unresolved : created;
    const automatic = created !== undefined && created.secret === secretNameFor(created.variable) && created.key === created.variable;
    words.push('--secret', automatic || ref === undefined ? binding.variable : `${binding.variable}=${ref.secret}/${ref.key}`);
  }
  if (request.remote !== undefined) return [...words, ...remoteWords(request.remote)].map(shellWord).join(' ');
  words.push('--', request.command, ...(request.args ?? []));
  return words.map(shellWord).join(' ');
}

/** A hosted server's part of the command: --url, its transport and --header NAME=VALUE ($(VAR) as written). */
function remoteWords(remote: NonNullable<InstallRequest['remote']>): string[] {
  const words = ['--url', remote.url];
  if (remote.transport !== undefined) words.push('--transport', remote.transport);
  for (const h of remote.headers ?? []) words.push('--header', `${h.name}=${h.value}`);
  // Scopes have no flag: the server's 401 names them, and a manifest can set spec.remote.auth.scopes.
  if (remote.auth !== undefined) words.push('--oauth');
  return words;
}

export interface InstallResult {
  secretsCreated: NewSecret[];
  server: AppliedChange | undefined;
}

/**
 * Writes an install: each new value sealed into its secret (as `secret set`
 * does), then the server manifest applied (as `apply` does), all under one
 * hold of the directory lock. A missing value stops it before anything is written.
 */
export async function writeInstall(dir: string, plan: InstallPlan, values: ReadonlyMap<string, SecretValue>, keys: Pick<KeyStore, 'getOrCreate'>): Promise<InstallResult> {
  requireValues(plan, values);
  const sealer = plan.newSecrets.length > 0 ? await sealerFor(dir, keys) : undefined;
  return withDirectoryLock(dir, async () => writeInstallLoaded(await loadDirectory(dir), dir, plan, values, sealer));
}

function requireValues(plan: InstallPlan, values: ReadonlyMap<string, SecretValue>): void {
  const missing = plan.newSecrets.filter((s) => values.get(s.variable) === undefined || values.get(s.variable)!.reveal() === '');
  if (missing.length > 0) throw new ApiaryError('Usage', `no value given for ${missing.map((s) => s.variable).join(', ')}; nothing was written`);
}

/**
 * writeInstall with the directory lock held and the directory as `loaded`
 * read under it (the plan made against the same read); `sealer` is needed
 * when the plan makes new secrets.
 */
export async function writeInstallLoaded(loaded: LoadResult, dir: string, plan: InstallPlan, values: ReadonlyMap<string, SecretValue>, sealer: Sealer | undefined): Promise<InstallResult> {
  requireValues(plan, values);
  const text = `# Installed by apiary.\n${stringify(plan.server)}`;
  const [doc] = parseManifestText(text, '-', '<install>');
  if (doc?.resource === undefined || doc.errors.length > 0) throw new ApiaryError('ManifestInvalid', `the planned manifest does not validate: ${doc?.errors[0]?.message ?? 'empty'}`);
  // Several keys of one new secret go into one new document: each secret is written once.
  const bySecret = new Map<string, Map<string, string>>();
  for (const s of plan.newSecrets) {
    if (sealer === undefined) throw new ApiaryError('Usage', 'new secrets need a sealer; nothing was written');
    const sealed = bySecret.get(s.secret) ?? new Map<string, string>();
    sealed.set(s.key, await sealer.seal(s.secret, s.key, values.get(s.variable)!));
    bySecret.set(s.secret, sealed);
  }
  for (const [secret, sealed] of bySecret) await setSecretValuesLoaded(loaded, dir, secret, sealed);
  const input: InputDocument = { key: resourceKey('MCPServer', plan.name), kind: 'MCPServer', name: plan.name, text, resource: doc.resource, origin: '<install>', inDirectory: false };
  const [server] = await applyLoaded(loaded, dir, [input]);
  return { secretsCreated: plan.newSecrets, server };
}
