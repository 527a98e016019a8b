/** The API's shapes, as the page reads them (the server's are in src/state/view.ts and src/api/status.ts). */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
}

export interface ServerSpec {
  command: string;
  args?: string[];
  transport?: string;
  port?: number;
  env?: EnvVar[];
  envFrom?: { secretRef: { name: string; optional?: boolean }; prefix?: string }[];
  suspend?: boolean;
}

export interface ApiObject {
  apiVersion: string;
  kind: 'MCPServer' | 'Secret';
  metadata: { name: string; generation?: number; creationTimestamp?: string; labels?: Record<string, string> };
  spec?: unknown;
  status?: {
    phase?: string;
    conditions?: Condition[];
    restartCount?: number;
    url?: string;
    message?: string;
    startedAt?: string;
    pid?: number;
    tools?: number;
    keys?: string[];
    decryptable?: boolean;
    nextRetryAt?: string;
    lastTermination?: { exitCode: number | null; signal: string | null; finishedAt: string; reason?: string };
  };
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';
  object: ApiObject;
}

export interface ResourceEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
}

export interface Binding {
  variable?: string;
  secret: string;
  key?: string;
  optional: boolean;
  from: 'env' | 'envFrom';
  state: 'ok' | 'SecretNotFound' | 'SecretKeyNotFound' | 'SecretDecryptFailed';
  message?: string;
}

export interface ServerDetail {
  object: ApiObject;
  declaredAt?: string;
  errors: string[];
  warnings: string[];
  events: ResourceEvent[];
  bindings: Binding[];
  tools?: { name: string; description?: string }[];
  mcp?: { state: string; serverInfo?: { name: string; version: string }; protocolVersion?: string; sessions: number };
  manifest?: { file: string; text: string };
  clients?: Record<string, unknown>;
}

export interface SecretUse {
  server: string;
  variable?: string;
  key?: string;
  optional?: boolean;
}

export interface SecretSummary {
  name: string;
  keys: string[];
  form: string;
  usedBy: string[];
  uses: SecretUse[];
  decrypts: 'yes' | 'no' | 'n/a';
  errors: string[];
  file: string;
}

export interface KeyInfo {
  state: 'ok' | 'absent' | 'unavailable';
  backend: 'keyring' | 'file';
  where: string;
  id?: string;
  code?: string;
  message?: string;
  hints?: string[];
}

export interface ConsoleInfo {
  version: string;
  dir: string;
  stateDir: string;
  controller?: { pid: number; startedAt: string };
  key: KeyInfo;
}
