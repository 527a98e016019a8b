/**
 * The console's Clients page, over the same code as `apiary client
 * add|remove|list`: each known client with its state, a preview of the change
 * (a diff) before anything is written, and Add/Remove. No answer carries a
 * token: apiary's endpoint token and any value under a key named like a
 * credential are replaced in the diff.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createTwoFilesPatch } from 'diff';
import * as z from 'zod';
import { updateClientFile, type ClientEdit } from '../clients/config-file.js';
import { isKnownClient, type KnownClient } from '../clients/known.js';
import { clientFile, readRegistry, registerClient, underRegistry, unregisterClient } from '../clients/registry.js';
import { clientStatuses, syncClient, wantedFrom, type Wanted } from '../clients/sync.js';
import { StateLayout } from '../state/layout.js';
import type { ApiContext } from './api.js';
import { EmptyBody, readBodyAs } from './bodies.js';
import { HttpError, sendJson } from './http.js';

/** POST /api/v1/clients/{client}/add. */
const AddBody = z.strictObject({ aggregate: z.boolean().optional() });

function clientOf(name: string | undefined): KnownClient {
  if (name === undefined || !isKnownClient(name)) throw new HttpError(404, 'NotFound', `no such client: ${name ?? ''}`);
  return name;
}

async function wanted(ctx: ApiContext): Promise<Wanted> {
  return wantedFrom(ctx.feed.view(), new StateLayout(ctx.stateDir), ctx.dir);
}

/** The registered file of a client, or its user-level one. */
async function fileOf(ctx: ApiContext, client: KnownClient): Promise<{ file: string; registered: boolean; aggregate: boolean }> {
  const registered = (await readRegistry(new StateLayout(ctx.stateDir))).find((r) => r.client === client);
  return registered !== undefined ? { file: registered.file, registered: true, aggregate: registered.aggregate } : { file: clientFile(client, undefined, process.env), registered: false, aggregate: false };
}

const CREDENTIAL = /((?:"|')?[\w-]*(?:authorization|token|secret|password|passwd|api[-_]?key|credential)[\w-]*(?:"|')?\s*[:=]\s*)("(?:[^"\\]|\\.)*"|'[^']*'|[^\s,}]+)/gi;

/** A unified diff of an edit, with no token in it: apiary's own, and any value under a key named like a credential. */
export function redactedDiff(edit: ClientEdit, token: string | undefined): string {
  if (edit.after === edit.before) return '';
  const patch = createTwoFilesPatch(edit.path, edit.path, edit.before ?? '', edit.after ?? '', edit.before === undefined ? '(new file)' : '', edit.after === undefined ? '(deleted)' : '', { context: 2 });
  const mark = '<apiary token>';
  const redact = (line: string): string => (token !== undefined ? line.split(token).join(mark) : line).replace(CREDENTIAL, (whole: string, key: string, value: string) => (value.includes(mark) ? whole : `${key}"<redacted>"`));
  // Without the Index: and ==== lines createTwoFilesPatch starts with: the file is named above the diff.
  return patch.split('\n').slice(2).map(redact).join('\n').trimEnd();
}

/** GET /api/v1/clients: every known client, found on this machine or registered (?all=true: all of them). */
export async function listClients(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const all = new URL(req.url ?? '/', 'http://console').searchParams.get('all') === 'true';
  const statuses = await clientStatuses(new StateLayout(ctx.stateDir), await wanted(ctx), process.env);
  sendJson(res, 200, { items: statuses.filter((s) => all || s.found || s.registered) });
}

/** GET /api/v1/clients/{client}/preview?action=add|remove[&aggregate=true]: the change as a diff, nothing written. */
export async function previewClient(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, [name]: string[]): Promise<void> {
  const client = clientOf(name);
  const query = new URL(req.url ?? '/', 'http://console').searchParams;
  const action = query.get('action') ?? 'add';
  if (action !== 'add' && action !== 'remove') throw new HttpError(400, 'BadRequest', 'action is add or remove');
  const layout = new StateLayout(ctx.stateDir);
  const { file } = await fileOf(ctx, client);
  const want = await wanted(ctx);
  const edits: ClientEdit[] = [];
  if (action === 'remove') edits.push((await updateClientFile(client, file, undefined, layout, { dryRun: true })).edit);
  else {
    const result = await syncClient(layout, { client, file, aggregate: query.get('aggregate') === 'true' }, want, { dryRun: true });
    if (result.written !== undefined) edits.push(result.written.edit);
    if (result.removed !== undefined) edits.push(result.removed.edit);
  }
  sendJson(res, 200, {
    client,
    file,
    diff: edits.map((e) => redactedDiff(e, want.token)).filter((d) => d !== '').join('\n'),
    skipped: edits.flatMap((e) => e.skipped),
  });
}

/** POST /api/v1/clients/{client}/add {aggregate?}: written now, then registered (a file apiary cannot edit is a 400 that names its line, and nothing is registered). */
export async function addClient(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, [name]: string[]): Promise<void> {
  const client = clientOf(name);
  const body = await readBodyAs(req, AddBody);
  const layout = new StateLayout(ctx.stateDir);
  const { file } = await fileOf(ctx, client);
  const want = await wanted(ctx);
  const result = await underRegistry(layout, async () => {
    const written = await syncClient(layout, { client, file, aggregate: body.aggregate === true }, want);
    await registerClient(layout, client, file, body.aggregate === true);
    return written;
  });
  const edits = [result.written?.edit, result.removed?.edit].filter((e) => e !== undefined);
  sendJson(res, 200, { client, file, written: edits.flatMap((e) => [...e.added, ...e.updated]), removed: edits.flatMap((e) => e.removed), skipped: edits.flatMap((e) => e.skipped) });
}

/** POST /api/v1/clients/{client}/remove {}: unregistered, then apiary's entries taken out. */
export async function removeClient(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, [name]: string[]): Promise<void> {
  const client = clientOf(name);
  await readBodyAs(req, EmptyBody);
  const layout = new StateLayout(ctx.stateDir);
  const { file } = await fileOf(ctx, client);
  const { edit } = await underRegistry(layout, async () => {
    await unregisterClient(layout, client, file);
    return updateClientFile(client, file, undefined, layout);
  });
  sendJson(res, 200, { client, file, removed: edit.removed, restored: edit.restored === true, skipped: edit.skipped });
}
