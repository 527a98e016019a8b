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
export type { Resource, MCPServerResource, SecretResource, SourceRef } from './manifests/resource.js';
