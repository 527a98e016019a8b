/**
 * The Access page's API: the Gateway, the AccessPolicies, and the effective
 * access of a caller. Decisions are the evaluator's (src/api/access.ts,
 * compiled as `apiary policy check` compiles it, src/manifests/access.ts),
 * asked about each tool each server last listed: what a client of that
 * caller would see. Read-only; nothing here holds a token or a secret value.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { relative, sep } from 'node:path';
import { compilePolicies, type AccessPolicySet, type Decision, type Subject } from '../api/access.js';
import type { AccessAnswer, AccessCell, AccessPoliciesAnswer, GatewayAnswer, ItemAccess, PolicyView, ServerAccess, SubjectRow } from '../api/console-access.js';
import type { AccessSubject, AuthMode } from '../api/manifests.js';
import { ApiaryError } from '../errors.js';
import { accessWarnings, authModeOf, policySource, shownGatewaySpec } from '../manifests/access.js';
import { formatManifestError } from '../manifests/errors.js';
import type { AccessPolicyResource, Resource, SourceRef } from '../manifests/resource.js';
import type { ObjectView, StateView } from '../state/view.js';
import type { ApiContext } from './api.js';
import { HttpError, sendJson } from './http.js';

const NO_GATEWAY = 'No Gateway: apiary asks every client for its bearer token (the one `apiary ui` and the client configs use). Write a Gateway (kind: Gateway, metadata.name: default) to sign people in with an OpenID provider (spec.auth.mode: oidc), keep an audit log, export telemetry or limit rates; `apiary explain gateway` lists the fields.';

/** A file as a person browsing the manifest directory names it (a followed git revision keeps the name it has there). */
function fileOf(ctx: ApiContext, source: SourceRef): string {
  const rel = relative(ctx.dir, source.path);
  return rel.startsWith('..') || rel.startsWith(sep) ? source.file : rel;
}

/** A manifest's errors (or warnings) with its file named as the page names it. */
function problemsOf(ctx: ApiContext, o: ObjectView, which: 'errors' | 'warnings'): string[] {
  const doc = ctx.feed.document(o.kind, o.name);
  if (doc === undefined) return o[which];
  const file = fileOf(ctx, doc.source);
  return doc[which].map((e) => formatManifestError({ ...e, file }));
}

function resources(view: StateView): Resource[] {
  return view.objects.flatMap((o) => (o.resource !== undefined ? [o.resource] : []));
}

export async function gateway(ctx: ApiContext, _req: IncomingMessage, res: ServerResponse): Promise<void> {
  const view = ctx.feed.view();
  const object = view.objects.find((o) => o.kind === 'Gateway');
  const all = resources(view);
  const warnings = accessWarnings(all).map(formatManifestError);
  if (object === undefined) {
    sendJson(res, 200, { present: false, mode: 'token', errors: [], warnings, message: NO_GATEWAY } satisfies GatewayAnswer);
    return;
  }
  const doc = ctx.feed.document('Gateway', object.name);
  const resource = object.resource?.kind === 'Gateway' ? object.resource : undefined;
  const spec = resource === undefined ? undefined : shownGatewaySpec(resource.manifest.spec ?? {});
  const oidc = spec?.auth?.oidc;
  const answer: GatewayAnswer = {
    present: true,
    mode: authModeOf(all),
    ...(doc !== undefined ? { file: fileOf(ctx, doc.source), line: doc.source.line } : {}),
    ...(spec !== undefined ? { spec } : {}),
    ...(oidc !== undefined
      ? { provider: { issuer: oidc.issuer, audience: oidc.audience, usernameClaim: oidc.usernameClaim ?? 'sub', groupsClaim: oidc.groupsClaim ?? 'groups', ...(oidc.jwksURL !== undefined ? { jwksURL: oidc.jwksURL } : {}), ...(oidc.requiredScopes !== undefined ? { requiredScopes: oidc.requiredScopes } : {}) } }
      : {}),
    ...(object.object.status !== undefined ? { status: object.object.status } : {}),
    errors: problemsOf(ctx, object, 'errors'),
    warnings: [...problemsOf(ctx, object, 'warnings'), ...warnings],
  };
  sendJson(res, 200, answer);
}

function policyView(ctx: ApiContext, o: ObjectView): PolicyView {
  const doc = ctx.feed.document('AccessPolicy', o.name);
  const file = doc !== undefined ? fileOf(ctx, doc.source) : (o.declaredAt?.replace(/:\d+$/, '') ?? '');
  const line = doc?.source.line ?? 0;
  if (o.resource?.kind !== 'AccessPolicy') return { name: o.name, file, line, subjects: [], rules: [], errors: problemsOf(ctx, o, 'errors') };
  const { manifest, ruleLines } = o.resource;
  const rules = manifest.spec.rules.map((rule, i) => ({ ...rule, line: ruleLines[i] ?? line, at: `${file}:${ruleLines[i] ?? line}` }));
  return { name: o.name, file, line, subjects: manifest.spec.subjects, rules, errors: [] };
}

export async function accessPolicies(ctx: ApiContext, _req: IncomingMessage, res: ServerResponse): Promise<void> {
  const view = ctx.feed.view();
  const all = resources(view);
  // In the order the evaluator takes them, which is the order a reader of the files meets them.
  const items = view.objects
    .filter((o) => o.kind === 'AccessPolicy')
    .map((o) => policyView(ctx, o))
    .sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
  sendJson(res, 200, { mode: authModeOf(all), items, warnings: accessWarnings(all).map(formatManifestError) } satisfies AccessPoliciesAnswer);
}

/**
 * The same evaluator `apiary policy check` builds, over the controller's copy
 * of the directory, with each rule's file named as the page names it.
 * Refused while a Gateway or AccessPolicy is invalid, as policy check
 * refuses: a decision without the broken policy could say "allowed" where
 * the fixed one says "denied".
 */
function policySetOf(ctx: ApiContext, view: StateView): { set: AccessPolicySet; mode: AuthMode; all: Resource[] } {
  const broken = view.objects.filter((o) => (o.kind === 'Gateway' || o.kind === 'AccessPolicy') && o.errors.length > 0);
  if (broken.length > 0) {
    throw new ApiaryError('ManifestInvalid', 'the access settings are invalid; no decision until they are fixed:', { hints: broken.flatMap((o) => problemsOf(ctx, o, 'errors')) });
  }
  const all = resources(view);
  const policies = all.filter((r): r is AccessPolicyResource => r.kind === 'AccessPolicy').map((p) => ({ ...policySource(p), file: fileOf(ctx, p.source) }));
  const mode = authModeOf(all);
  return { set: compilePolicies(policies, mode), mode, all };
}

const MAX_NAME = 256;
const MAX_GROUPS = 64;

/** The caller asked about: `user=U&group=G...`, `group=G` (any member), `authenticated=true` (anyone signed in), or `token=local`. */
export function subjectOfQuery(query: URLSearchParams): Subject {
  const user = query.get('user') ?? undefined;
  const groups = query.getAll('group').filter((g) => g !== '');
  const token = query.get('token') ?? undefined;
  const authenticated = query.get('authenticated') === 'true';
  for (const text of [user ?? '', ...groups]) if (text.length > MAX_NAME) throw new HttpError(400, 'BadRequest', `a user or group name is at most ${MAX_NAME} characters`);
  if (groups.length > MAX_GROUPS) throw new HttpError(400, 'BadRequest', `at most ${MAX_GROUPS} groups`);
  if (token !== undefined) {
    if (token !== 'local') throw new HttpError(400, 'BadRequest', `token takes "local" (the state directory's bearer token); got "${token.slice(0, MAX_NAME)}"`);
    if (user !== undefined || groups.length > 0) throw new HttpError(400, 'BadRequest', 'a caller is the local token or a user (with groups), not both');
    return { groups: [], authenticated: false, token: 'local' };
  }
  if ((user === undefined || user === '') && groups.length === 0 && !authenticated) {
    throw new HttpError(400, 'BadRequest', 'who is asking? give user=USER (and group=GROUP, repeated), group=GROUP, authenticated=true, or token=local');
  }
  return { ...(user !== undefined && user !== '' ? { user } : {}), groups, authenticated: true };
}

export function subjectLabel(s: Subject): string {
  if (s.token === 'local') return 'the local token';
  const groups = s.groups.length > 0 ? `groups ${s.groups.join(', ')}` : '';
  if (s.user !== undefined) return groups === '' ? s.user : `${s.user} (${groups})`;
  return groups === '' ? 'any signed-in user' : `a member of ${s.groups.join(', ')}`;
}

/** The rule as a denial names it: `devs (policies.yaml:12)`. */
function ruleText(d: Decision): string | undefined {
  return d.rule === undefined ? undefined : `${d.rule.policy} (${d.rule.file}:${d.rule.line})`;
}

/** The tools the gateway knows the server listed: now, or the last time it ran. */
function knownTools(ctx: ApiContext, server: string): { tools?: { name: string; filtered?: boolean }[]; at?: string } {
  const now = ctx.mcpView(server)?.tools;
  if (now !== undefined) {
    ctx.lastTools.note(server, now);
    return { tools: now };
  }
  const last = ctx.lastTools.get(server);
  return last === undefined ? {} : { tools: last.tools, at: last.at };
}

function serverAccess(ctx: ApiContext, set: AccessPolicySet, subject: Subject, server: string): ServerAccess {
  const known = knownTools(ctx, server);
  const items: ItemAccess[] = (known.tools ?? []).map((tool) => {
    const d = set.decide(subject, { server, kind: 'tool', name: tool.name });
    const rule = ruleText(d);
    return { kind: 'tool', name: tool.name, effect: d.effect, reason: d.reason, ...(rule !== undefined ? { rule } : {}), ...(tool.filtered === true ? { hiddenBySpec: true } : {}) };
  });
  const usable = items.filter((i) => i.hiddenBySpec !== true);
  const allowed = usable.filter((i) => i.effect === 'Allow').length;
  return { server, toolsKnown: known.tools !== undefined, ...(known.at !== undefined ? { toolsLastKnownAt: known.at } : {}), items, allowed, denied: usable.length - allowed };
}

/** Every caller the policies name, once each: users, groups, anyone signed in, the local token. */
export function namedSubjects(all: readonly Resource[]): { row: SubjectRow; subject: Subject }[] {
  const named = all
    .filter((r): r is AccessPolicyResource => r.kind === 'AccessPolicy')
    .sort((a, b) => a.source.file.localeCompare(b.source.file) || a.source.line - b.source.line)
    .flatMap((p) => p.manifest.spec.subjects);
  const rows = new Map<string, { row: SubjectRow; subject: Subject }>();
  const add = (s: AccessSubject): void => {
    const entry = subjectRowOf(s);
    if (!rows.has(entry.row.query)) rows.set(entry.row.query, entry);
  };
  for (const s of named) add(s);
  return [...rows.values()];
}

function subjectRowOf(s: AccessSubject): { row: SubjectRow; subject: Subject } {
  if (s.user !== undefined) return { row: { label: `user ${s.user}`, query: `user=${encodeURIComponent(s.user)}` }, subject: { user: s.user, groups: [], authenticated: true } };
  if (s.group !== undefined) return { row: { label: `group ${s.group}`, query: `group=${encodeURIComponent(s.group)}` }, subject: { groups: [s.group], authenticated: true } };
  if (s.token !== undefined) return { row: { label: 'token local', query: 'token=local' }, subject: { groups: [], authenticated: false, token: 'local' } };
  return { row: { label: 'authenticated', query: 'authenticated=true' }, subject: { groups: [], authenticated: true } };
}

function accessNotes(subject: Subject, mode: AuthMode, policies: number): string[] {
  const notes: string[] = [];
  if (subject.token !== 'local' && mode !== 'oidc') notes.push(`auth mode is ${mode}: no caller is a user until the Gateway's spec.auth.mode is oidc`);
  if (subject.token === 'local' && mode === 'none') notes.push('auth mode is none: callers bring no token at all');
  if (subject.token === 'local' && mode === 'oidc') notes.push('auth mode is oidc: the local token is a caller only where a policy names it (subjects: [{token: local}])');
  if (policies === 0) notes.push(mode === 'oidc' ? 'no AccessPolicy: in mode oidc nothing is allowed until a policy allows it' : 'no AccessPolicy: everything is allowed, as without a Gateway');
  return notes;
}

export async function effectiveAccess(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const subject = subjectOfQuery(new URL(req.url ?? '/', 'http://console').searchParams);
  const view = ctx.feed.view();
  const { set, mode, all } = policySetOf(ctx, view);
  const servers = all.filter((r) => r.kind === 'MCPServer').map((r) => r.name).sort();
  const rows = namedSubjects(all);
  const cell = (s: Subject, server: string): AccessCell => {
    const a = serverAccess(ctx, set, s, server);
    return { known: a.toolsKnown, allowed: a.allowed, denied: a.denied };
  };
  sendJson(res, 200, {
    mode,
    subject,
    label: subjectLabel(subject),
    notes: accessNotes(subject, mode, set.policies),
    servers: servers.map((server) => serverAccess(ctx, set, subject, server)),
    matrix: { subjects: rows.map((r) => r.row), servers, cells: rows.map((r) => servers.map((server) => cell(r.subject, server))) },
  } satisfies AccessAnswer);
}
