/**
 * `apiary import`, planned purely: a client's entries (as its file holds
 * them) become install requests, each value that can be a credential bound
 * to a new sealed secret, and nothing is read or written here.
 *
 * What counts as a credential, and why. Every value of `env` and of a
 * header is one, unless it is plainly not: its name says nothing of a
 * token, key, secret, password, auth or session, and its value is a path, a
 * number, a yes/no or a log level (`--plain VAR` and `--seal-all` override).
 * In `args`, the value after a flag that names a token, key, secret or
 * password (`--api-key X`, `--token=X`) is one, and so is any argument that
 * starts the way well-known tokens do (`ghp_`, `github_pat_`, `xoxb-`,
 * `sk-`...). A secret in args reaches the server through `$(VAR)`, which
 * puts it in the process list; apiary cannot know whether a server would
 * read the same value from its environment instead, so when the entry's own
 * env already holds the very same value (a sign the server reads that
 * variable), the argument refers to that variable and no second secret is
 * made, and the report says which arguments carry a secret.
 */
import type { InstallRequest, SecretBinding } from '../manifests/install.js';
import { ENV_NAME, secretNameFor } from '../manifests/install.js';
import { isDns1123Label } from '../api/names.js';

/** One server as a client's file declares it. */
export type ClientEntry = (
  | { name: string; kind: 'stdio'; command: string; args: string[]; env: Record<string, string>; cwd?: string; ignored: string[] }
  | { name: string; kind: 'remote'; url: string; transport: 'streamable-http' | 'sse'; headers: Record<string, string>; ignored: string[]; oauth?: boolean }
) & {
  /** Kept in the client's file but switched off (Windsurf's `disabled`): imported suspended. */
  disabled?: boolean;
};

export interface ImportOptions {
  sealAll?: boolean;
  /** Variables (env names, or header names) kept plain whatever they look like. */
  plain?: readonly string[];
  rename?: boolean;
  only?: readonly string[];
  /**
   * The environment the import runs in: what `${VAR}` (Claude Code),
   * `${env:VAR}` (Cursor, VS Code, Windsurf) in a client's values stand for,
   * as the client would expand them when it starts the server.
   */
  environment?: Readonly<Record<string, string | undefined>>;
  /** The project folder, for VS Code's `${workspaceFolder}` (with --project). */
  workspace?: string;
}

/** Where one imported value went, for the report (never the value). */
export interface Placed {
  /** env GITHUB_TOKEN, header Authorization, args[2] */
  from: string;
  variable: string;
  sealed: boolean;
  /** The value refers to the client's variables or prompts that are not set here: the secret is to be set by hand. */
  unresolved?: { secret: string; key: string; refs: string[] };
}

export interface ServerImport {
  /** The entry's name in the client's file. */
  entry: string;
  name: string;
  request: InstallRequest;
  /** The value of each new secret's variable: what is sealed at write time. */
  values: Map<string, string>;
  placed: Placed[];
  notes: string[];
  /** Switched off in the client: the manifest is suspended, and the client's new entry stays switched off. */
  disabled?: boolean;
}

export interface ImportPlan {
  servers: ServerImport[];
  skipped: { entry: string; why: string }[];
}

const CREDENTIAL_NAME = /token|secret|passw(or)?d|passwd|pwd|api[-_]?key|apikey|access[-_]?key|private[-_]?key|credential|auth|cookie|session|(^|[-_])pat($|[-_])|bearer|signature|cert/i;
const CREDENTIAL_FLAG = /token|secret|passw(or)?d|passwd|api[-_]?key|apikey|access[-_]?key|private[-_]?key|credential|(^|-)key$|(^|-)pat$|auth/i;
const TOKEN_PREFIX = /^(ghp_|gho_|ghs_|ghu_|github_pat_|glpat-|xox[abpres]-|sk-|sk_live_|rk_live_|AKIA|AIza|hf_|npm_|shpat_)/;
const PLAIN_WORD = /^(true|false|yes|no|on|off|-?\d+(\.\d+)?|trace|debug|info|information|notice|warn|warning|error|fatal|silent|verbose|none|production|development|test|stdio|http|sse|json|text)$/i;
const PATH_LIKE = /^(\/|~\/|\.\.?\/|[A-Za-z]:[\\/])[^\s]*$/;
/** Headers that never carry a credential. */
const PLAIN_HEADERS = new Set(['accept', 'accept-language', 'content-type', 'user-agent', 'mcp-protocol-version']);

/** A value that is plainly not a credential: a path, a number, a yes/no, a level; a URL without user info or query. */
export function plainlyNotCredential(name: string, value: string): boolean {
  if (CREDENTIAL_NAME.test(name)) return false;
  if (value === '' || PLAIN_WORD.test(value) || PATH_LIKE.test(value)) return true;
  return /^https?:\/\/[^\s@?#]+$/.test(value);
}

/** `$` written so that apiary's $(VAR) expansion gives back the text as the client had it. */
export function escapeReferences(text: string): string {
  return text.replace(/\$(?=[$(])/g, '$$$$');
}

/** A client's entry name as an MCPServer name: lowercase, "-" for anything else; undefined when nothing is left. */
export function serverNameFor(entry: string): string | undefined {
  const name = entry.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
  return isDns1123Label(name) ? name : undefined;
}

/** GITHUB for github-server's variables. */
function prefixOf(server: string): string {
  return server.toUpperCase().replace(/-/g, '_');
}

/** A header or flag name as a variable: x-api-key -> X_API_KEY. */
function variableFor(text: string): string {
  const upper = text.replace(/^-+/, '').toUpperCase().replace(/[^A-Z0-9_]+/g, '_').replace(/^_+|_+$/g, '');
  return /^[0-9]/.test(upper) || upper === '' ? `V_${upper}` : upper;
}

/**
 * A value with the client's own references expanded from the environment:
 * `${VAR}` and `${VAR:-default}` (Claude Code), `${env:VAR}` (Cursor, VS Code,
 * Windsurf), `${workspaceFolder}` (VS Code). What cannot be expanded here (an
 * unset variable, VS Code's `${input:...}` prompts) is named in `unresolved`.
 */
export function resolveClientReferences(text: string, options: Pick<ImportOptions, 'environment' | 'workspace'>): { value: string; unresolved: string[] } {
  const unresolved: string[] = [];
  const value = text.replace(/\$\{([^}]+)\}/g, (whole, inner: string) => {
    if (inner === 'workspaceFolder' && options.workspace !== undefined) return options.workspace;
    const m = /^(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/.exec(inner);
    const found = m === null ? undefined : (options.environment?.[m[1]!] ?? m[2]);
    if (found !== undefined && found !== '') return found;
    unresolved.push(whole);
    return whole;
  });
  return { value, unresolved };
}

/** Plans every entry; names clash with `taken` (existing servers) unless --rename picks another. */
export function planImport(client: string, entries: readonly ClientEntry[], takenServers: ReadonlySet<string>, options: ImportOptions = {}): ImportPlan {
  const plan: ImportPlan = { servers: [], skipped: [] };
  const taken = new Set(takenServers);
  const only = options.only !== undefined ? new Set(options.only) : undefined;
  for (const entry of entries) {
    if (only !== undefined && !only.has(entry.name)) continue;
    const base = serverNameFor(entry.name);
    if (base === undefined) {
      plan.skipped.push({ entry: entry.name, why: `"${entry.name}" gives no valid server name (lowercase letters, digits and "-")` });
      continue;
    }
    let name = base;
    if (taken.has(name)) {
      if (options.rename !== true) {
        plan.skipped.push({ entry: entry.name, why: `mcpserver/${name} already exists; skipped (--rename imports it under another name)` });
        continue;
      }
      name = freeName(base, client, taken);
    }
    taken.add(name);
    const server = entry.kind === 'stdio' ? planStdio(entry, name, options) : planRemote(entry, name, options);
    plan.servers.push(entry.disabled === true ? { ...server, request: { ...server.request, suspend: true }, disabled: true, notes: [...server.notes, 'switched off in the client: imported suspended (spec.suspend: true; apiary resume starts it)'] } : server);
  }
  return plan;
}

function freeName(base: string, client: string, taken: ReadonlySet<string>): string {
  const stem = `${base}-${client}`.slice(0, 60).replace(/-+$/, '');
  if (!taken.has(stem)) return stem;
  for (let n = 2; ; n++) if (!taken.has(`${stem}-${n}`)) return `${stem}-${n}`;
}

/** The variables of one server, as they are bound: plain, or a new secret named later. */
class Variables {
  readonly env: { name: string; value: string }[] = [];
  readonly secrets: SecretBinding[] = [];
  readonly values = new Map<string, string>();
  readonly placed: Placed[] = [];
  readonly notes: string[] = [];
  readonly #names = new Set<string>();

  constructor(
    readonly server: string,
    readonly options: ImportOptions,
  ) {}

  has(name: string): boolean {
    return this.#names.has(name);
  }

  /** A name not taken yet: the given one, else scoped to the server (unless it is already), else numbered. */
  free(wanted: string): string {
    if (!this.#names.has(wanted)) return wanted;
    const prefix = `${prefixOf(this.server)}_`;
    const scoped = wanted.startsWith(prefix) ? wanted : `${prefix}${wanted}`;
    if (!this.#names.has(scoped)) return scoped;
    for (let n = 2; ; n++) if (!this.#names.has(`${scoped}_${n}`)) return `${scoped}_${n}`;
  }

  /** Binds `variable` to `value`, sealed unless it is plainly not a credential (or --plain says so). */
  add(variable: string, written: string, from: string, forceSeal = false): void {
    this.#names.add(variable);
    const { value, unresolved } = resolveClientReferences(written, this.options);
    if (unresolved.length > 0) {
      // A value the client fills in itself (a prompt, a variable not set here): bound to a secret set by hand; the server waits for it.
      const ref = { secret: secretNameFor(variable), key: variable };
      this.secrets.push({ variable, unresolved: ref });
      this.placed.push({ from, variable, sealed: true, unresolved: { ...ref, refs: unresolved } });
      return;
    }
    const plain = this.options.plain?.includes(variable) === true || this.options.plain?.includes(from.replace(/^(env|header) /, '')) === true;
    const sealed = !plain && (forceSeal || this.options.sealAll === true || !plainlyNotCredential(variable, value));
    if (sealed) {
      this.secrets.push({ variable, create: { key: variable } });
      this.values.set(variable, value);
    } else {
      this.env.push({ name: variable, value: escapeReferences(value) });
    }
    this.placed.push({ from, variable, sealed });
  }

  /** The variable already holding exactly `value`, sealed, if any. */
  holding(value: string): string | undefined {
    for (const [variable, held] of this.values) if (held === value) return variable;
    return undefined;
  }
}

function planStdio(entry: Extract<ClientEntry, { kind: 'stdio' }>, name: string, options: ImportOptions): ServerImport {
  const vars = new Variables(name, options);
  const notes = entry.ignored.map((key) => `"${key}" is not carried over (apiary has no such setting)`);
  for (const [variable, value] of Object.entries(entry.env)) {
    if (!ENV_NAME.test(variable)) {
      notes.push(`env "${variable}" is not a variable name apiary can set; left out`);
      continue;
    }
    vars.add(variable, value, `env ${variable}`);
  }
  const args = entry.args.map((arg, i) => argument(arg, i, entry.args, vars));
  const request: InstallRequest = { name, command: entry.command, args, env: vars.env, secrets: vars.secrets };
  if (entry.cwd !== undefined) notes.push(`cwd ${entry.cwd} is kept as spec.workingDir`);
  return { entry: entry.name, name, request: entry.cwd !== undefined ? { ...request, workingDir: entry.cwd } : request, values: vars.values, placed: vars.placed, notes: [...notes, ...vars.notes] };
}

/** One argument, with a credential in it replaced by $(VAR). */
function argument(arg: string, i: number, args: readonly string[], vars: Variables): string {
  const inline = /^(--?[A-Za-z0-9][A-Za-z0-9_.-]*)=(.+)$/.exec(arg);
  if (inline !== null && CREDENTIAL_FLAG.test(inline[1]!)) return `${inline[1]}=${bindArgument(inline[2]!, inline[1]!, `args[${i}]`, vars)}`;
  const flag = i > 0 ? args[i - 1]! : '';
  const afterFlag = /^--?[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(flag) && CREDENTIAL_FLAG.test(flag) && !arg.startsWith('-');
  if (afterFlag) return bindArgument(arg, flag, `args[${i}]`, vars);
  if (TOKEN_PREFIX.test(arg)) return bindArgument(arg, `ARG_${i}`, `args[${i}]`, vars);
  const { value, unresolved } = resolveClientReferences(arg, vars.options);
  if (unresolved.length > 0) vars.notes.push(`args[${i}] refers to ${unresolved.join(', ')}, which is not set here; passed as written`);
  return escapeReferences(value);
}

function bindArgument(value: string, flag: string, from: string, vars: Variables): string {
  const same = vars.holding(resolveClientReferences(value, vars.options).value);
  if (same !== undefined) {
    vars.placed.push({ from, variable: same, sealed: true });
    return `$(${same})`;
  }
  // A name of the server's own: a flag such as --api-key says nothing of whose key it is.
  const named = variableFor(flag);
  const variable = vars.free(named.startsWith(`${prefixOf(vars.server)}_`) ? named : `${prefixOf(vars.server)}_${named}`);
  vars.add(variable, value, from, true);
  return `$(${variable})`;
}

/**
 * A hosted server's URL with its credentials sealed: the password of its
 * user info, and each query parameter named like a credential (or holding
 * what looks like a token). Each is sealed as it is written, percent-encoding
 * and all, so $(VAR) gives back the very same URL.
 */
function sealUrl(url: string, vars: Variables): string {
  const parts = /^(https?:\/\/)([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/.exec(url);
  if (parts === null) return escapeReferences(url);
  const [, scheme, authority, path, query, fragment] = parts as unknown as [string, string, string, string, string | undefined, string | undefined];
  const bind = (raw: string, name: string, from: string): string => {
    const variable = vars.free(`${prefixOf(vars.server)}_${variableFor(name)}`);
    vars.add(variable, raw, from, true);
    return `$(${variable})`;
  };
  let host = escapeReferences(authority);
  const at = authority.lastIndexOf('@');
  const colon = at < 0 ? -1 : authority.slice(0, at).indexOf(':');
  if (colon >= 0) host = `${escapeReferences(authority.slice(0, colon))}:${bind(authority.slice(colon + 1, at), 'URL_PASSWORD', 'url password')}@${escapeReferences(authority.slice(at + 1))}`;
  const params = (query ?? '')
    .slice(1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const key = eq < 0 ? pair : pair.slice(0, eq);
      const value = eq < 0 ? '' : pair.slice(eq + 1);
      const credential = value !== '' && (CREDENTIAL_NAME.test(key) || TOKEN_PREFIX.test(value));
      return credential ? `${escapeReferences(key)}=${bind(value, key, `url query ${key}`)}` : escapeReferences(pair);
    });
  return `${scheme}${host}${escapeReferences(path)}${query !== undefined ? `?${params.join('&')}` : ''}${escapeReferences(fragment ?? '')}`;
}

function planRemote(entry: Extract<ClientEntry, { kind: 'remote' }>, name: string, options: ImportOptions): ServerImport {
  const vars = new Variables(name, options);
  const notes = entry.ignored.map((key) => `"${key}" is not carried over (apiary has no such setting)`);
  const headers: { name: string; value: string }[] = [];
  for (const [header, value] of Object.entries(entry.headers)) {
    if (PLAIN_HEADERS.has(header.toLowerCase()) && options.sealAll !== true) {
      headers.push({ name: header, value: escapeReferences(value) });
      continue;
    }
    // Authorization: Bearer X keeps its scheme in the manifest, the credential alone is sealed.
    const scheme = /^(Bearer|Basic|Token|Bot)\s+(\S.*)$/i.exec(value);
    const secretPart = scheme !== null ? scheme[2]! : value;
    const variable = vars.free(`${prefixOf(name)}_${variableFor(header)}`);
    vars.add(variable, secretPart, `header ${header}`);
    const sealed = vars.placed.at(-1)!.sealed;
    const reference = sealed ? `$(${variable})` : escapeReferences(secretPart);
    // A plain one is written as it is, no variable in between.
    if (!sealed) vars.env.pop();
    headers.push({ name: header, value: scheme !== null ? `${scheme[1]} ${reference}` : reference });
  }
  const url = resolveClientReferences(entry.url, options);
  if (url.unresolved.length > 0) notes.push(`the URL refers to ${url.unresolved.join(', ')}, which is not set here; kept as written`);
  const sealedUrl = sealUrl(url.value, vars);
  const request: InstallRequest = {
    name,
    command: '',
    env: vars.env,
    secrets: vars.secrets,
    remote: { url: sealedUrl, ...(entry.transport === 'sse' ? { transport: 'sse' as const } : {}), ...(headers.length > 0 ? { headers } : {}), ...(entry.oauth === true ? { auth: { type: 'oauth' as const } } : {}) },
  };
  // The client logged in itself (its tokens are its own, not in its file): apiary logs in once too, rather than copy a token.
  if (entry.oauth === true) notes.push(`it logs in with OAuth (it answers 401 naming its authorization metadata): no token is copied; connect it once with: apiary connect ${name}`);
  return { entry: entry.name, name, request, values: vars.values, placed: vars.placed, notes: [...notes, ...vars.notes] };
}
