/**
 * The directory's access settings as the evaluator takes them: its Gateway's
 * auth mode and its AccessPolicies, each rule with the file and line it is
 * written at. One function, so `apiary policy check` and the gateway compile
 * the same set from the same resources.
 */
import { compilePolicies, type AccessPolicySet, type PolicySource } from '../api/access.js';
import type { AuthMode } from '../api/manifests.js';
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
 * is. Each is allowed nothing unless a policy names it.
 */
export function accessWarnings(resources: readonly Resource[]): ManifestError[] {
  const policies = resources.filter((r): r is AccessPolicyResource => r.kind === 'AccessPolicy');
  const first = policies[0];
  if (first === undefined) return [];
  const mode = authModeOf(resources);
  const at = { file: first.source.file, line: first.source.line, col: first.source.col };
  if (mode === 'none') return [{ ...at, message: `AccessPolicy in a directory whose Gateway has auth mode none: callers are anonymous, no subject matches them, so everything is denied; use mode oidc, or remove the policies` }];
  const namesToken = policies.some((p) => p.manifest.spec.subjects.some((s) => s.token === 'local'));
  if (mode === 'token' && !namesToken) return [{ ...at, message: `AccessPolicy in auth mode ${resources.some((r) => r.kind === 'Gateway') ? 'token' : 'token (no Gateway)'}: the bearer token is the only caller and no policy names it (subjects: [{token: local}]), so it may use nothing` }];
  return [];
}
