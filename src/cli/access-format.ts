/**
 * The access kinds (Gateway, AccessPolicy) for the terminal: their `get`
 * tables, their `describe` details, and the words of a policy decision.
 * The spec as written, and the controller's Ready condition once it has
 * seen them (READY `-` before).
 */
import type { Decision, Subject } from '../api/access.js';
import type { AccessRule, AccessSubject, GatewaySpec, ServerRateLimits } from '../api/manifests.js';
import { findCondition, type GatewayStatus } from '../api/status.js';
import { shownGatewaySpec } from '../manifests/access.js';
import type { ObjectView } from '../state/view.js';
import { table } from './table.js';

/** A labelled value, or a line as it is (a heading, a table). */
export type Detail = [label: string, value: string | undefined] | string;

function gatewaySpec(o: ObjectView): GatewaySpec | undefined {
  return o.resource?.kind === 'Gateway' ? shownGatewaySpec(o.resource.manifest.spec ?? {}) : undefined;
}

function limit(l: { requests: number; perSeconds: number } | undefined): string | undefined {
  return l === undefined ? undefined : `${l.requests}/${l.perSeconds}s`;
}

function rateLimitSummary(spec: GatewaySpec): string {
  const limits = spec.rateLimits;
  const parts = [
    ...(limits?.perSubject ? [`subject ${limit(limits.perSubject)}`] : []),
    ...(limits?.perServer ? [`server ${limit(limits.perServer)}`] : []),
    ...(limits?.perTool?.length ? [`${limits.perTool.length} tool limit(s)`] : []),
  ];
  return parts.join(', ') || '<none>';
}

/**
 * An MCPServer's own limits, as `describe` shows them: each field it sets,
 * and what it leaves to the Gateway (src/api/rate-limit.ts: perServer and
 * perTool in place of the Gateway's, perSubject beside the Gateway's).
 */
export function serverRateLimitDetails(limits: ServerRateLimits): Detail[] {
  const own = [
    ...(limits.perSubject ? [`subject ${limit(limits.perSubject)} per caller here`] : []),
    ...(limits.perServer ? [`server ${limit(limits.perServer)}`] : []),
    ...(limits.perTool !== undefined ? [limits.perTool.length > 0 ? `${limits.perTool.length} tool limit(s)` : "no tool limits (the Gateway's lifted)"] : []),
  ];
  const left = [...(limits.perServer ? [] : ['perServer']), ...(limits.perTool !== undefined ? [] : ['perTool'])];
  const out: Detail[] = [['Rate limits', `${own.join(', ') || '<none>'}${left.length > 0 ? `; ${left.join(' and ')} as the Gateway's` : ''}`]];
  for (const t of limits.perTool ?? []) out.push(`  ${t.tool}: ${limit(t)}`);
  return out;
}

function telemetrySummary(spec: GatewaySpec): string {
  const t = spec.telemetry;
  const parts = [...(t?.otlp ? [`otlp ${t.otlp.endpoint}`] : []), ...(t?.prometheus ? [`prometheus ${t.prometheus.address ?? '127.0.0.1'}:${t.prometheus.port}`] : [])];
  return parts.join(', ') || '<none>';
}

/** The controller's word on it: its Ready condition, `-` while no controller has seen it. */
function readiness(o: ObjectView): { ready: string; message: string | undefined } {
  const ready = findCondition(o.object.status?.conditions, 'Ready');
  if (ready === undefined) return { ready: '-', message: undefined };
  return { ready: ready.status, message: ready.status === 'True' && ready.reason === 'Applied' ? undefined : `${ready.reason}: ${ready.message}` };
}

export function gatewayTable(objects: readonly ObjectView[], wide: boolean): string {
  const headers = ['NAME', 'READY', 'AUTH', 'ISSUER', 'AUDIT', 'MESSAGE'];
  if (wide) headers.splice(5, 0, 'TELEMETRY', 'RATE LIMITS');
  const rows = objects.map((o) => {
    const spec = gatewaySpec(o);
    const { ready, message } = readiness(o);
    if (spec === undefined) return [o.name, ready, 'Invalid', '-', '-', ...(wide ? ['-', '-'] : []), o.errors[0] ?? ''];
    // What the endpoints apply, once a controller said (up --no-auth makes it none), else what is written.
    const mode = (o.object.status as GatewayStatus | undefined)?.mode ?? spec.auth?.mode ?? 'token';
    const row = [o.name, ready, mode, mode === 'oidc' ? (spec.auth?.oidc?.issuer ?? '-') : '-', spec.audit?.enabled === false ? 'off' : 'on', message ?? o.warnings[0] ?? ''];
    if (wide) row.splice(5, 0, telemetrySummary(spec), rateLimitSummary(spec));
    return row;
  });
  return table(headers, rows);
}

export function subjectText(s: AccessSubject): string {
  if (s.user !== undefined) return `user ${s.user}`;
  if (s.group !== undefined) return `group ${s.group}`;
  return s.token !== undefined ? `token ${s.token}` : 'authenticated';
}

function effects(rules: readonly AccessRule[]): string {
  const allow = rules.filter((r) => r.effect === 'Allow').length;
  const deny = rules.length - allow;
  return [...(allow ? [`${allow} Allow`] : []), ...(deny ? [`${deny} Deny`] : [])].join(', ');
}

export function policyTable(objects: readonly ObjectView[], wide: boolean): string {
  const headers = ['NAME', 'READY', 'SUBJECTS', 'RULES', 'DECLARED'];
  if (wide) headers.push('MESSAGE');
  const rows = objects.map((o) => {
    const spec = o.resource?.kind === 'AccessPolicy' ? o.resource.manifest.spec : undefined;
    const { ready, message } = readiness(o);
    const row = spec === undefined ? [o.name, ready, '-', 'Invalid', o.declaredAt ?? '-'] : [o.name, ready, spec.subjects.map(subjectText).join(', '), effects(spec.rules), o.declaredAt ?? '-'];
    if (wide) row.push(o.errors[0] ?? message ?? '');
    return row;
  });
  return table(headers, rows);
}

const ALL = '*';

/** What a rule covers, as one cell per kind: `*` where the rule lists no kind at all (it covers everything). */
function ruleCells(rule: AccessRule): string[] {
  const none = rule.tools === undefined && rule.prompts === undefined && rule.resources === undefined;
  const cell = (list: readonly string[] | undefined): string => (none ? ALL : list === undefined ? '-' : list.join(', ') || '<none>');
  return [rule.servers.join(', '), cell(rule.tools), cell(rule.prompts), cell(rule.resources)];
}

function indent(text: string): string {
  return text.split('\n').map((l) => `  ${l}`).join('\n');
}

export function gatewayDetails(o: ObjectView): Detail[] {
  const spec = gatewaySpec(o);
  if (spec === undefined) return [];
  const oidc = spec.auth?.oidc;
  const out: Detail[] = [['Auth mode', spec.auth?.mode ?? 'token']];
  // What the endpoints apply, as the controller last said (under up --no-auth: mode none, whatever is written).
  const status = o.object.status as GatewayStatus | undefined;
  if (status?.mode !== undefined) out.push(['In force', `auth mode ${status.mode}, ${status.policies} AccessPolicy(s), audit log ${status.audit ? 'on' : 'off'}`]);
  if (status?.metricsUrl !== undefined) out.push(['Metrics', status.metricsUrl]);
  if (oidc !== undefined) {
    out.push(['Issuer', oidc.issuer], ['Audience', oidc.audience], ['Username claim', oidc.usernameClaim ?? 'sub'], ['Groups claim', oidc.groupsClaim ?? 'groups']);
    if (oidc.jwksURL !== undefined) out.push(['JWKS', oidc.jwksURL]);
    if (oidc.requiredScopes?.length) out.push(['Required scopes', oidc.requiredScopes.join(' ')]);
    if (oidc.scopes?.length) out.push(['Advertised scopes', oidc.scopes.join(' ')]);
  }
  const audit = spec.audit;
  out.push(['Audit', audit?.enabled === false ? 'off' : `on${audit?.maxFileBytes !== undefined ? `, rotated at ${audit.maxFileBytes} bytes` : ''}${audit?.maxFiles !== undefined ? `, ${audit.maxFiles} kept` : ''}`]);
  out.push(['Telemetry', telemetrySummary(spec)], ['Rate limits', rateLimitSummary(spec)]);
  for (const t of spec.rateLimits?.perTool ?? []) out.push(`  ${t.server ?? '*'}/${t.tool}: ${limit(t)}`);
  return out;
}

export function policyDetails(o: ObjectView): Detail[] {
  if (o.resource?.kind !== 'AccessPolicy') return [];
  const { manifest, ruleLines, source } = o.resource;
  const rows = manifest.spec.rules.map((rule, i) => [String(i), `${source.file}:${ruleLines[i] ?? source.line}`, rule.effect, ...ruleCells(rule)]);
  return [['Subjects', manifest.spec.subjects.map(subjectText).join(', ')], 'Rules:', indent(table(['#', 'AT', 'EFFECT', 'SERVERS', 'TOOLS', 'PROMPTS', 'RESOURCES'], rows))];
}

/** Who is asking, in words: `alice (groups dev, ops)`, `the local token`. */
export function subjectWords(s: Subject): string {
  if (s.token === 'local') return 'the local token';
  if (s.user === undefined) return 'an anonymous caller';
  return s.groups.length > 0 ? `${s.user} (groups ${s.groups.join(', ')})` : s.user;
}

/** Why a decision is what it is: the rule (policy, file:line), or the default that applied. */
export function decisionReason(d: Decision, mode: string): string {
  if (d.rule !== undefined) return `by rule ${d.rule.index} of accesspolicy/${d.rule.policy} (${d.rule.file}:${d.rule.line})`;
  if (d.reason === 'no-policies') return `no AccessPolicy in the directory: in auth mode ${mode} everything is allowed, as without a Gateway`;
  return `no rule allows it: default deny (auth mode ${mode})`;
}
