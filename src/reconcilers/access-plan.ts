/**
 * What the endpoints are to enforce, planned from the directory's Gateway
 * and AccessPolicies (issue 26): the auth mode, the policies, the audit,
 * telemetry and rate-limit settings, and what each access resource's status
 * says of it. Pure: the reconciler (access.ts) builds the AccessConfig's live
 * parts (the verifier, the limiter, the log, the exporters) from this plan.
 *
 * The decisions, once:
 * - No Gateway and no AccessPolicy: exactly what apiary always did (the
 *   bearer token, or nothing under `up --no-auth`), and no audit log.
 * - `up --no-auth` wins over the Gateway: mode none, no policies (every
 *   caller may use everything, as --no-auth always meant), and a warning
 *   naming the Gateway's file. Audit, telemetry and limits still apply.
 * - A Gateway or AccessPolicy that does not validate holds the set: what was
 *   applied before stays in force (dropping a policy with a Deny in it would
 *   widen access). With nothing applied before (apiary starting), everything
 *   is denied until it validates: fail closed, never open.
 */
import { compilePolicies, type AccessPolicySet } from '../api/access.js';
import type { AuthMode, GatewaySpec } from '../api/manifests.js';
import { resourceKey, type ResourceKey } from '../api/names.js';
import { formatManifestError } from '../manifests/errors.js';
import { policySource } from '../manifests/access.js';
import type { AccessPolicyResource, GatewayResource, MCPServerResource } from '../manifests/resource.js';
import type { DesiredEntry } from '../manifests/desired-state.js';

export type GatewayOidc = NonNullable<NonNullable<GatewaySpec['auth']>['oidc']>;
export type GatewayAudit = NonNullable<GatewaySpec['audit']>;
export type GatewayTelemetry = NonNullable<GatewaySpec['telemetry']>;
export type GatewayRateLimits = NonNullable<GatewaySpec['rateLimits']>;
/** An MCPServer's spec.rateLimits: the Gateway's shape ({perSubject?, perServer?, perTool?}), for that server's calls. */
export type RateLimits = GatewayRateLimits;

/** The audit log as the Gateway asks for it; undefined: no log. Defaults as the schema documents them. */
export interface AuditSettings {
  maxFileBytes: number;
  maxFiles: number;
}

export const AUDIT_DEFAULTS: AuditSettings = { maxFileBytes: 10 * 1024 * 1024, maxFiles: 5 };

/** What the endpoints are to apply, before the live parts are built. */
export interface AccessSettings {
  mode: AuthMode;
  oidc?: GatewayOidc;
  policies: AccessPolicySet;
  audit?: AuditSettings;
  telemetry?: GatewayTelemetry;
  rateLimits?: GatewayRateLimits;
  perServer: ReadonlyMap<string, RateLimits>;
}

/** One access resource's status, as far as the plan knows it (the reconciler adds what the live parts report). */
export interface PlannedStatus {
  key: ResourceKey;
  valid: boolean;
  ready: boolean;
  reason: string;
  message: string;
  rules?: number;
}

export interface AccessPlan {
  /** `hold`: keep what was applied before (something is invalid); apply these only when nothing was. */
  settings: AccessSettings;
  hold: boolean;
  statuses: PlannedStatus[];
  /** The Gateway's file:line, when `up --no-auth` overrides a mode it sets. */
  overridden?: string;
}

export interface AccessInputs {
  /** Every declared Gateway and AccessPolicy, valid or not. */
  entries: readonly DesiredEntry[];
  /** The valid MCPServers (their spec.rateLimits). */
  servers: readonly MCPServerResource[];
  /** False under `up --no-auth`. */
  auth: boolean;
}

const DENY_ALL_UNTIL_VALID = (mode: AuthMode): AccessPolicySet => ({ ...compilePolicies([], 'oidc'), mode });

export function planAccess(inputs: AccessInputs): AccessPlan {
  const gateways = inputs.entries.filter((e) => e.key.startsWith('Gateway/'));
  const gateway = gateways.find((e) => e.resource !== undefined)?.resource as GatewayResource | undefined;
  const policies = inputs.entries.flatMap((e) => (e.resource?.kind === 'AccessPolicy' ? [e.resource] : []));
  const invalid = inputs.entries.filter((e) => e.resource === undefined);
  const spec = gateway?.manifest.spec ?? {};
  const declared = spec.auth?.mode ?? 'token';
  const mode: AuthMode = inputs.auth ? declared : 'none';
  // Under --no-auth no policy applies, so none that fails to validate holds anything.
  const hold = inputs.auth && invalid.length > 0;
  const settings: AccessSettings = {
    mode,
    ...(mode === 'oidc' && spec.auth?.oidc !== undefined ? { oidc: spec.auth.oidc } : {}),
    policies: hold ? DENY_ALL_UNTIL_VALID(mode) : inputs.auth ? compilePolicies(policies.map(policySource), mode) : compilePolicies([], 'none'),
    ...(auditOf(gateways.length > 0, gateway) ?? {}),
    ...(spec.telemetry !== undefined ? { telemetry: spec.telemetry } : {}),
    ...(spec.rateLimits !== undefined ? { rateLimits: spec.rateLimits } : {}),
    perServer: perServerLimits(inputs.servers),
  };
  const heldBy = invalid.map((e) => `${e.key.toLowerCase()} (${e.errors.map(formatManifestError).join('; ') || 'invalid'})`).join(', ');
  const statuses = [
    ...inputs.entries.filter((e) => e.resource === undefined).map((e) => invalidStatus(e)),
    ...(gateway !== undefined ? [gatewayStatus(gateway, settings, inputs.auth, policies.length, hold ? heldBy : undefined)] : []),
    ...policies.map((p) => policyStatus(p, mode, inputs.auth, hold ? heldBy : undefined)),
  ];
  const overridden = !inputs.auth && gateway !== undefined && declared !== 'none' ? `${gateway.source.file}:${gateway.source.line}` : undefined;
  return { settings, hold, statuses, ...(overridden !== undefined ? { overridden } : {}) };
}

/**
 * The log is kept when a Gateway is declared and does not turn it off. An
 * invalid Gateway keeps it too: its author meant one, and a broken file must
 * not stop the record of what is allowed meanwhile.
 */
function auditOf(declared: boolean, gateway: GatewayResource | undefined): { audit: AuditSettings } | undefined {
  if (!declared) return undefined;
  const audit = gateway?.manifest.spec?.audit;
  if (audit?.enabled === false) return undefined;
  return { audit: { maxFileBytes: audit?.maxFileBytes ?? AUDIT_DEFAULTS.maxFileBytes, maxFiles: audit?.maxFiles ?? AUDIT_DEFAULTS.maxFiles } };
}

/** Each server's spec.rateLimits (added to MCPServer by the rate-limit work; read as optional). */
function perServerLimits(servers: readonly MCPServerResource[]): Map<string, RateLimits> {
  const limits = new Map<string, RateLimits>();
  for (const server of [...servers].sort((a, b) => a.name.localeCompare(b.name))) {
    const own = (server.manifest.spec as { rateLimits?: RateLimits }).rateLimits;
    if (own !== undefined) limits.set(server.name, own);
  }
  return limits;
}

function invalidStatus(entry: DesiredEntry): PlannedStatus {
  return { key: entry.key, valid: false, ready: false, reason: 'InvalidManifest', message: entry.errors.map(formatManifestError).join('; ') || 'invalid' };
}

function gatewayStatus(gateway: GatewayResource, settings: AccessSettings, auth: boolean, policies: number, heldBy: string | undefined): PlannedStatus {
  const key = resourceKey('Gateway', gateway.name);
  if (heldBy !== undefined) return { key, valid: true, ready: false, reason: 'Held', message: `not applied while ${heldBy} does not validate; ${HELD}` };
  const declared = gateway.manifest.spec?.auth?.mode ?? 'token';
  if (!auth && declared !== 'none') return { key, valid: true, ready: true, reason: 'AuthDisabled', message: `apiary up --no-auth: auth mode none and no policies, whatever spec.auth.mode (${declared}) says` };
  if (settings.mode === 'oidc' && policies === 0) return { key, valid: true, ready: true, reason: 'NoPolicies', message: 'auth mode oidc and no AccessPolicy: every call is denied until a policy allows it' };
  return { key, valid: true, ready: true, reason: 'Applied', message: `auth mode ${settings.mode}, ${policies} AccessPolicy(s), audit ${settings.audit !== undefined ? 'on' : 'off'}` };
}

const HELD = 'what was applied before stays in force (at start: every call is denied until it validates)';

function policyStatus(policy: AccessPolicyResource, mode: AuthMode, auth: boolean, heldBy: string | undefined): PlannedStatus {
  const key = resourceKey('AccessPolicy', policy.name);
  const rules = policy.manifest.spec.rules.length;
  const unused = (reason: string, message: string): PlannedStatus => ({ key, valid: true, ready: false, reason, message, rules });
  if (heldBy !== undefined) return unused('Held', `not applied while ${heldBy} does not validate; ${HELD}`);
  if (!auth) return unused('AuthDisabled', 'not applied: apiary up --no-auth lets every caller use everything');
  if (mode === 'none') return unused('AuthModeNone', 'auth mode none: callers are anonymous and no subject matches them, so with policies everything is denied');
  if (mode === 'token' && !policy.manifest.spec.subjects.some((s) => s.token === 'local')) {
    return unused('NoCaller', 'auth mode token: the local token is the only caller and this policy does not name it (subjects: [{token: local}])');
  }
  return { key, valid: true, ready: true, reason: 'Applied', message: `${rules} rule(s) in force`, rules };
}
