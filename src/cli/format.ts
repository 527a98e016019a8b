/** Rendering of status views for the terminal (tables, describe) and for scripts (json, yaml). */
import { stringify } from 'yaml';
import { kindLower, type Kind } from '../api/names.js';
import { findCondition, type GitRepositoryStatus, type MCPServerStatus, type SecretStatus } from '../api/status.js';
import { shortRevision } from '../source/spec.js';
import { byCodeUnit } from '../util/compare.js';
import type { MCPServerSpec } from '../api/manifests.js';
import type { ObjectView, StateView, WantedSecret } from '../state/view.js';
import { escapeTerminal, escapeTerminalLines } from './escape.js';
import { age, table } from './table.js';
// Only the type: what reads the port (and its node:net, the reconciler) stays out of get's start-up.
import type { InternalPort } from './internal-port.js';
import { gatewayDetails, policyDetails, serverRateLimitDetails } from './access-format.js';
import { redactUrl } from '../util/redact-url.js';

export function serialize(value: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? JSON.stringify(value, null, 2) : stringify(value, { lineWidth: 0 }).trimEnd();
}

function serverPhase(o: ObjectView): string {
  if (o.errors.length > 0 && o.record === undefined) return 'Invalid';
  const status = o.object.status as MCPServerStatus | undefined;
  if (status === undefined) return 'Unknown';
  const phase = phaseWithReason(status);
  return o.orphan ? `${phase} (deleted)` : phase;
}

/**
 * The phase with the reason it carries, as kubectl's STATUS column shows
 * `CreateContainerConfigError` rather than Pending: a server that cannot go
 * on says why (`Stuck (SecretNotFound)`, `Failed (StartFailed)`); one that
 * is not Running says what it waits for (`Pending (ControllerStopped)`). A
 * reason that only repeats the phase (CrashLoopBackOff) is left out.
 */
export function phaseWithReason(status: MCPServerStatus): string {
  const phase = status.phase;
  if (phase === 'Running' || phase === 'Suspended') return phase;
  const stalled = findCondition(status.conditions, 'Stalled');
  const ready = findCondition(status.conditions, 'Ready');
  const reason = stalled?.status === 'True' ? stalled.reason : ready?.status !== 'True' ? ready?.reason : undefined;
  return reason === undefined || reason === '' || reason === phase ? phase : `${phase} (${reason})`;
}

/** Following git: the revision each object was last applied from (a column only when some object has one). */
function revisionColumn(objects: readonly ObjectView[]): ((o: ObjectView) => string) | undefined {
  const of = (o: ObjectView): string | undefined => (o.object.status as { lastAppliedRevision?: string } | undefined)?.lastAppliedRevision;
  if (!objects.some((o) => of(o) !== undefined)) return undefined;
  return (o) => {
    const revision = of(o);
    return revision !== undefined ? shortRevision(revision) : '-';
  };
}

export function serverTable(objects: readonly ObjectView[], wide: boolean, now: number): string {
  const headers = ['NAME', 'PHASE', 'READY', 'RESTARTS', 'AGE', 'URL'];
  const revision = wide ? revisionColumn(objects) : undefined;
  if (wide) headers.push('PID', 'PROTOCOL', 'GENERATION', ...(revision ? ['REVISION'] : []), 'MESSAGE');
  const rows = objects.map((o) => {
    const status = o.object.status as MCPServerStatus | undefined;
    const ready = findCondition(status?.conditions, 'Ready');
    const row = [
      o.name,
      serverPhase(o),
      ready?.status === 'True' ? 'True' : ready ? 'False' : '-',
      String(status?.restartCount ?? 0),
      age(status?.startedAt ?? o.object.metadata.creationTimestamp, now),
      status?.url ?? '<none>',
    ];
    if (wide) {
      row.push(
        status?.pid !== undefined ? String(status.pid) : '-',
        status?.protocolVersion ?? '-',
        `${status?.observedGeneration ?? 0}/${o.object.metadata.generation ?? 0}${o.stale ? '*' : ''}`,
        ...(revision ? [revision(o)] : []),
        o.errors[0] ?? status?.message ?? '',
      );
    }
    return row;
  });
  return table(headers, rows);
}

/** `wanted`: secrets servers reference that no manifest declares, listed as Missing (kubectl's NotFound, in a row). */
export function secretTable(objects: readonly ObjectView[], wide: boolean, now: number, wanted: readonly WantedSecret[] = []): string {
  const headers = ['NAME', 'KEYS', 'STATE', 'USED BY', 'AGE'];
  const revision = wide ? revisionColumn(objects) : undefined;
  if (wide) headers.push('FORMS', ...(revision ? ['REVISION'] : []), 'MESSAGE');
  const rows = objects.map((o) => {
    const status = o.object.status as SecretStatus | undefined;
    const keys = status?.keys ?? Object.keys((o.object.spec as { keys?: object } | undefined)?.keys ?? {});
    const state = o.errors.length > 0 ? 'Invalid' : (status?.phase ?? 'Unknown');
    const row = [o.name, String(keys.length), o.orphan ? `${state} (deleted)` : state, (o.usedBy ?? status?.usedBy ?? []).join(',') || '<none>', age(o.object.metadata.creationTimestamp, now)];
    if (wide) {
      const forms = status?.forms ?? (o.object.spec as { keys?: Record<string, string> } | undefined)?.keys ?? {};
      row.push([...new Set(Object.values(forms))].join('+') || '-', ...(revision ? [revision(o)] : []), o.errors[0] ?? status?.message ?? '');
    }
    return row;
  });
  for (const w of wanted) {
    const row = [w.name, w.keys.length > 0 ? String(w.keys.length) : '-', w.optional ? 'Missing (optional)' : 'Missing', [...new Set(w.wantedBy.map((b) => b.server))].join(','), '<none>'];
    if (wide) row.push('-', ...(revision ? ['-'] : []), missingSecretMessage(w));
    rows.push(row);
  }
  const order = (row: readonly string[]): string => row[0] ?? '';
  rows.sort((a, b) => byCodeUnit(order(a), order(b)));
  return table(headers, rows);
}

/** What a missing secret is wanted for, and the command that creates it. */
export function missingSecretMessage(w: WantedSecret): string {
  const uses = w.wantedBy.map((b) => `mcpserver/${b.server}${b.env !== undefined ? ` (env ${b.env}${b.optional ? ', optional' : ''})` : ''}`);
  return `not declared in any manifest; wanted by ${uses.join(', ')}; create it with: apiary secret set ${w.name} ${w.keys[0] ?? 'KEY'}`;
}

/** As `flux get sources git`: what is fetched, which revision runs, and whether all is well. */
export function sourceTable(objects: readonly ObjectView[], wide: boolean, now: number): string {
  const headers = ['NAME', 'REVISION', 'SUSPENDED', 'READY', 'FETCHED', 'MESSAGE'];
  if (wide) headers.splice(1, 0, 'URL');
  const rows = objects.map((o) => {
    const status = o.object.status as GitRepositoryStatus | undefined;
    const spec = o.object.spec as { url?: string; suspend?: boolean } | undefined;
    const ready = findCondition(status?.conditions, 'Ready');
    const revision = status?.artifact?.revision;
    const row = [
      o.name,
      revision !== undefined ? (wide ? revision : shortRevision(revision)) : '<none>',
      spec?.suspend === true ? 'True' : 'False',
      o.errors.length > 0 ? 'False' : (ready?.status ?? 'Unknown'),
      status?.fetchedAt !== undefined ? `${age(status.fetchedAt, now)} ago` : '<never>',
      o.errors[0] ?? ready?.message ?? status?.message ?? '',
    ];
    if (wide) row.splice(1, 0, status?.url ?? spec?.url ?? '');
    return row;
  });
  return table(headers, rows);
}

export function controllerNotice(view: StateView, now: number): string | undefined {
  if (view.controller !== undefined) return undefined;
  const last = view.lastWrittenAt ? `; status last written ${age(view.lastWrittenAt, now)} ago (${view.lastWrittenAt})` : '; no status has been written yet';
  return `no apiary controller is running for this state directory${last}. Start one with: apiary up`;
}

/** A field on one line: its value, often a server's or a manifest author's words, escaped (newlines too). */
function line(label: string, value: string | number | undefined): string {
  return `${`${label}:`.padEnd(18)}${value === undefined ? '<none>' : escapeTerminal(String(value))}`;
}

/** Every field and event, escaped for the terminal: what is not escaped on its own line is escaped here as a whole. `internal`: the internal port of an HTTP server apiary runs (internalPortOf), said plainly to be unguarded. */
export function describe(o: ObjectView, view: StateView, now: number, internal?: InternalPort): string {
  return escapeTerminalLines(describeRaw(o, view, now, internal));
}

function describeRaw(o: ObjectView, view: StateView, now: number, internal?: InternalPort): string {
  const out: string[] = [];
  const status = o.object.status;
  out.push(line('Name', o.name), line('Kind', o.kind), line('Declared in', o.declaredAt ?? '<deleted from the manifests>'));
  const labels = o.object.metadata.labels;
  out.push(line('Labels', labels ? Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(', ') : '<none>'));
  // No controller keeps the access kinds' status yet: "changed since the controller last saw it" would be said of them forever.
  const unobserved = (o.kind === 'Gateway' || o.kind === 'AccessPolicy') && o.record === undefined;
  if (!unobserved) out.push(line('Generation', `${o.object.metadata.generation ?? 0} (observed ${status?.observedGeneration ?? 0})${o.stale ? ', manifest changed since the controller last saw it' : ''}`));
  if (o.warnings.length > 0) {
    out.push('Manifest warnings:');
    for (const w of o.warnings) out.push(`  ${escapeTerminal(w)}`);
  }
  if (o.errors.length > 0) {
    out.push('Manifest errors:');
    for (const e of o.errors) out.push(`  ${escapeTerminal(e)}`);
  }
  if (o.kind === 'MCPServer') describeServer(o, status as MCPServerStatus | undefined, out, now, internal);
  else if (o.kind === 'GitRepository') describeSource(o, status as GitRepositoryStatus | undefined, out, now);
  else if (o.kind === 'Gateway' || o.kind === 'AccessPolicy') {
    for (const d of o.kind === 'Gateway' ? gatewayDetails(o) : policyDetails(o)) out.push(typeof d === 'string' ? d : line(d[0], d[1]));
  } else describeSecret(o, status as SecretStatus | undefined, out);
  const applied = (status as { lastAppliedRevision?: string } | undefined)?.lastAppliedRevision;
  if (applied !== undefined) out.push(line('Applied from', applied));
  if (status !== undefined) {
    out.push('Conditions:');
    out.push(indent(table(['TYPE', 'STATUS', 'REASON', 'SINCE', 'MESSAGE'], status.conditions.map((c) => [c.type, c.status, c.reason, age(c.lastTransitionTime, now), c.message])), 2));
  }
  out.push('Events:');
  if (o.events.length === 0) out.push('  <none>');
  else {
    out.push(indent(table(['TYPE', 'REASON', 'AGE', 'FROM', 'MESSAGE'], o.events.map((e) => [e.type, e.reason, age(e.lastTimestamp, now) + (e.count > 1 ? ` (x${e.count} over ${age(e.firstTimestamp, now)})` : ''), 'apiary', e.message])), 2));
  }
  return out.join('\n');
}

function describeServer(o: ObjectView, status: MCPServerStatus | undefined, out: string[], now: number, internal: InternalPort | undefined): void {
  if (status !== undefined) {
    out.push(line('Phase', status.phase));
    if (status.message) out.push(line('Message', status.message));
    // On Kubernetes the server is a pod, not a local process.
    out.push(status.pod !== undefined ? line('Pod', status.pod) : line('PID', status.pid), line('Started', status.startedAt ? `${status.startedAt} (${age(status.startedAt, now)} ago)` : undefined));
    out.push(line('Restarts', status.restartCount));
    if (status.lastTermination) {
      const t = status.lastTermination;
      out.push(line('Last termination', `${t.reason ?? ''} ${t.signal ? `signal ${t.signal}` : `exit code ${t.exitCode ?? 'unknown'}`} at ${t.finishedAt}`.trim()));
      if (t.message !== undefined) out.push(line('Last output', t.message));
    }
    if (status.nextRetryAt) out.push(line('Next retry', status.nextRetryAt));
    out.push(line('URL', status.url));
    // What apiary speaks to the server: 2026-07-28 (stateless) or the version a 2025 server answered initialize with.
    if (status.protocolVersion !== undefined) out.push(line('Protocol', status.protocolVersion));
    // A pod's port is the cluster's business; a local process's is reachable on this machine.
    if (internal !== undefined && status.pod === undefined) {
      const [port, guard] = internalPortLines(internal);
      out.push(line('Internal port', port), `${' '.repeat(18)}${guard}`);
    }
    if (status.sandbox !== undefined) out.push(line('Sandbox', status.sandbox));
    if (status.tools !== undefined) {
      const filtered = status.toolsFiltered ?? [];
      out.push(line('Tools', `${status.tools} exposed${filtered.length > 0 ? `, ${filtered.length} filtered by spec.tools (${filtered.join(', ')})` : ''}`));
    }
  }
  const r = o.resource;
  if (r?.kind !== 'MCPServer') return;
  const spec = r.manifest.spec;
  out.push('Spec:');
  if (spec.remote !== undefined) {
    out.push(`  ${line('Remote', `${redactUrl(spec.remote.url)} (${spec.remote.transport ?? 'streamable-http'})`)}`);
    for (const h of spec.remote.headers ?? []) out.push(`  ${line('Header', `${h.name}: ${h.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, '<$1>')}`)}`);
  } else {
    if (spec.image !== undefined) out.push(`  ${line('Image', spec.image)}`);
    out.push(`  ${line('Command', [spec.command ?? '', ...(spec.args ?? [])].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' '))}`);
    out.push(`  ${line('Working dir', spec.workingDir ?? '.')}`, `  ${line('Transport', spec.transport ?? 'stdio')}`, `  ${line('Restart policy', spec.restartPolicy ?? 'Always')}`, `  ${line('Strategy', strategyOf(spec))}`);
  }
  if (spec.port !== undefined) out.push(`  ${line('Port', spec.port)}`);
  if (spec.suspend) out.push(`  ${line('Suspend', 'true')}`);
  if (spec.tools?.allow) out.push(`  ${line('Tools allowed', spec.tools.allow.join(', ') || '<none>')}`);
  if (spec.tools?.deny?.length) out.push(`  ${line('Tools denied', spec.tools.deny.join(', '))}`);
  if (spec.rateLimits !== undefined) for (const d of serverRateLimitDetails(spec.rateLimits)) out.push(`  ${typeof d === 'string' ? d : line(d[0], d[1])}`);
  if (spec.sandbox !== undefined) for (const [label, value] of sandboxDetails(spec.sandbox)) out.push(`  ${line(label, value)}`);
  const env = spec.env ?? [];
  const envFrom = spec.envFrom ?? [];
  if (env.length + envFrom.length > 0) {
    out.push('  Environment:');
    for (const e of envFrom) out.push(`    <all keys of secret ${e.secretRef.name}>${e.prefix ? ` prefixed ${e.prefix}` : ''}${e.secretRef.optional ? ' (optional)' : ''}`);
    for (const e of env) {
      const ref = e.valueFrom?.secretKeyRef;
      out.push(`    ${e.name.padEnd(24)} ${ref ? `<- secret ${ref.name}/${ref.key}${ref.optional ? ' (optional)' : ''}` : `= ${escapeTerminal(e.value ?? '')}`}`);
    }
  }
}

function describeSecret(o: ObjectView, status: SecretStatus | undefined, out: string[]): void {
  const forms = status?.forms ?? (o.object.spec as { keys?: Record<string, string> } | undefined)?.keys ?? {};
  out.push(line('State', status?.phase ?? 'Unknown'));
  if (status?.message) out.push(line('Message', status.message));
  out.push(line('Used by', (o.usedBy ?? status?.usedBy ?? []).map((s) => `mcpserver/${s}`).join(', ') || '<none>'));
  out.push('Keys:');
  const keys = Object.entries(forms);
  if (keys.length === 0) out.push('  <none>');
  for (const [k, form] of keys) out.push(`  ${k.padEnd(24)} ${form}`);
}

function describeSource(o: ObjectView, status: GitRepositoryStatus | undefined, out: string[], now: number): void {
  const spec = o.object.spec as { url?: string; ref?: Record<string, string>; path?: string; interval?: string; suspend?: boolean } | undefined;
  out.push(line('URL', status?.url ?? spec?.url));
  const ref = spec?.ref !== undefined ? Object.entries(spec.ref).map(([k, v]) => `${k} ${v}`).join(', ') : "the remote's default branch";
  out.push(line('Ref', ref), line('Path', spec?.path ?? '.'), line('Interval', spec?.interval ?? '1m'), line('Suspended', spec?.suspend === true ? 'true' : 'false'));
  if (status === undefined) return;
  out.push(line('Phase', status.phase));
  if (status.message) out.push(line('Message', status.message));
  out.push(line('Revision', status.artifact ? `${status.artifact.revision} (since ${status.artifact.lastUpdateTime})` : undefined));
  out.push(line('Fetched', status.fetchedAt ? `${status.fetchedAt} (${age(status.fetchedAt, now)} ago)` : undefined));
  if (status.lastAttemptedRevision !== undefined) out.push(line('Not applied', `${status.lastAttemptedRevision} (its manifests do not validate)`));
  if (status.nextFetchAt !== undefined) out.push(line('Next fetch', status.nextFetchAt));
}

function indent(text: string, n: number): string {
  return text.split('\n').map((l) => ' '.repeat(n) + l).join('\n');
}

export function kindLabel(kind: Kind, name: string): string {
  return `${kindLower(kind)}/${name}`;
}

/** The rollout strategy in effect, with its bounds when they are not the defaults. */
function strategyOf(spec: MCPServerSpec): string {
  const type = spec.strategy?.type ?? ((spec.transport ?? 'stdio') === 'stdio' ? 'RollingUpdate' : 'Recreate');
  const rolling = spec.strategy?.rollingUpdate;
  const bounds = [
    ...(rolling?.progressDeadlineSeconds !== undefined ? [`progress deadline ${rolling.progressDeadlineSeconds}s`] : []),
    ...(rolling?.drainSeconds !== undefined ? [`drain ${rolling.drainSeconds}s`] : []),
  ];
  return type === 'RollingUpdate' && bounds.length > 0 ? `${type} (${bounds.join(', ')})` : type;
}

/** The lines describe prints: the port, where it listens, and what does not protect it. */
export function internalPortLines(internal: InternalPort): [string, string] {
  const everywhere = internal.listening?.some((a) => a === '0.0.0.0' || a === '::') === true;
  const where = internal.listening === undefined || internal.listening.length === 0 ? '' : `, listening on ${internal.listening.join(', ')}${everywhere ? ' (every interface)' : ''}`;
  const who = everywhere ? 'any local user, and other machines unless a firewall stops them, can call the server there directly' : 'any local user can call the server there directly';
  return [`${internal.port} (the server's own $PORT)${where}`, `not protected by apiary's token or spec.tools: ${who}`];
}

/** spec.sandbox as describe shows it: what the manifest asks for (the status line says what is in force). */
function sandboxDetails(sandbox: NonNullable<MCPServerSpec['sandbox']>): [string, string][] {
  const network = sandbox.network ?? 'none';
  const rows: [string, string][] = [['Sandbox', `profile ${sandbox.profile ?? 'default'}, network ${network}`]];
  if (sandbox.filesystem?.read?.length) rows.push(['  Read', sandbox.filesystem.read.map(escapeTerminal).join(', ')]);
  if (sandbox.filesystem?.write?.length) rows.push(['  Write', sandbox.filesystem.write.map(escapeTerminal).join(', ')]);
  if (sandbox.allow?.length) rows.push(['  Allow', sandbox.allow.join(', ')]);
  return rows;
}
