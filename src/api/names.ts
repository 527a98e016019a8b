export const API_GROUP_VERSION = 'apiary.dev/v1alpha1';

export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS1123_MAX = 63;

export function isDns1123Label(name: string): boolean {
  return name.length <= DNS1123_MAX && DNS1123_LABEL.test(name);
}

/** A label or annotation key: `[prefix/]name`, the prefix a DNS subdomain (e.g. `apiary.dev/team`). */
export const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
/** A label value: empty, or a name of up to 63 characters. */
export const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

export function isLabelKey(key: string): boolean {
  return LABEL_KEY.test(key) && key.lastIndexOf('/') <= 253;
}

export function isLabelValue(value: string): boolean {
  return LABEL_VALUE.test(value);
}

export const LABEL_KEY_RULE = 'must be a label key: [prefix/]name, the name up to 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit';
export const LABEL_VALUE_RULE = 'must be a label value: empty, or up to 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit';

/** Kubernetes' rule for Secret data keys. */
export const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

export type Kind = 'MCPServer' | 'Secret' | 'GitRepository' | 'Gateway' | 'AccessPolicy';
export const KINDS: readonly Kind[] = ['MCPServer', 'Secret', 'GitRepository', 'Gateway', 'AccessPolicy'];

/** A resource's identity: `kind/name`, the key the work queue carries. */
export type ResourceKey = `${Kind}/${string}`;

export function resourceKey(kind: Kind, name: string): ResourceKey {
  return `${kind}/${name}`;
}

export function parseResourceKey(key: ResourceKey): { kind: Kind; name: string } {
  const slash = key.indexOf('/');
  return { kind: key.slice(0, slash) as Kind, name: key.slice(slash + 1) };
}

const KIND_ALIASES: Record<string, Kind> = {
  mcpserver: 'MCPServer',
  mcpservers: 'MCPServer',
  mcp: 'MCPServer',
  secret: 'Secret',
  secrets: 'Secret',
  gitrepository: 'GitRepository',
  gitrepositories: 'GitRepository',
  gitrepo: 'GitRepository',
  source: 'GitRepository',
  sources: 'GitRepository',
  gateway: 'Gateway',
  gateways: 'Gateway',
  gw: 'Gateway',
  accesspolicy: 'AccessPolicy',
  accesspolicies: 'AccessPolicy',
  policy: 'AccessPolicy',
  policies: 'AccessPolicy',
};

/** `mcp`, `MCPServers`, `secret`... -> the canonical kind, or undefined. */
export function kindFromAlias(text: string): Kind | undefined {
  return KIND_ALIASES[text.toLowerCase()];
}

export function kindLower(kind: Kind): string {
  return kind.toLowerCase();
}
