// The public API of apiary, by name. Everything else is internal.
export { ApiaryError, isApiaryError, type ErrorCode } from './errors.js';
export {
  API_GROUP_VERSION,
  isDns1123Label,
  kindFromAlias,
  resourceKey,
  type Kind,
  type ResourceKey,
} from './api/names.js';
export {
  MCPServerManifest,
  MCPServerSpec,
  ApiarySecretManifest,
  KubernetesSecretManifest,
  type EnvVar,
  type EnvFromSource,
  type SecretManifest,
  type Transport,
  type RestartPolicy,
} from './api/manifests.js';
export type {
  Condition,
  ConditionStatus,
  MCPServerPhase,
  MCPServerStatus,
  SecretStatus,
  ResourceEvent,
  LastTermination,
} from './api/status.js';
export { manifestJsonSchema } from './api/jsonschema.js';
export { loadDirectory, loadFile, type LoadResult } from './manifests/loader.js';
export { formatManifestError, type ManifestError } from './manifests/errors.js';
export type { Resource, MCPServerResource, SecretResource, GatewayResource, AccessPolicyResource, SourceRef } from './manifests/resource.js';
export { GatewayManifest, AccessPolicyManifest, type GatewaySpec, type AccessRule, type AccessSubject, type AuthMode } from './api/manifests.js';
export { compilePolicies, type AccessPolicySet, type AccessRequest, type AccessKind, type Decision, type PolicySource, type RuleRef, type Subject } from './api/access.js';
export { accessPolicySet } from './manifests/access.js';
export { Controller, type ControllerOptions } from './controller/controller.js';
export { createLogger, type Logger, type LogRecord } from './util/logger.js';
export { systemClock, FakeClock, type Clock } from './util/clock.js';
export type { Runtime, LaunchSpec, ObservedProcess, Termination } from './runtime/runtime.js';
export { ProcessRuntime } from './runtime/process-runtime.js';
export { KeyStore, createKeyFile } from './crypto/keys.js';
export { MasterKey, seal, unseal } from './crypto/seal.js';
export { SecretValue } from './crypto/secret-value.js';
export { readStateView, isCurrent, type StateView, type ObjectView, type ApiObject, type WantedSecret } from './state/view.js';
export { resolveLocations, type Locations } from './state/paths.js';
export { Bridge } from './mcp/bridge.js';
export { HttpEndpoint } from './mcp/http-endpoint.js';
export { recordOf, subjectLabel, type AuditRecord, type StoredAuditRecord, type AuditSink, type AuditSubject, type AuditFacts, type AuditOutcome, type AuditDecision, type AuditArgument } from './api/audit.js';
export { AuditLog, type AuditLogOptions } from './state/audit-log.js';
export { verifyAudit, readAuditRecords, followAudit } from './state/audit-read.js';
export type { VerifyResult as AuditVerifyResult } from './state/audit-chain.js';
