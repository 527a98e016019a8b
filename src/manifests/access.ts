/**
 * The directory's access settings as the evaluator takes them: its Gateway's
 * auth mode and its AccessPolicies, each rule with the file and line it is
 * written at. One function, so `apiary policy check` and the gateway compile
 * the same set from the same resources.
 */
import { compilePolicies, type AccessPolicySet, type PolicySource } from '../api/access.js';
import type { AuthMode } from '../api/manifests.js';
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
