/**
 * `apiary import`: a client's servers brought into the manifest directory,
 * their credentials sealed, and the client pointed at apiary's endpoints.
 *
 * No plaintext is left behind: the client's file as it was is kept only
 * sealed with this machine's key (`<file>.apiary-import.sealed`, owner-only,
 * one round per import that changed the file), the new file is written by
 * the same code as `client config --write` (every other key and the
 * formatting kept) without its plaintext backup, and `undo` gives the last
 * round's file back byte for byte. Each server gets its own `spec.port`, so
 * its URL is known now and stays the same, controller running or not.
 */
import { createHash } from 'node:crypto';
import { applyEdits, findNodeAtLocation, getNodeValue, parseTree } from 'jsonc-parser';
import { chmod, readFile, realpath, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { withoutSecrets } from '../api/remote.js';
import { seal, unseal } from '../crypto/seal.js';
import type { KeyStore } from '../crypto/keys.js';
import { sealerFor } from '../crypto/sealer.js';
import { SecretValue } from '../crypto/secret-value.js';
import { ApiaryError, messageOf } from '../errors.js';
import { withDirectoryLock } from '../manifests/edit.js';
import { newSecretName, planInstall, writeInstallLoaded, type InstallPlan } from '../manifests/install.js';
import { loadDirectory, type LoadResult } from '../manifests/loader.js';
import { clientConfig } from '../mcp/client-config.js';
import { loadEndpointToken, readEndpointToken } from '../mcp/endpoint-token.js';
import { freePort } from '../mcp/ports.js';
import type { StateLayout } from '../state/layout.js';
import { ensureDir, FILE_MODE, readTextIfPresent, writeFileAtomic } from '../util/atomic.js';
import { withFileLock } from '../util/file-lock.js';
import { canonicalEntry, CLIENT_FILE_KINDS, clientConfigPath, clientRecord, restoreClientRecord, serversKey, updateClientFile, writtenEntries, type ClientEdit, type ClientFileKind } from './config-file.js';
import { planImport, type ClientEntry, type ImportOptions, type ServerImport } from './import-plan.js';
import { readClientEntries } from './import-read.js';
import { asksForOAuthLogin } from '../mcp/oauth-client.js';

/** Every client whose file apiary knows can be imported. */
export const IMPORT_CLIENTS = CLIENT_FILE_KINDS;
export type ImportClient = (typeof IMPORT_CLIENTS)[number];

/** One place a client keeps servers: a file, and where in it. */
export interface ImportTarget {
  file: string;
  container: string[];
}

/**
 * Where a client keeps servers: its user-level file, or with --project DIR
 * the project's (Claude Code: the project's `.mcp.json` and the project's
 * own entry in ~/.claude.json; Cursor: `.cursor/mcp.json`; VS Code:
 * `.vscode/mcp.json`). --file names the file instead of the user-level one.
 */
export function importTargets(client: ImportClient, options: { file?: string; project?: string }, env: NodeJS.ProcessEnv): ImportTarget[] {
  const key = serversKey(client);
  const user = options.file !== undefined ? resolve(options.file) : clientConfigPath(client, env);
  if (options.project === undefined) return [{ file: user, container: [key] }];
  const project = resolve(options.project);
  switch (client) {
    case 'claude':
      return [
        { file: join(project, '.mcp.json'), container: [key] },
        { file: user, container: ['projects', project, key] },
      ];
    case 'cursor':
      return [{ file: options.file !== undefined ? user : join(project, '.cursor', 'mcp.json'), container: [key] }];
    case 'vscode':
      return [{ file: options.file !== undefined ? user : join(project, '.vscode', 'mcp.json'), container: [key] }];
    default:
      throw new ApiaryError('Usage', `${client} keeps no servers per project; import without --project`);
  }
}

export function sealedOriginalPath(file: string): string {
  return `${file}.apiary-import.sealed`;
}

/** What an import found and did (or, with dryRun, would do) in one file. */
export interface TargetResult {
  target: ImportTarget;
  /** The file is not there: nothing to import. */
  missing?: boolean;
  plans: { server: ServerImport; install: InstallPlan; port: number; url: string; written?: { file: string; action: string }; resumed?: boolean }[];
  skipped: { entry: string; why: string }[];
  /** Every entry the file has, by name (what --only may name). */
  found: string[];
  /** Entries apiary already wrote (an earlier import, or client config --write): left alone. */
  already: string[];
  /** The client file's change, every credential redacted (dry run), or what was written. */
  edit?: ClientEdit;
  diffRedactions: string[];
}

export interface ImportContext {
  dir: string;
  layout: StateLayout;
  keys: Pick<KeyStore, 'getOrCreate' | 'get'>;
  env: NodeJS.ProcessEnv;
  /** How a client starts this apiary (node and its entry script), for a client that reaches servers only as processes (Claude Desktop: `apiary proxy NAME`). */
  launcher: { command: string; args: string[] };
}

/** Plans (and unless dryRun, writes) the import of one client's targets. */
export async function importClient(ctx: ImportContext, client: ImportClient, targets: readonly ImportTarget[], options: ImportOptions & { dryRun?: boolean }): Promise<TargetResult[]> {
  const results: TargetResult[] = [];
  for (const target of targets) results.push(await importTarget(ctx, client, target, options));
  return results;
}

async function importTarget(ctx: ImportContext, client: ImportClient, target: ImportTarget, options: ImportOptions & { dryRun?: boolean }): Promise<TargetResult> {
  const result: TargetResult = { target, plans: [], skipped: [], already: [], found: [], diffRedactions: [] };
  const text = await readTextIfPresent(target.file);
  if (text === undefined) return { ...result, missing: true };
  const read = readClientEntries(text, target.file, target.container);
  result.found.push(...Object.keys(read.raw));
  result.skipped.push(...read.problems.filter((p) => options.only === undefined || options.only.includes(p.entry)));
  // What apiary wrote there itself is not imported again: a second import changes nothing.
  const ours = await writtenEntries(ctx.layout, target.file);
  const entries = await withLogins(
    read.entries.filter((e) => {
      const mine = ours[e.name] !== undefined && ours[e.name] === canonicalEntry(read.raw[e.name]);
      if (mine) result.already.push(e.name);
      return !mine;
    }),
    options.only,
  );
  const work = async (loaded: LoadResult): Promise<TargetResult> => {
    const planned = await planTarget(ctx, client, entries, loaded, options, result);
    if (planned.plans.length === 0 || options.dryRun === true) return planned;
    await writeServers(ctx, loaded, planned);
    return planned;
  };
  const planned = options.dryRun === true ? await work(await loadDirectory(ctx.dir)) : await withDirectoryLock(ctx.dir, async () => work(await loadDirectory(ctx.dir)));
  if (planned.plans.length === 0) return planned;
  return rewriteClient(ctx, client, planned, options.dryRun === true);
}

/**
 * Hosted entries that send no Authorization header, asked (without a token)
 * whether they want an OAuth login: the client logged in itself and keeps
 * its tokens elsewhere, so there is nothing to copy, and apiary connects.
 */
async function withLogins(entries: ClientEntry[], only: readonly string[] | undefined): Promise<ClientEntry[]> {
  return Promise.all(
    entries.map(async (e) => {
      if (e.kind !== 'remote' || (only !== undefined && !only.includes(e.name))) return e;
      if (Object.keys(e.headers).some((h) => h.toLowerCase() === 'authorization')) return e;
      return (await asksForOAuthLogin(e.url)) ? { ...e, oauth: true } : e;
    }),
  );
}

const IMPORTED_FROM = 'apiary.dev/imported-from';

/**
 * Entries an earlier import of this client already made a server of, whose
 * client entry was not rewritten (that import stopped half way, or --undo
 * gave the file back): the server stays as it is, and the entry is pointed
 * at it again.
 */
function resumable(client: ImportClient, entries: Parameters<typeof planImport>[1], loaded: LoadResult, options: ImportOptions, result: TargetResult): Set<string> {
  const done = new Set<string>();
  for (const resource of loaded.resources) {
    if (resource.kind !== 'MCPServer') continue;
    const from = resource.manifest.metadata.annotations?.[IMPORTED_FROM];
    const entry = entries.find((e) => from === `${client}:${e.name}`);
    const port = resource.manifest.spec.port;
    if (entry === undefined || port === undefined || (options.only !== undefined && !options.only.includes(entry.name))) continue;
    const [server] = planImport(client, [entry], new Set(), { ...options, rename: false, only: [entry.name] }).servers;
    if (server === undefined) continue;
    done.add(entry.name);
    const transport = resource.manifest.spec.remote?.transport ?? 'streamable-http';
    result.diffRedactions.push(...server.values.values());
    const install = { name: resource.name, server: {}, newSecrets: [], yaml: `# mcpserver/${resource.name}: imported before, left as it is\n`, command: '' };
    result.plans.push({ server: { ...server, name: resource.name }, install, port, url: `http://127.0.0.1:${port}/${transport === 'sse' ? 'sse' : 'mcp'}`, resumed: true });
  }
  return done;
}

/** Each entry's install plan, with a port of its own and secret names not taken yet. */
async function planTarget(ctx: ImportContext, client: ImportClient, all: Parameters<typeof planImport>[1], loaded: LoadResult, options: ImportOptions, result: TargetResult): Promise<TargetResult> {
  const resumed = resumable(client, all, loaded, options, result);
  const entries = all.filter((e) => !resumed.has(e.name));
  const servers = new Set(loaded.resources.filter((r) => r.kind === 'MCPServer').map((r) => r.name));
  const plan = planImport(client, entries, servers, options);
  result.skipped.push(...plan.skipped);
  const secretsTaken = new Set(loaded.resources.filter((r) => r.kind === 'Secret').map((r) => r.name));
  const portsTaken = await portsInUse(ctx, loaded);
  for (const server of plan.servers) {
    const secrets = server.request.secrets!.map((binding) => {
      if (!('create' in binding)) return binding;
      const secret = newSecretName(binding.variable, server.name, secretsTaken);
      if (secret === undefined) return binding;
      secretsTaken.add(secret);
      return { variable: binding.variable, create: { secret, key: binding.create.key ?? binding.variable } };
    });
    const port = await freshPort(portsTaken);
    let install: InstallPlan;
    try {
      install = planInstall({ ...server.request, secrets, port, annotations: { [IMPORTED_FROM]: `${client}:${server.entry}` } }, loaded.resources);
    } catch (err) {
      result.skipped.push({ entry: server.entry, why: messageOf(err) });
      continue;
    }
    result.diffRedactions.push(...server.values.values());
    const transport = server.request.remote?.transport ?? 'streamable-http';
    result.plans.push({ server, install, port, url: `http://127.0.0.1:${port}/${transport === 'sse' ? 'sse' : 'mcp'}` });
  }
  return result;
}

/** Ports no server may get: those ports.json keeps, and every spec.port in the directory. */
async function portsInUse(ctx: ImportContext, loaded: LoadResult): Promise<Set<number>> {
  const remembered = await readFile(join(ctx.layout.root, 'ports.json'), 'utf8').then((t) => Object.values(JSON.parse(t) as Record<string, number>), () => []);
  const declared = loaded.resources.flatMap((r) => (r.kind === 'MCPServer' && r.manifest.spec.port !== undefined ? [r.manifest.spec.port] : []));
  return new Set([...remembered, ...declared].filter((p): p is number => typeof p === 'number'));
}

async function freshPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (taken.has(port)) continue;
    taken.add(port);
    return port;
  }
}

/** Each server's new secrets sealed and its manifest written, as `apiary add` writes them. */
async function writeServers(ctx: ImportContext, first: LoadResult, result: TargetResult): Promise<void> {
  const sealer = result.plans.some((p) => p.resumed !== true && p.install.newSecrets.length > 0) ? await sealerFor(ctx.dir, ctx.keys) : undefined;
  let loaded = first;
  for (const plan of result.plans) {
    if (plan.resumed === true) continue;
    const values = new Map([...plan.server.values].map(([variable, value]) => [variable, new SecretValue(value)]));
    const written = await writeInstallLoaded(loaded, ctx.dir, plan.install, values, sealer);
    if (written.server !== undefined) plan.written = { file: written.server.file, action: written.server.action };
    loaded = await loadDirectory(ctx.dir);
  }
}

/**
 * The entry a client needs for apiary's endpoint at `url` (Windsurf names it
 * serverUrl; an SSE endpoint is typed so). Claude Desktop starts processes
 * only: its entry runs `apiary proxy SERVER` with the directories spelled
 * out (it starts servers from no particular folder), and holds no token.
 */
function endpointEntry(ctx: ImportContext, client: ImportClient, name: string, server: string, url: string, token: string | undefined): Record<string, unknown> {
  if (client === 'claude-desktop') return { command: ctx.launcher.command, args: [...ctx.launcher.args, 'proxy', server, '--dir', ctx.dir, '--state-dir', ctx.layout.root] };
  const sse = url.endsWith('/sse');
  if (client === 'windsurf') return { serverUrl: url, ...(token !== undefined ? { headers: { Authorization: `Bearer ${token}` } } : {}) };
  const entry = (clientConfig(client, { [name]: url }, token)[serversKey(client)] as Record<string, Record<string, unknown>>)[name]!;
  return sse && 'type' in entry ? { ...entry, type: 'sse' } : entry;
}

/** The client's imported entries replaced by apiary's endpoints; the file as it was sealed first. */
async function rewriteClient(ctx: ImportContext, client: ImportClient, result: TargetResult, dryRun: boolean): Promise<TargetResult> {
  // A dry run makes no token: the diff shows where the one made at the write goes.
  if (!dryRun) await ensureDir(ctx.layout.root);
  const token = dryRun ? ((await readEndpointToken(ctx.layout)) ?? 'APIARY-ENDPOINT-TOKEN') : await loadEndpointToken(ctx.layout);
  const entries = Object.fromEntries(result.plans.map((p) => [p.server.entry, { ...endpointEntry(ctx, client, p.server.entry, p.server.name, p.url, token), ...(p.server.disabled === true ? { disabled: true } : {}) }]));
  if (token !== undefined) result.diffRedactions.push(token);
  const kind: ClientFileKind = client;
  const remembered = await clientRecord(ctx.layout, result.target.file);
  const { edit } = await updateClientFile(kind, result.target.file, entries, ctx.layout, {
    force: true,
    noBackup: true,
    container: result.target.container,
    dryRun,
    beforeWrite: (planned) => keepSealed(ctx, planned, remembered, result.target.container),
  });
  return { ...result, edit };
}

/** One import round: the file before it (sealed), how to tell it was not changed since, and what apiary remembered of it then. */
interface Round {
  at: string;
  /** The file's text before the import, sealed with this machine's key; absent when there was no file. */
  before?: string;
  mode?: number;
  /** sha256 of the file as the import left it. */
  after: string;
  /** What clients.json held for the file before the import (sealed too: it holds apiary's endpoint token). */
  record?: string;
  /** Where the entries are, and which the import rewrote: what --undo gives back one by one in a file changed since. */
  container?: string[];
  entries?: string[];
}

interface SealedOriginal {
  apiVersion: 'apiary.dev/v1alpha1';
  kind: 'ImportedClientFile';
  file: string;
  rounds: Round[];
}

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');
/** The sealed text is bound to the file it came from: pasted beside another file, it does not open. */
const SEAL_NAME = 'apiary-import';

async function readSealed(file: string): Promise<SealedOriginal | undefined> {
  const text = await readFile(sealedOriginalPath(file), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as SealedOriginal;
    if (parsed.kind === 'ImportedClientFile' && Array.isArray(parsed.rounds)) return parsed;
  } catch {
    // Unreadable: said below.
  }
  throw new ApiaryError('Io', `${sealedOriginalPath(file)} is not a sealed copy apiary can read; nothing was changed`);
}

async function keepSealed(ctx: ImportContext, edit: ClientEdit, remembered: unknown, container: string[]): Promise<void> {
  const { key } = await ctx.keys.getOrCreate();
  const mode = (await stat(edit.path).catch(() => undefined))?.mode;
  const sealed = (await readSealed(edit.path)) ?? { apiVersion: 'apiary.dev/v1alpha1', kind: 'ImportedClientFile', file: edit.path, rounds: [] };
  sealed.rounds.push({
    at: new Date().toISOString(),
    ...(edit.before !== undefined ? { before: seal(key, SEAL_NAME, edit.path, edit.before) } : {}),
    ...(mode !== undefined ? { mode: mode & 0o777 } : {}),
    after: sha(edit.after ?? ''),
    ...(remembered !== undefined ? { record: seal(key, SEAL_NAME, `${edit.path}#record`, JSON.stringify(remembered)) } : {}),
    container,
    entries: [...edit.added, ...edit.updated],
  });
  await writeFileAtomic(sealedOriginalPath(edit.path), `${JSON.stringify(sealed, null, 2)}\n`, { mode: FILE_MODE });
}

export interface UndoResult {
  file: string;
  /** restored: the whole file as it was; entries: only the imported entries (the file was changed since); changed: nothing (changed, and no entry could be given back). */
  outcome: 'restored' | 'entries' | 'nothing' | 'changed';
  /** outcome entries: the entries given back, and those left (changed since apiary wrote them). */
  entries?: { restored: string[]; left: string[] };
  /** Rounds still kept (an earlier import), after this one was undone. */
  left?: number;
}

/**
 * Gives back the file as it was before the last import, byte for byte and
 * with its mode, when the file is still as that import left it (a file
 * changed since is left alone unless `force`: the change would be lost).
 */
export async function undoImport(ctx: Pick<ImportContext, 'keys' | 'layout'>, target: ImportTarget, options: { force?: boolean } = {}): Promise<UndoResult> {
  // Writers of a client file take turns on its real path, as client config --write does.
  const real = await realpath(target.file).catch(() => target.file);
  const undone = await withFileLock(real, async (): Promise<UndoResult & { record?: unknown }> => {
    const sealed = await readSealed(target.file);
    const round = sealed?.rounds.at(-1);
    if (sealed === undefined || round === undefined) return { file: target.file, outcome: 'nothing' };
    const now = await readFile(target.file, 'utf8').catch(() => undefined);
    const changed = now === undefined || sha(now) !== round.after;
    // Opened before anything is written: a key that does not open it changes nothing.
    const key = await ctx.keys.get();
    const before = round.before === undefined ? undefined : unseal(key, SEAL_NAME, target.file, round.before).reveal();
    const record = round.record === undefined ? undefined : (JSON.parse(unseal(key, SEAL_NAME, `${target.file}#record`, round.record).reveal()) as unknown);
    if (changed && options.force !== true) {
      // Changed since (Claude Code rewrites its file all the time): only the imported entries go back, the rest stays as it is now.
      const entries = now === undefined || before === undefined ? undefined : await entriesBack(ctx.layout, target.file, now, before, round);
      if (entries === undefined || entries.restored.length === 0) return { file: target.file, outcome: 'changed' };
      const mode = (await stat(target.file).catch(() => undefined))?.mode;
      await writeFileAtomic(target.file, entries.text, { mode: (mode ?? FILE_MODE) & 0o777, throughSymlink: true });
      await dropRound(target.file, sealed);
      return { file: target.file, outcome: 'entries', entries: { restored: entries.restored, left: entries.left }, left: sealed.rounds.length, record };
    }
    if (before === undefined) {
      await rm(target.file, { force: true });
    } else {
      const mode = round.mode ?? FILE_MODE;
      await writeFileAtomic(target.file, before, { mode, throughSymlink: true });
      await chmod(target.file, mode).catch(() => undefined);
    }
    await dropRound(target.file, sealed);
    return { file: target.file, outcome: 'restored', left: sealed.rounds.length, record };
  });
  // The record is put back after the file's lock is let go (client config --write takes the record's lock first).
  if (undone.outcome === 'restored' || undone.outcome === 'entries') await restoreClientRecord(ctx.layout, target.file, undone.record);
  const { record: _record, ...result } = undone;
  return result;
}

/** The last round is undone: the sealed copy keeps the earlier ones, or goes. */
async function dropRound(file: string, sealed: SealedOriginal): Promise<void> {
  sealed.rounds.pop();
  if (sealed.rounds.length === 0) await rm(sealedOriginalPath(file), { force: true });
  else await writeFileAtomic(sealedOriginalPath(file), `${JSON.stringify(sealed, null, 2)}\n`, { mode: FILE_MODE });
}

/**
 * The file as it is now with each imported entry given back as the file had
 * it before the import; an entry changed since apiary wrote it is left (the
 * person's change wins), and named.
 */
async function entriesBack(layout: StateLayout, file: string, now: string, before: string, round: Round): Promise<{ text: string; restored: string[]; left: string[] } | undefined> {
  if (round.container === undefined || round.entries === undefined) return undefined;
  const ours = await writtenEntries(layout, file);
  const original = parseTree(before, [], { allowTrailingComma: true, disallowComments: false });
  let text = now;
  const restored: string[] = [];
  const left: string[] = [];
  for (const name of round.entries) {
    const current = parseTree(text, [], { allowTrailingComma: true, disallowComments: false });
    const node = current === undefined ? undefined : findNodeAtLocation(current, [...round.container, name]);
    const was = original === undefined ? undefined : findNodeAtLocation(original, [...round.container, name]);
    if (node === undefined || was === undefined || canonicalEntry(getNodeValue(node)) !== ours[name]) {
      left.push(name);
      continue;
    }
    text = applyEdits(text, [{ offset: node.offset, length: node.length, content: before.slice(was.offset, was.offset + was.length) }]);
    restored.push(name);
  }
  return { text, restored, left };
}

/** The client file's change as a person may see it: every imported credential, and apiary's token, redacted. */
export function redacted(text: string, result: TargetResult): string {
  return withoutSecrets(text, result.diffRedactions);
}
