/**
 * Status as readers see it: the objects `get -o json` prints (manifest spec
 * plus the controller's status), built from the manifest directory and the
 * state directory. Usable whether or not a controller runs, and by any
 * front end (CLI now, a web page later). Never includes secret values.
 */
import { relative } from 'node:path';
import { specHash } from '../api/generation.js';
import { API_GROUP_VERSION, kindLower, resourceKey, type Kind, type ResourceKey } from '../api/names.js';
import type { ResourceEvent, AnyStatus } from '../api/status.js';
import { secretForms } from '../crypto/secret-data.js';
import { messageOf } from '../errors.js';
import { shownGatewaySpec } from '../manifests/access.js';
import { formatManifestError } from '../manifests/errors.js';
import { loadDirectory } from '../manifests/loader.js';
import type { ParsedDocument } from '../manifests/parse.js';
import { secretReferences } from '../manifests/references.js';
import type { Resource } from '../manifests/resource.js';
import { currentTarget } from './git-current.js';
import { byCodeUnit } from '../util/compare.js';
import { redactUrl } from '../util/redact-url.js';
import { liveController, readControllerInfo, type ControllerInfo } from './controller-lock.js';
import { StateLayout } from './layout.js';
import type { StatusRecord } from './records.js';
import { StatusStore, type StateFileProblem } from './status-store.js';

export interface ApiObject {
  apiVersion: string;
  kind: Kind;
  metadata: {
    name: string;
    generation?: number;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: unknown;
  status?: AnyStatus;
}

export interface ObjectView {
  key: ResourceKey;
  kind: Kind;
  name: string;
  object: ApiObject;
  record?: StatusRecord;
  resource?: Resource;
  /** Manifest errors, if the declaration is invalid. */
  errors: string[];
  /** Manifest warnings (e.g. plain secret values, an unexpanded $(VAR)). */
  warnings: string[];
  /** Where it is declared (file:line). */
  declaredAt?: string;
  /** The manifest differs from what the controller last observed. */
  stale: boolean;
  /** In the state directory but no longer in the manifests (being deleted). */
  orphan: boolean;
  events: ResourceEvent[];
  /** A Secret: the valid servers whose manifests reference it now (status.usedBy is the controller's last word on it). */
  usedBy?: string[];
}

export interface StateView {
  controller?: ControllerInfo;
  /** Set when no controller runs: the last controller's info, if any. */
  lastController?: ControllerInfo;
  lastWrittenAt?: string;
  /** Why the manifest directory could not be read (e.g. it does not exist). */
  manifestsError?: string;
  /** State files that are there but unreadable (truncated, damaged): named, never read as "no status". */
  stateProblems: string[];
  objects: ObjectView[];
  /** Secrets that valid servers reference but no manifest declares (sorted by name): what kubectl would answer NotFound for. */
  wanted: WantedSecret[];
}

/** A secret some server needs that nobody declares. */
export interface WantedSecret {
  name: string;
  /** The keys servers ask for (none for a secret taken whole by envFrom). */
  keys: string[];
  /** Each server that references it, and for which variable. */
  wantedBy: { server: string; env?: string; key?: string; optional: boolean }[];
  /** Every reference is optional: the servers start without it. */
  optional: boolean;
}

function objectFor(kind: Kind, name: string, resource: Resource | undefined, record: StatusRecord | undefined): ApiObject {
  const meta = resource?.manifest.metadata;
  const metadata: ApiObject['metadata'] = { name };
  if (record) {
    metadata.generation = record.metadata.generation;
    metadata.creationTimestamp = record.metadata.creationTimestamp;
  }
  if (meta?.labels) metadata.labels = meta.labels;
  if (meta?.annotations) metadata.annotations = meta.annotations;
  const object: ApiObject = { apiVersion: API_GROUP_VERSION, kind, metadata };
  // Policies hold no secret (globs, names): shown as written; a Gateway's URLs without credentials someone wrote into them.
  if (resource?.kind === 'AccessPolicy') object.spec = resource.manifest.spec;
  if (resource?.kind === 'MCPServer') {
    const spec = resource.manifest.spec;
    // A hosted server's URL without credentials someone wrote into it (a $(VAR) from a Secret is only a name).
    object.spec = spec.remote === undefined ? spec : { ...spec, remote: { ...spec.remote, url: redactUrl(spec.remote.url) } };
  }
  if (resource?.kind === 'Gateway') object.spec = shownGatewaySpec(resource.manifest.spec ?? {});
  if (resource?.kind === 'GitRepository') object.spec = { ...resource.manifest.spec, url: redactUrl(resource.manifest.spec.url) };
  if (resource?.kind === 'Secret') {
    // Keys and their form only: never values.
    object.spec = { keys: Object.fromEntries(secretForms(resource)) };
  }
  if (record) object.status = record.status;
  return object;
}

export async function readStateView(dir: string, stateDir: string): Promise<StateView> {
  const layout = new StateLayout(stateDir);
  let manifestsError: string | undefined;
  const [loaded, { records, problems }, controller, lastController] = await Promise.all([
    loadDirectory(dir, relative(process.cwd(), dir) || '.').catch((err: unknown) => {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      manifestsError = missing ? `manifest directory ${dir} does not exist` : `cannot read the manifest directory: ${messageOf(err)}`;
      return undefined;
    }),
    new StatusStore(layout).scan(),
    liveController(layout),
    readControllerInfo(layout),
  ]);
  // A directory that follows git: the repository's manifests as the controller last switched to them.
  const followed = loaded?.documents.some((d) => d.kind === 'GitRepository') === true ? await loadFollowedRevision(layout) : [];
  return composeStateView({
    documents: [...(loaded?.documents ?? []), ...followed],
    records,
    ...(manifestsError !== undefined ? { manifestsError } : {}),
    problems,
    ...(controller ? { controller } : {}),
    ...(lastController ? { lastController } : {}),
  });
}

/** The documents of the revision `<state>/git/current` points at, files named as in the repository (none before the first fetch). */
async function loadFollowedRevision(layout: StateLayout): Promise<readonly ParsedDocument[]> {
  const target = await currentTarget(layout.gitCurrent);
  if (target === undefined) return [];
  const loaded = await loadDirectory(layout.gitCurrent, target.path === '' ? '.' : target.path).catch(() => undefined);
  return loaded?.documents ?? [];
}

/** What a state view is made of, however it was read: from disk (the CLI) or a running controller's memory (the console). */
export interface StateViewInput {
  documents: readonly ParsedDocument[];
  records: readonly StatusRecord[];
  manifestsError?: string;
  problems?: readonly StateFileProblem[];
  controller?: ControllerInfo;
  lastController?: ControllerInfo;
}

/** The one serializer: every reader's objects come from here. */
export function composeStateView(input: StateViewInput): StateView {
  const { documents, records, manifestsError, problems = [], controller, lastController } = input;
  const byKey = new Map<ResourceKey, ObjectView>();
  const recordFor = new Map(records.map((r) => [resourceKey(r.kind, r.metadata.name), r]));
  for (const doc of documents) {
    if (doc.kind === undefined || doc.name === undefined) continue;
    const key = resourceKey(doc.kind, doc.name);
    const existing = byKey.get(key);
    const record = recordFor.get(key);
    const resource = doc.errors.length === 0 ? doc.resource : undefined;
    const view: ObjectView = existing ?? {
      key,
      kind: doc.kind,
      name: doc.name,
      object: objectFor(doc.kind, doc.name, resource, record),
      ...(record ? { record } : {}),
      errors: [],
      warnings: [],
      declaredAt: `${doc.source.file}:${doc.source.line}`,
      stale: false,
      orphan: false,
      events: record?.events ?? [],
    };
    view.errors.push(...doc.errors.map(formatManifestError));
    view.warnings.push(...doc.warnings.map(formatManifestError));
    if (resource && view.errors.length === 0) {
      view.resource = resource;
      view.stale = record === undefined || record.specHash !== specHash(resource.manifest);
    } else {
      delete view.resource;
    }
    byKey.set(key, view);
  }
  for (const record of records) {
    const key = resourceKey(record.kind, record.metadata.name);
    if (byKey.has(key)) continue;
    byKey.set(key, {
      key,
      kind: record.kind,
      name: record.metadata.name,
      object: objectFor(record.kind, record.metadata.name, undefined, record),
      record,
      errors: [],
      warnings: [],
      stale: true,
      orphan: true,
      events: record.events,
    });
  }
  const objects = [...byKey.values()].sort((a, b) => byCodeUnit(a.kind, b.kind) || byCodeUnit(a.name, b.name));
  const users = secretUsers(documents);
  for (const o of objects) if (o.kind === 'Secret') o.usedBy = users.get(o.name) ?? [];
  const wanted = wantedSecrets(documents);
  const lastWrittenAt = records.map((r) => r.writtenAt).sort().at(-1);
  return {
    ...(controller ? { controller } : {}),
    ...(!controller && lastController ? { lastController } : {}),
    ...(lastWrittenAt ? { lastWrittenAt } : {}),
    ...(manifestsError !== undefined ? { manifestsError } : {}),
    stateProblems: problems.map((p) => `status of ${kindLower(p.kind)}/${p.name} is unreadable (${p.file}: ${p.error}); a running controller rewrites it at its next pass`),
    objects,
    wanted,
  };
}

/** Secret name -> the valid servers (sorted) whose manifests reference it. */
function secretUsers(documents: readonly ParsedDocument[]): Map<string, string[]> {
  const users = new Map<string, Set<string>>();
  for (const doc of documents) {
    if (doc.errors.length > 0 || doc.resource?.kind !== 'MCPServer') continue;
    for (const ref of secretReferences(doc.resource)) users.set(ref.secret, (users.get(ref.secret) ?? new Set()).add(doc.resource.name));
  }
  return new Map([...users].map(([name, servers]) => [name, [...servers].sort()]));
}

/** The secrets valid servers reference that no document declares (valid or not: a broken declaration is not a missing one). */
function wantedSecrets(documents: readonly ParsedDocument[]): WantedSecret[] {
  const declared = new Set(documents.filter((d) => d.kind === 'Secret' && d.name !== undefined).map((d) => d.name!));
  const wanted = new Map<string, WantedSecret>();
  for (const doc of documents) {
    if (doc.errors.length > 0 || doc.resource?.kind !== 'MCPServer') continue;
    for (const ref of secretReferences(doc.resource)) {
      if (declared.has(ref.secret)) continue;
      const entry = wanted.get(ref.secret) ?? { name: ref.secret, keys: [], wantedBy: [], optional: true };
      if (ref.key !== undefined && !entry.keys.includes(ref.key)) entry.keys.push(ref.key);
      entry.wantedBy.push({ server: doc.resource.name, ...(ref.env !== undefined ? { env: ref.env } : {}), ...(ref.key !== undefined ? { key: ref.key } : {}), optional: ref.optional });
      entry.optional &&= ref.optional;
      wanted.set(ref.secret, entry);
    }
  }
  for (const entry of wanted.values()) entry.keys.sort();
  return [...wanted.values()].sort((a, b) => byCodeUnit(a.name, b.name));
}

/** As kubectl prints several objects: a Kubernetes List of them (the CLI's `-o json` and the console's API alike). */
export function asList(objects: readonly ObjectView[]): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'List', metadata: {}, items: objects.map((o) => o.object) };
}

/** Is this object's status current: written by the running controller, for the manifest as it is now? */
export function isCurrent(view: StateView, object: ObjectView): boolean {
  return (
    view.controller !== undefined &&
    object.record !== undefined &&
    object.record.writtenBy.runId === view.controller.runId &&
    !object.stale
  );
}
