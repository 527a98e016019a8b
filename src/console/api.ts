/**
 * The console's JSON API under /api/v1/. Reads return the objects `get -o
 * json` prints (composed by the same function); every write calls the same
 * function a CLI verb calls and lands in the manifest directory. No response
 * carries a secret value: values only ever come in, in a request body.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sealerFor } from '../crypto/sealer.js';
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import type { Binding, ConsoleInfo, InstallPlanAnswer, LogLines, SecretSummaries, SecretSummary, ServerDetail } from '../api/console.js';
import { isDns1123Label, kindLower, SECRET_KEY, type Kind } from '../api/names.js';
import type { MCPServerStatus } from '../api/status.js';
import { findCondition } from '../api/status.js';
import type { KeyStore } from '../crypto/keys.js';
import { openSecret, secretForms } from '../crypto/secret-data.js';
import { SecretValue } from '../crypto/secret-value.js';
import { ApiaryError } from '../errors.js';
import { planInstall, writeInstallLoaded, type InstallRequest, type SecretBinding } from '../manifests/install.js';
import { formatManifestError } from '../manifests/errors.js';
import { refuseGitSourced, runningManifestDir } from '../source/directory.js';
import { loadDirectory } from '../manifests/loader.js';
import { secretReferences, serversUsingSecret } from '../manifests/references.js';
import type { MCPServerResource, Resource, SecretResource } from '../manifests/resource.js';
import { setSuspendLoaded, deleteDocumentsLoaded, requireServers } from '../manifests/resource-edits.js';
import { setSecretValuesLoaded, deleteSecretLoaded, sealFile } from '../manifests/secret-edits.js';
import { summarizeSecret, usersWarning } from '../manifests/secret-summary.js';
import { CLIENT_KINDS, clientConfig } from '../mcp/client-config.js';
import { readEndpointToken } from '../mcp/endpoint-token.js';
import type { McpView } from '../mcp/gateway.js';
import { fileSafeName, StateLayout } from '../state/layout.js';
import { followFile } from '../state/follow.js';
import { requestRestart } from '../state/requests.js';
import { asList, type ObjectView, type StateView } from '../state/view.js';
import type { Feed } from './feed.js';
import { CreateSecretBody, EmptyBody, InstallBody, readBodyAs, UpdateSecretBody } from './bodies.js';
import { HttpError, sendJson } from './http.js';
import { sealerIfNeeded, underDirectoryLock } from './locked-write.js';
import { catalogEntry, catalogInstallPlan, catalogInstallWrite, catalogList, clientFile } from './catalog-api.js';
import type { CatalogOptions } from '../catalog/catalog.js';
import { callTool, listTools } from './tools-api.js';
import { toolsApprove, toolsDrift } from './tools-drift.js';
import { addClient, listClients, previewClient, removeClient } from './clients-api.js';
import type { LastKnownTools } from './last-tools.js';
import { accessPolicies, effectiveAccess, gateway } from './access-api.js';
import { auditFollow, auditPage, auditVerify, type AuditVerifier } from './audit-api.js';
import { connectServer, disconnectServer, loginStatus, type PendingLogins } from './connect-api.js';

export interface ApiContext {
  dir: string;
  stateDir: string;
  keys: KeyStore;
  feed: Feed;
  version: string;
  mcpView(name: string): McpView | undefined;
  /** The tools each server last listed, shown (marked) while it has none running. */
  lastTools: LastKnownTools;
  /** Where the Catalog page's entries come from (as `apiary catalog`'s --catalog and --registry). */
  catalog: CatalogOptions;
  /** What `audit verify` last said, kept until the audit files change. */
  auditVerifier: AuditVerifier;
  /** Logins to hosted servers started from the page, waiting for the browser to come back. */
  logins: PendingLogins;
}

type Handler = (ctx: ApiContext, req: IncomingMessage, res: ServerResponse, params: string[]) => Promise<void>;

interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
}

const NAME = '([a-z0-9][-a-z0-9]*)';
const KEY = '([-._a-zA-Z0-9]+)';

const routes: Route[] = [
  { method: 'GET', pattern: /^\/api\/v1\/console$/, handler: consoleInfo },
  { method: 'GET', pattern: /^\/api\/v1\/watch$/, handler: async (ctx, _req, res) => ctx.feed.subscribe(res) },
  { method: 'GET', pattern: /^\/api\/v1\/(mcpservers|secrets)$/, handler: list },
  { method: 'GET', pattern: new RegExp(`^/api/v1/(mcpservers|secrets)/${NAME}$`), handler: one },
  { method: 'GET', pattern: new RegExp(`^/api/v1/mcpservers/${NAME}/detail$`), handler: serverDetail },
  { method: 'GET', pattern: new RegExp(`^/api/v1/mcpservers/${NAME}/logs$`), handler: logs },
  { method: 'GET', pattern: new RegExp(`^/api/v1/mcpservers/${NAME}/tools$`), handler: listTools },
  { method: 'POST', pattern: new RegExp(`^/api/v1/mcpservers/${NAME}/call$`), handler: callTool },
  { method: 'GET', pattern: new RegExp(`^/api/v1/mcpservers/${NAME}/tools-drift$`), handler: toolsDrift },
  { method: 'POST', pattern: new RegExp(`^/api/v1/mcpservers/${NAME}/tools-approve$`), handler: toolsApprove },
  { method: 'GET', pattern: /^\/api\/v1\/secretsummaries$/, handler: secretSummaries },
  { method: 'POST', pattern: /^\/api\/v1\/secrets$/, handler: createSecret },
  { method: 'PUT', pattern: new RegExp(`^/api/v1/secrets/${NAME}/keys/${KEY}$`), handler: updateSecret },
  { method: 'DELETE', pattern: new RegExp(`^/api/v1/secrets/${NAME}$`), handler: removeSecret },
  { method: 'POST', pattern: new RegExp(`^/api/v1/secrets/${NAME}/seal$`), handler: sealSecret },
  { method: 'POST', pattern: new RegExp(`^/api/v1/mcpservers/${NAME}/(restart|suspend|resume)$`), handler: serverAction },
  { method: 'DELETE', pattern: new RegExp(`^/api/v1/mcpservers/${NAME}$`), handler: removeServer },
  { method: 'POST', pattern: new RegExp(`^/api/v1/mcpservers/${NAME}/connect$`), handler: connectServer },
  { method: 'GET', pattern: new RegExp(`^/api/v1/mcpservers/${NAME}/connect$`), handler: loginStatus },
  { method: 'POST', pattern: new RegExp(`^/api/v1/mcpservers/${NAME}/disconnect$`), handler: disconnectServer },
  { method: 'POST', pattern: /^\/api\/v1\/install\/plan$/, handler: installPlan },
  { method: 'POST', pattern: /^\/api\/v1\/install$/, handler: install },
  { method: 'GET', pattern: /^\/api\/v1\/catalog$/, handler: catalogList },
  { method: 'GET', pattern: /^\/api\/v1\/catalog\/entry$/, handler: catalogEntry },
  { method: 'POST', pattern: /^\/api\/v1\/catalog\/install\/plan$/, handler: catalogInstallPlan },
  { method: 'POST', pattern: /^\/api\/v1\/catalog\/install$/, handler: catalogInstallWrite },
  { method: 'POST', pattern: /^\/api\/v1\/clients\/(claude|cursor|vscode)\/(write|remove)$/, handler: clientFile },
  { method: 'GET', pattern: /^\/api\/v1\/clients$/, handler: listClients },
  { method: 'GET', pattern: new RegExp(`^/api/v1/clients/${NAME}/preview$`), handler: previewClient },
  { method: 'POST', pattern: new RegExp(`^/api/v1/clients/${NAME}/add$`), handler: addClient },
  { method: 'POST', pattern: new RegExp(`^/api/v1/clients/${NAME}/remove$`), handler: removeClient },
  { method: 'GET', pattern: /^\/api\/v1\/gateway$/, handler: gateway },
  { method: 'GET', pattern: /^\/api\/v1\/accesspolicies$/, handler: accessPolicies },
  { method: 'GET', pattern: /^\/api\/v1\/access$/, handler: effectiveAccess },
  { method: 'GET', pattern: /^\/api\/v1\/audit$/, handler: auditPage },
  { method: 'GET', pattern: /^\/api\/v1\/audit\/follow$/, handler: auditFollow },
  { method: 'GET', pattern: /^\/api\/v1\/audit\/verify$/, handler: auditVerify },
];

/** Finds the handler for a request; a known path with another method is 405, an unknown one 404. */
export async function routeApi(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const matches = routes.filter((r) => r.pattern.test(path));
  const route = matches.find((r) => r.method === req.method);
  if (route === undefined) {
    if (matches.length > 0) throw new HttpError(405, 'MethodNotAllowed', `${req.method} is not allowed on ${path}`);
    throw new HttpError(404, 'NotFound', `no such API path: ${path}`);
  }
  const params = (route.pattern.exec(path) ?? []).slice(1).map((p) => decodeURIComponent(p));
  await route.handler(ctx, req, res, params);
}

const KIND_OF: Record<string, Kind> = { mcpservers: 'MCPServer', secrets: 'Secret' };

function objectsOf(view: StateView, kind: Kind): ObjectView[] {
  return view.objects.filter((o) => o.kind === kind);
}

function find(view: StateView, kind: Kind, name: string): ObjectView {
  const found = view.objects.find((o) => o.kind === kind && o.name === name);
  if (found === undefined) throw new HttpError(404, 'NotFound', `${kindLower(kind)}/${name} not found`);
  return found;
}

/** As `get TYPE -o json`: a Kubernetes List of the full objects. */
async function list(ctx: ApiContext, _req: IncomingMessage, res: ServerResponse, [type]: string[]): Promise<void> {
  const objects = objectsOf(ctx.feed.view(), KIND_OF[type!]!);
  sendJson(res, 200, asList(objects));
}

async function one(ctx: ApiContext, _req: IncomingMessage, res: ServerResponse, [type, name]: string[]): Promise<void> {
  sendJson(res, 200, find(ctx.feed.view(), KIND_OF[type!]!, name!).object);
}

async function consoleInfo(ctx: ApiContext, _req: IncomingMessage, res: ServerResponse): Promise<void> {
  const key = await ctx.keys.status();
  const view = ctx.feed.view();
  sendJson(res, 200, {
    version: ctx.version,
    dir: ctx.dir,
    stateDir: ctx.stateDir,
    controller: view.controller,
    key: key.state === 'unavailable' ? { state: key.state, backend: key.backend, where: key.where, code: key.error.code, message: key.error.message, hints: key.error.hints } : key,
  } satisfies ConsoleInfo);
}

function resources(view: StateView): Resource[] {
  return view.objects.flatMap((o) => (o.resource ? [o.resource] : []));
}

/**
 * The directory as it is on disk now, for writes and what follows them: the
 * controller's copy trails a write by a file event, and a check made against
 * it (does this key exist?) must not.
 */
async function onDisk(ctx: ApiContext): Promise<Resource[]> {
  return (await loadDirectory(await runningManifestDir(ctx.dir, ctx.stateDir))).resources;
}

/** Each secret a server's environment is bound to, and whether it is there and opens here (never the value). */
async function bindingsOf(server: MCPServerResource, all: readonly Resource[], keys: KeyStore): Promise<Binding[]> {
  const secrets = new Map(all.filter((r): r is SecretResource => r.kind === 'Secret').map((s) => [s.name, s]));
  const opened = new Map<string, Awaited<ReturnType<typeof openSecret>>>();
  const bindings: Binding[] = [];
  for (const ref of secretReferences(server)) {
    const base = { ...(ref.env !== undefined ? { variable: ref.env } : {}), secret: ref.secret, ...(ref.key !== undefined ? { key: ref.key } : {}), optional: ref.optional, from: ref.key === undefined ? ('envFrom' as const) : ('env' as const) };
    const secret = secrets.get(ref.secret);
    if (secret === undefined) {
      bindings.push({ ...base, state: 'SecretNotFound', message: `secret "${ref.secret}" not found${ref.optional ? ' (optional: skipped)' : ''}` });
      continue;
    }
    if (ref.key !== undefined && !secretForms(secret).has(ref.key)) {
      bindings.push({ ...base, state: 'SecretKeyNotFound', message: `secret "${ref.secret}" has no key "${ref.key}"${ref.optional ? ' (optional: skipped)' : ''}` });
      continue;
    }
    if (!opened.has(secret.name)) opened.set(secret.name, await openSecret(secret, keys));
    const entries = opened.get(secret.name)!;
    const failed = ref.key === undefined ? [...entries.values()].find((e) => e.error) : entries.get(ref.key)?.error ? entries.get(ref.key) : undefined;
    bindings.push(failed?.error ? { ...base, state: 'SecretDecryptFailed', message: failed.error.message } : { ...base, state: 'ok' });
  }
  return bindings;
}

async function serverDetail(ctx: ApiContext, _req: IncomingMessage, res: ServerResponse, [name]: string[]): Promise<void> {
  const view = ctx.feed.view();
  const o = find(view, 'MCPServer', name!);
  const server = o.resource?.kind === 'MCPServer' ? o.resource : undefined;
  const doc = ctx.feed.document('MCPServer', name!);
  const status = o.object.status as MCPServerStatus | undefined;
  const mcp = ctx.mcpView(name!);
  const url = status?.url;
  const ready = findCondition(status?.conditions, 'Ready')?.status === 'True';
  const token = await readEndpointToken(new StateLayout(ctx.stateDir));
  ctx.lastTools.note(name!, mcp?.tools);
  const lastKnown = mcp?.tools === undefined ? ctx.lastTools.get(name!) : undefined;
  sendJson(res, 200, {
    object: o.object,
    declaredAt: o.declaredAt,
    errors: o.errors,
    warnings: o.warnings,
    stale: o.stale,
    events: o.events,
    bindings: server ? await bindingsOf(server, resources(view), ctx.keys) : [],
    mcp: mcp ? { state: mcp.state, serverInfo: mcp.serverInfo, protocolVersion: mcp.protocolVersion, sessions: mcp.sessions } : undefined,
    tools: mcp?.tools ?? lastKnown?.tools,
    ...(lastKnown !== undefined ? { toolsLastKnownAt: lastKnown.at } : {}),
    manifest: doc ? { file: relative(ctx.dir, doc.source.path), text: doc.text } : undefined,
    clients: url ? Object.fromEntries(CLIENT_KINDS.map((k) => [k, clientConfig(k, { [name!]: url }, token)])) : undefined,
    ready,
  } satisfies ServerDetail);
}

const LOG_TAIL_MAX = 5000;
const LOG_POLL_MS = 250;

/** The server's output: the last lines (?tail=N, ?previous=true), or with ?follow=true a stream of what it writes next. */
async function logs(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, [name]: string[]): Promise<void> {
  const query = new URL(req.url ?? '/', 'http://console').searchParams;
  const layout = new StateLayout(ctx.stateDir);
  const previous = query.get('previous') === 'true';
  const path = previous ? layout.previousLogFile(fileSafeName(name!)) : layout.logFile(fileSafeName(name!));
  const tail = Math.min(Number(query.get('tail') ?? 1000) || 1000, LOG_TAIL_MAX);
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (query.get('follow') !== 'true') {
    if (text === undefined) {
      sendJson(res, 200, { name: name!, previous, lines: [], message: `no ${previous ? 'previous ' : ''}logs for mcpserver/${name} yet` } satisfies LogLines);
      return;
    }
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    sendJson(res, 200, { name: name!, previous, lines: lines.slice(-tail) } satisfies LogLines);
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
  res.write('retry: 1000\n\n');
  let closed = false;
  res.on('close', () => (closed = true));
  for await (const event of followFile(path, text === undefined ? 0 : Buffer.byteLength(text), { pollMs: LOG_POLL_MS, stopped: () => closed })) {
    res.write('restarted' in event ? 'event: restarted\ndata: {}\n\n' : `data: ${JSON.stringify({ text: event.text })}\n\n`);
  }
}

/** As `secret list -o json` (read from the directory), plus the secrets servers ask for that nobody declares. */
async function secretSummaries(ctx: ApiContext, _req: IncomingMessage, res: ServerResponse): Promise<void> {
  // Files named relative to the manifest directory, as a person browsing it sees them.
  const loaded = await loadDirectory(await runningManifestDir(ctx.dir, ctx.stateDir), '.');
  const all = loaded.resources;
  const items: SecretSummary[] = [];
  for (const doc of loaded.documents) {
    if (doc.kind !== 'Secret' || doc.name === undefined) continue;
    if (doc.resource?.kind !== 'Secret' || doc.errors.length > 0) {
      items.push({ name: doc.name, keys: [], form: 'invalid', usedBy: [], uses: [], decrypts: 'n/a', errors: doc.errors.map(formatManifestError), file: doc.source.file });
      continue;
    }
    items.push(await summarizeSecret(doc.resource, all, ctx.keys));
  }
  // What a Stuck server is waiting on.
  const declared = new Set(loaded.documents.filter((d) => d.kind === 'Secret' && d.name !== undefined).map((d) => d.name!));
  const wanted = new Map<string, { server: string; variable?: string; key?: string }[]>();
  for (const r of all) {
    if (r.kind !== 'MCPServer') continue;
    for (const ref of secretReferences(r)) {
      if (declared.has(ref.secret)) continue;
      wanted.set(ref.secret, [...(wanted.get(ref.secret) ?? []), { server: r.name, ...(ref.env ? { variable: ref.env } : {}), ...(ref.key ? { key: ref.key } : {}) }]);
    }
  }
  sendJson(res, 200, { items, missing: [...wanted].map(([name, uses]) => ({ name, uses })) } satisfies SecretSummaries);
}

function checkSecretName(name: string): void {
  if (!isDns1123Label(name)) throw new ApiaryError('Usage', `"${name}" is not a valid secret name: use lowercase letters, digits and "-" (a DNS-1123 label)`);
}

function checkKey(key: string): void {
  if (!SECRET_KEY.test(key)) throw new ApiaryError('Usage', `"${key}" is not a valid key: use letters, digits, "-", "_" and "."`);
}

function valueOf(value: string): SecretValue {
  if (value === '') throw new ApiaryError('Usage', 'a value is required');
  return new SecretValue(value);
}

function declaredSecret(all: readonly Resource[], name: string): SecretResource | undefined {
  return all.find((r): r is SecretResource => r.kind === 'Secret' && r.name === name);
}

/** Add secret: a new secret, or a new key in an existing one. A key that is there already is a conflict (update it instead). */
async function createSecret(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { name, key, value: text } = await readBodyAs(req, CreateSecretBody);
  checkSecretName(name);
  checkKey(key);
  const value = valueOf(text);
  const sealer = await sealerFor(ctx.dir, ctx.keys);
  const { existed, result } = await underDirectoryLock(ctx.dir, async (loaded) => {
    const existing = declaredSecret(loaded.resources, name);
    if (existing !== undefined && secretForms(existing).has(key)) throw new HttpError(409, 'AlreadyExists', `secret "${name}" already has key "${key}"; use Update to give it a new value`);
    return { existed: existing !== undefined, result: await setSecretValuesLoaded(loaded, ctx.dir, name, new Map([[key, await sealer.seal(name, key, value)]])) };
  });
  sendJson(res, existed ? 200 : 201, { name, key, file: result.file, created: result.created });
}

async function updateSecret(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, [name, key]: string[]): Promise<void> {
  const value = valueOf((await readBodyAs(req, UpdateSecretBody)).value);
  const sealer = await sealerFor(ctx.dir, ctx.keys);
  const { result, usedBy } = await underDirectoryLock(ctx.dir, async (loaded) => {
    const existing = declaredSecret(loaded.resources, name!);
    if (existing === undefined) throw new HttpError(404, 'NotFound', `secret "${name}" not found`);
    if (!secretForms(existing).has(key!)) throw new HttpError(404, 'NotFound', `secret "${name}" has no key "${key}"`);
    // A new value changes no server's reference: who uses the secret is as read.
    return { result: await setSecretValuesLoaded(loaded, ctx.dir, name!, new Map([[key!, await sealer.seal(name!, key!, value)]])), usedBy: serversUsingSecret(loaded.resources, name!) };
  });
  sendJson(res, 200, { name, key, file: result.file, usedBy });
}

async function removeSecret(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, [name]: string[]): Promise<void> {
  await readBodyAs(req, EmptyBody);
  const { result, users } = await underDirectoryLock(ctx.dir, async (loaded) => ({ users: serversUsingSecret(loaded.resources, name!), result: await deleteSecretLoaded(loaded, ctx.dir, name!) }));
  sendJson(res, 200, { name, file: result.file, fileDeleted: result.fileDeleted, usedBy: users, warning: usersWarning(users, name!) });
}

/**
 * Seal: a secret's plain values (stringData, data) sealed where they are
 * written, by the code `apiary seal FILE` runs (its comments and the file's
 * other documents kept, the file replaced atomically). No copy of the plain
 * file is kept: leaving the values in clear beside it is what sealing ends.
 */
async function sealSecret(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, [name]: string[]): Promise<void> {
  await readBodyAs(req, EmptyBody);
  await refuseGitSourced(ctx.dir);
  const doc = (await loadDirectory(ctx.dir)).documents.find((d) => d.kind === 'Secret' && d.name === name);
  if (doc === undefined) throw new HttpError(404, 'NotFound', `secret "${name}" not found`);
  const sealer = await sealerFor(ctx.dir, ctx.keys);
  // sealFile takes the directory's lock itself and reads the file afresh under it.
  const sealed = await sealFile(doc.source.path, sealer, ctx.dir, name!);
  sendJson(res, 200, { name, file: relative(ctx.dir, doc.source.path), sealed });
}

async function serverAction(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, [name, action]: string[]): Promise<void> {
  await readBodyAs(req, EmptyBody);
  // As the CLI verbs: restart checks the name first; suspend, resume and delete say NotFound themselves.
  if (action === 'restart') {
    await requireServers(await runningManifestDir(ctx.dir, ctx.stateDir), [name!]);
    const request = await requestRestart(new StateLayout(ctx.stateDir), name!);
    sendJson(res, 200, { name, restartRequestedAt: request.requestedAt });
    return;
  }
  const result = await underDirectoryLock(ctx.dir, (loaded) => setSuspendLoaded(loaded, ctx.dir, name!, action === 'suspend'));
  sendJson(res, 200, { name, suspend: action === 'suspend', changed: result.changed, file: result.file });
}

async function removeServer(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, [name]: string[]): Promise<void> {
  await readBodyAs(req, EmptyBody);
  const [deleted] = await underDirectoryLock(ctx.dir, (loaded) => deleteDocumentsLoaded(loaded, ctx.dir, [{ kind: 'MCPServer', name: name! }]));
  sendJson(res, 200, { name, file: deleted?.file, fileDeleted: deleted?.fileDeleted });
}

/** The install form's request (its shape checked by InstallBody; the values, if any, are separate). */
function installRequest(body: InstallBody): InstallRequest {
  const port = body.port;
  return {
    name: body.name,
    command: body.command,
    args: body.args ?? [],
    ...(body.transport ? { transport: body.transport as InstallRequest['transport'] & string } : {}),
    ...(port !== undefined && port !== null && port !== '' ? { port: Number(port) } : {}),
    env: body.env ?? [],
    secrets: (body.secrets ?? []).map((s): SecretBinding => (s.secret !== undefined && s.key !== undefined ? { variable: s.variable, existing: { secret: s.secret, key: s.key } } : { variable: s.variable, create: {} })),
  };
}

async function installPlan(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const plan = planInstall(installRequest(await readBodyAs(req, InstallBody)), await onDisk(ctx));
  sendJson(res, 200, { yaml: plan.yaml, command: plan.command, newSecrets: plan.newSecrets } satisfies InstallPlanAnswer);
}

async function install(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readBodyAs(req, InstallBody);
  const request = installRequest(body);
  const given = body.values ?? {};
  const sealer = await sealerIfNeeded(ctx.dir, ctx.keys, (request.secrets ?? []).some((s) => 'create' in s));
  const { plan, result } = await underDirectoryLock(ctx.dir, async (loaded) => {
    const plan = planInstall(request, loaded.resources);
    const values = new Map<string, SecretValue>();
    for (const s of plan.newSecrets) {
      const value = given[s.variable];
      if (value !== undefined && value !== '') values.set(s.variable, new SecretValue(value));
    }
    return { plan, result: await writeInstallLoaded(loaded, ctx.dir, plan, values, sealer) };
  });
  sendJson(res, 201, { name: plan.name, file: result.server?.file, action: result.server?.action, secretsCreated: result.secretsCreated, command: plan.command });
}
