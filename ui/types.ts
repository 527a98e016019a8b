/** The API's shapes, as the page reads them: the answers' types come from the server's own (src/api), types only. */
import type { ConsoleInfo as ServerConsoleInfo, ServerDetail as ServerDetailOf } from '../src/api/console.js';
import type { Condition } from '../src/api/status.js';

export type {
  Binding,
  CatalogAnswer,
  CatalogEntryAnswer,
  CatalogInstallAnswer,
  CatalogVariableView,
  CallToolAnswer,
  ClientFileAnswer,
  InstallPlanAnswer,
  KeyInfo,
  LogLines,
  SecretSummaries,
  SecretSummary,
  SecretUse,
  ToolsAnswer,
  ToolsApproveAnswer,
  ToolsDriftAnswer,
} from '../src/api/console.js';
export type { Condition, ResourceEvent } from '../src/api/status.js';
export type ServerDetail = ServerDetailOf<ApiObject>;
export type ConsoleInfo = ServerConsoleInfo<{ pid: number; startedAt: string }>;
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
  remote?: { url?: string; auth?: { type: string } };
}

export interface ApiObject {
  apiVersion: string;
  kind: 'MCPServer' | 'Secret' | 'GitRepository';
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
    /** What apiary speaks to the server: 2026-07-28, or the version a 2025 server answered initialize with. */
    protocolVersion?: string;
    keys?: string[];
    decryptable?: boolean;
    nextRetryAt?: string;
    lastTermination?: { exitCode: number | null; signal: string | null; finishedAt: string; reason?: string };
    /** Following git: the revision the object was last applied from. */
    lastAppliedRevision?: string;
    /** A GitRepository's: the revision that runs, and when it was fetched. */
    artifact?: { revision: string; lastUpdateTime: string };
    fetchedAt?: string;
  };
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';
  object: ApiObject;
}

export type {
  AccessAnswer,
  AccessCell,
  AccessPoliciesAnswer,
  AuditAnswer,
  AuditVerifySummary,
  GatewayAnswer,
  ItemAccess,
  PolicyRuleView,
  PolicyView,
  ServerAccess,
  SubjectRow,
} from '../src/api/console-access.js';
export type { AccessSubject } from '../src/api/manifests.js';
export type { StoredAuditRecord, AuditSubject } from '../src/api/audit.js';
