/**
 * The console's Catalog page and client configuration, over the same code as
 * `apiary catalog`, `apiary install` and `client config --write`: entries
 * from the same sources, installs planned by `catalogInstall` and written by
 * `writeInstallLoaded`, client files edited by the same planner. Secret values only
 * come in, in a request body, and are sealed at once.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CatalogAnswer, CatalogEntryAnswer, CatalogInstallAnswer, ClientFileAnswer } from '../api/console.js';
import { findEntry, loadCatalog, shadowWarning, shortName, transportOf } from '../catalog/catalog.js';
import { catalogInstall, describeTarget, installCommand, variablesOf, type VariableValues } from '../catalog/install-plan.js';
import { clientConfigPath, serversKey, updateClientFile } from '../clients/config-file.js';
import { SecretValue } from '../crypto/secret-value.js';
import { ApiaryError } from '../errors.js';
import { planInstall, writeInstallLoaded, type InstallPlan } from '../manifests/install.js';
import { loadDirectory } from '../manifests/loader.js';
import type { Resource } from '../manifests/resource.js';
import { CLIENT_KINDS, clientConfig, readyServerUrls, type ClientKind } from '../mcp/client-config.js';
import { readEndpointToken } from '../mcp/endpoint-token.js';
import { StateLayout } from '../state/layout.js';
import type { ApiContext } from './api.js';
import { CatalogInstallBody, EmptyBody, readBodyAs } from './bodies.js';
import { HttpError, sendJson } from './http.js';
import { sealerIfNeeded, underDirectoryLock } from './locked-write.js';

/** GET /api/v1/catalog?search=TEXT: entries (newest version of each), the ones skipped with why, and warnings (a bundled name taken by another source). */
export async function catalogList(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const search = new URL(req.url ?? '/', 'http://console').searchParams.get('search') ?? undefined;
  const listing = await loadCatalog(ctx.catalog, search === '' ? undefined : search);
  const newest = new Map<string, (typeof listing.entries)[number]>();
  for (const e of listing.entries) if (!newest.has(e.server.name) || findEntry([newest.get(e.server.name)!, e], e.server.name) === e) newest.set(e.server.name, e);
  sendJson(res, 200, {
    items: [...newest.values()].map((e) => ({
      name: e.server.name,
      ...(e.server.title ? { title: e.server.title } : {}),
      version: e.server.version,
      description: e.server.description,
      transport: transportOf(e.server),
      source: e.source,
    })),
    problems: listing.problems,
    warnings: listing.shadowed.map(shadowWarning),
  } satisfies CatalogAnswer);
}

/** GET /api/v1/catalog/entry?name=N[&version=V]: what the detail page and the install form show. */
export async function catalogEntry(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const query = new URL(req.url ?? '/', 'http://console').searchParams;
  const name = query.get('name');
  if (name === null || name === '') throw new HttpError(400, 'BadRequest', 'name is required');
  const entry = findEntry((await loadCatalog(ctx.catalog)).entries, name, query.get('version') ?? undefined);
  let runs: string | undefined;
  let installable: true | string = true;
  try {
    runs = describeTarget(entry);
  } catch (err) {
    installable = err instanceof Error ? err.message : String(err);
  }
  sendJson(res, 200, {
    server: entry.server,
    source: entry.source,
    defaultName: shortName(entry.server.name),
    installable,
    ...(runs !== undefined ? { runs } : {}),
    variables: installable === true ? variablesOf(entry) : [],
  } satisfies CatalogEntryAnswer);
}

/** The form's values: plain ones, secrets bound to existing keys ("secret/key"), and typed secret values. */
function valuesOf(body: CatalogInstallBody): { values: VariableValues; typed: Map<string, SecretValue> } {
  const plain = new Map<string, string>();
  for (const [k, v] of Object.entries(body.plain ?? {})) if (v !== '') plain.set(k, v);
  const bound = new Map<string, { secret: string; key: string }>();
  for (const [k, v] of Object.entries(body.bound ?? {})) {
    if (v === '') continue;
    const [secret, ...key] = v.split('/');
    if (!secret || key.length === 0) throw new ApiaryError('Usage', `${k}: "${v}" is not SECRET/KEY`);
    bound.set(k, { secret, key: key.join('/') });
  }
  const typed = new Map<string, SecretValue>();
  for (const [k, v] of Object.entries(body.secrets ?? {})) if (v !== '') typed.set(k, new SecretValue(v));
  return { values: { plain, bound, typed: new Set(typed.keys()) }, typed };
}

/** The catalog entry a body names, and what it installs as: read before any write (the catalog is not the manifest directory). */
async function chosen(ctx: ApiContext, body: CatalogInstallBody) {
  const entry = findEntry((await loadCatalog(ctx.catalog)).entries, body.entry, body.version || undefined);
  const name = body.name || shortName(entry.server.name);
  const { values, typed } = valuesOf(body);
  const allowMissing = body.allowMissing === true;
  const { request, missing } = catalogInstall(entry, name, values, { allowMissing });
  if (missing.length > 0 && !allowMissing) {
    throw new ApiaryError('Usage', `${entry.server.name} needs ${missing.map((v) => v.name).join(', ')}`, { hints: missing.map((v) => `${v.name}${v.description ? `: ${v.description}` : ''}`) });
  }
  return { entry, name, values, typed, missing, request };
}

/** The install planned against `resources`; the same from a terminal is an install from the catalog, not an `add`. */
function planned(choice: Awaited<ReturnType<typeof chosen>>, resources: readonly Resource[]): InstallPlan {
  const plan = planInstall(choice.request, resources);
  return { ...plan, command: installCommand(choice.entry, choice.name, choice.values) };
}

/** POST /api/v1/catalog/install/plan: the manifests an install would write, and what it still lacks. */
export async function catalogInstallPlan(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const choice = await chosen(ctx, await readBodyAs(req, CatalogInstallBody));
  const plan = planned(choice, (await loadDirectory(ctx.dir)).resources);
  sendJson(res, 200, { yaml: plan.yaml, command: plan.command, newSecrets: plan.newSecrets, missing: choice.missing.map((v) => v.name) } satisfies CatalogInstallAnswer);
}

/** POST /api/v1/catalog/install: writes it (typed secret values sealed first), planned and written under one hold of the lock. */
export async function catalogInstallWrite(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const choice = await chosen(ctx, await readBodyAs(req, CatalogInstallBody));
  const sealer = await sealerIfNeeded(ctx.dir, ctx.keys, choice.typed.size > 0);
  const { plan, result } = await underDirectoryLock(ctx.dir, async (loaded) => {
    const plan = planned(choice, loaded.resources);
    return { plan, result: await writeInstallLoaded(loaded, ctx.dir, plan, choice.typed, sealer) };
  });
  sendJson(res, 201, { name: plan.name, catalog: choice.entry.server.name, version: choice.entry.server.version, file: result.server?.file, secretsCreated: result.secretsCreated, missing: choice.missing.map((v) => v.name) });
}

/** POST /api/v1/clients/{kind}/(write|remove)[?dryRun=true]: as `client config --write/--remove` for every Ready server. */
export async function clientFile(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, [kind, action]: string[]): Promise<void> {
  await readBodyAs(req, EmptyBody);
  if (!CLIENT_KINDS.includes(kind as ClientKind)) throw new HttpError(404, 'NotFound', `unknown client "${kind}"`);
  const client = kind as ClientKind;
  const dryRun = new URL(req.url ?? '/', 'http://console').searchParams.get('dryRun') === 'true';
  const layout = new StateLayout(ctx.stateDir);
  const path = clientConfigPath(client);
  let entries: Record<string, unknown> | undefined;
  if (action === 'write') {
    const { servers } = readyServerUrls(ctx.feed.view());
    if (Object.keys(servers).length === 0) throw new ApiaryError('NotFound', 'no Ready server to write');
    entries = clientConfig(client, servers, await readEndpointToken(layout))[serversKey(client)] as Record<string, unknown>;
  }
  // As before: an entry apiary did not write is left (and named in skipped); writers of the file take turns.
  const { edit } = await updateClientFile(client, path, entries, layout, { dryRun, skipClashes: true });
  sendJson(res, 200, { file: path, dryRun, added: edit.added, updated: edit.updated, removed: edit.removed, skipped: edit.skipped.map((s) => s.why), changed: edit.after !== edit.before } satisfies ClientFileAnswer);
}
