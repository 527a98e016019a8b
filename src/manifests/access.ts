/**
 * The directory's access settings as the evaluator takes them: its Gateway's
 * auth mode and its AccessPolicies, each rule with the file and line it is
 * written at. One function, so `apiary policy check` and the gateway compile
 * the same set from the same resources.
 */
import { compilePolicies, type AccessPolicySet, type PolicySource } from '../api/access.js';
import type { AuthMode, GatewaySpec } from '../api/manifests.js';
import { redactUrl } from '../util/redact-url.js';
import type { ManifestError } from './errors.js';
import type { AccessPolicyResource, GatewayResource, Resource } from './resource.js';

export function policySource(policy: AccessPolicyResource): PolicySource {
  const spec = policy.manifest.spec;
  return { name: policy.name, file: policy.source.file, subjects: spec.subjects, rules: spec.rules, ruleLines: policy.ruleLines };
}

/** The Gateway's auth mode; token (as without a Gateway) when there is none. */
export function authModeOf(resources: readonly Resource[]): AuthMode {
  const gateway = resources.find((r): r is GatewayResource => r.kind === 'Gateway');
  return gateway?.manifest.spec?.auth?.mode ?? 'token';
}

export function accessPolicySet(resources: readonly Resource[]): AccessPolicySet {
  const policies = resources.filter((r): r is AccessPolicyResource => r.kind === 'AccessPolicy').map(policySource);
  return compilePolicies(policies, authModeOf(resources));
}

/**
 * Policies that would shut out a caller nobody meant to shut out, said where
 * the policies are written (validate prints them): under mode none no caller
 * is anyone, and under mode token the bearer token is the only caller there
 * is. Each is allowed nothing unless a policy names it. Also: mode oidc
 * with no policy at all (everything denied), and a rule naming a server
 * nobody declares (a typo, most often).
 */
export function accessWarnings(resources: readonly Resource[]): ManifestError[] {
  const policies = resources.filter((r): r is AccessPolicyResource => r.kind === 'AccessPolicy');
  const first = policies[0];
  const gateway = resources.find((r): r is GatewayResource => r.kind === 'Gateway');
  if (first === undefined && gateway?.manifest.spec?.auth?.mode === 'oidc') {
    return [{ file: gateway.source.file, line: gateway.source.line, col: gateway.source.col, message: 'Gateway in auth mode oidc and no AccessPolicy: every call is denied until a policy allows it' }];
  }
  if (first === undefined) return [];
  return [...modeWarnings(resources, policies, first), ...unknownServers(resources, policies)];
}

function modeWarnings(resources: readonly Resource[], policies: readonly AccessPolicyResource[], first: AccessPolicyResource): ManifestError[] {
  const mode = authModeOf(resources);
  const at = { file: first.source.file, line: first.source.line, col: first.source.col };
  if (mode === 'none') return [{ ...at, message: `AccessPolicy in a directory whose Gateway has auth mode none: callers are anonymous, no subject matches them, so everything is denied; use mode oidc, or remove the policies` }];
  const namesToken = policies.some((p) => p.manifest.spec.subjects.some((s) => s.token === 'local'));
  if (mode === 'token' && !namesToken) return [{ ...at, message: `AccessPolicy in auth mode ${resources.some((r) => r.kind === 'Gateway') ? 'token' : 'token (no Gateway)'}: the bearer token is the only caller and no policy names it (subjects: [{token: local}]), so it may use nothing` }];
  return [];
}

/**
 * A rule that names a server (not a glob) no MCPServer of the directory
 * declares, when it declares any: most often a typo, which would allow or
 * deny nothing. Said at the rule's line.
 */
function unknownServers(resources: readonly Resource[], policies: readonly AccessPolicyResource[]): ManifestError[] {
  const servers = new Set(resources.flatMap((r) => (r.kind === 'MCPServer' ? [r.name] : [])));
  // Policies read without any server (one file validated alone, a policies-only folder) have nothing to compare with.
  if (servers.size === 0) return [];
  const out: ManifestError[] = [];
  for (const policy of policies) {
    policy.manifest.spec.rules.forEach((rule, i) => {
      for (const name of rule.servers) {
        if (/[*?]/.test(name) || servers.has(name)) continue;
        out.push({ file: policy.source.file, line: policy.ruleLines[i] ?? policy.source.line, col: 1, message: `AccessPolicy "${policy.name}" rule ${i} names server "${name}", which no MCPServer in the directory declares: the rule ${rule.effect === 'Allow' ? 'allows' : 'denies'} nothing there` });
      }
    });
  }
  return out;
}

/**
 * A Gateway's spec as it may be shown (get, describe, the console): credentials someone wrote into the issuer, JWKS or
 * OTLP URL (https://user:token@host) as `***`: a reader of `get -o json` or of the console is not necessarily a reader of
 * the manifest.
 */
export function shownGatewaySpec(spec: GatewaySpec): GatewaySpec {
  const oidc = spec.auth?.oidc;
  const otlp = spec.telemetry?.otlp;
  return {
    ...spec,
    ...(spec.auth !== undefined ? { auth: { ...spec.auth, ...(oidc !== undefined ? { oidc: { ...oidc, issuer: redactUrl(oidc.issuer), ...(oidc.jwksURL !== undefined ? { jwksURL: redactUrl(oidc.jwksURL) } : {}) } } : {}) } } : {}),
    ...(spec.telemetry !== undefined ? { telemetry: { ...spec.telemetry, ...(otlp !== undefined ? { otlp: { ...otlp, endpoint: redactUrl(otlp.endpoint) } } : {}) } } : {}),
  };
}

/** The Gateway's URL fields, by path, for the warning that credentials written in one are readable by anyone who reads the file. */
export function gatewayUrlFields(spec: GatewaySpec | undefined): { path: string[]; url: string }[] {
  const out: { path: string[]; url: string }[] = [];
  const oidc = spec?.auth?.oidc;
  if (oidc !== undefined) out.push({ path: ['spec', 'auth', 'oidc', 'issuer'], url: oidc.issuer });
  if (oidc?.jwksURL !== undefined) out.push({ path: ['spec', 'auth', 'oidc', 'jwksURL'], url: oidc.jwksURL });
  const otlp = spec?.telemetry?.otlp;
  if (otlp !== undefined) out.push({ path: ['spec', 'telemetry', 'otlp', 'endpoint'], url: otlp.endpoint });
  return out;
}
