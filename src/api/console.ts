/**
 * The shapes of the console API's own answers (beyond the objects `get -o
 * json` prints): written by src/console, read by the page in ui/. Types only,
 * nothing that needs Node, so the page's build can import them too.
 */
import type { ResourceEvent } from './status.js';
import type { DriftedTool } from './tool-lock.js';

/** A reference to a secret from a server's environment. */
export interface SecretUse {
  server: string;
  /** The variable it fills; for envFrom, the prefix (if any). */
  variable?: string;
  /** Undefined for envFrom (every key). */
  key?: string;
  optional: boolean;
}

/** A secret as `secret list -o json` and the Secrets page show it. Never values. */
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

export interface SecretSummaries {
  items: SecretSummary[];
  /** Secrets servers ask for that nobody declares. */
  missing: { name: string; uses: Omit<SecretUse, 'optional'>[] }[];
}

export type BindingState = 'ok' | 'SecretNotFound' | 'SecretKeyNotFound' | 'SecretDecryptFailed';

/** One secret a server's environment is bound to, and whether it is there and opens here. */
export interface Binding {
  variable?: string;
  secret: string;
  key?: string;
  optional: boolean;
  from: 'env' | 'envFrom';
  state: BindingState;
  message?: string;
}

export interface ServerDetail<O = unknown> {
  object: O;
  declaredAt?: string;
  errors: string[];
  warnings: string[];
  stale: boolean;
  events: ResourceEvent[];
  bindings: Binding[];
  mcp?: { state: string; serverInfo?: { name: string; version: string }; protocolVersion?: string; sessions: number };
  /** Every tool the server listed; `filtered` marks those spec.tools keeps from clients. */
  tools?: { name: string; description?: string; filtered?: boolean }[];
  /** Set when `tools` are the last ones the server listed, from before it stopped (it has none running now). */
  toolsLastKnownAt?: string;
  manifest?: { file: string; text: string };
  clients?: Record<string, unknown>;
  ready: boolean;
}

export interface KeyInfo {
  state: 'ok' | 'absent' | 'unavailable';
  backend: 'keyring' | 'file';
  where: string;
  id?: string;
  code?: string;
  message?: string;
  hints?: readonly string[];
}

export interface ConsoleInfo<C = unknown> {
  version: string;
  dir: string;
  stateDir: string;
  controller?: C;
  key: KeyInfo;
}

export interface LogLines {
  name: string;
  previous: boolean;
  lines: string[];
  message?: string;
}

export interface InstallPlanAnswer {
  yaml: string;
  command: string;
  newSecrets: { variable: string; secret: string; key: string }[];
}

/** A catalog entry as the Catalog page lists it (the newest version of each). */
export interface CatalogItem {
  name: string;
  title?: string;
  version: string;
  description: string;
  /** registryType/transport, or remote/transport. */
  transport: string;
  /** "bundled", a file, or a registry URL. */
  source: string;
}

export interface CatalogAnswer {
  items: CatalogItem[];
  problems: { where: string; field: string; message: string }[];
  /** Entries left out for taking the name of a bundled one (the bundled one is listed). */
  warnings: string[];
}

/** One thing an install asks for (an environment variable or an argument). */
export interface CatalogVariableView {
  name: string;
  kind: 'env' | 'argument';
  description?: string;
  required: boolean;
  secret: boolean;
  default?: string;
  choices?: string[];
  format?: string;
  fixed?: string;
}

export interface CatalogEntryAnswer<S = unknown> {
  /** The entry's server.json. */
  server: S;
  source: string;
  defaultName: string;
  /** true, or why apiary cannot install it. */
  installable: true | string;
  /** The command apiary would run. */
  runs?: string;
  variables: CatalogVariableView[];
}

export interface CatalogInstallAnswer extends InstallPlanAnswer {
  /** Required variables without a value (only with allowMissing). */
  missing: string[];
}

export interface ClientFileAnswer {
  file: string;
  dryRun: boolean;
  added: string[];
  updated: string[];
  removed: string[];
  skipped: string[];
  changed: boolean;
}

/** GET /api/v1/mcpservers/{name}/tools: the tools a client at the server's endpoint is offered. */
export interface ToolsAnswer {
  tools: { name: string; title?: string; description?: string; inputSchema: Record<string, unknown> }[];
}

/** POST /api/v1/mcpservers/{name}/call: the server's answer to one tools/call, or its JSON-RPC error. */
export interface CallToolAnswer {
  tool: string;
  /** From the console's request to the endpoint to its answer. */
  ms: number;
  result?: { content: unknown[]; structuredContent?: unknown; isError: boolean };
  error?: { code: number; message: string };
}

/** GET /api/v1/mcpservers/{name}/tools-drift: what `apiary tools diff NAME` shows, tool by tool. */
export interface ToolsDriftAnswer {
  server: string;
  /** Whether tools.lock.yaml has an entry for the server (without one, nothing is judged). */
  pinned: boolean;
  /** One line: which tools differ and how, or that they match. */
  summary: string;
  tools: DriftedTool[];
  /** Why Approve is not offered here (the directory follows git: the lock is changed by a commit). */
  approveRefused?: string;
}

/** POST /api/v1/mcpservers/{name}/tools-approve: what `apiary tools approve NAME [TOOL]` did. */
export interface ToolsApproveAnswer {
  server: string;
  tool?: string;
  /** tools.lock.yaml's path. */
  file: string;
  /** False when the lock already said so. */
  written: boolean;
  /** The file replaced, kept (a person may have edited it by hand). */
  backup?: string;
  /** Whether anything still differs after the approval (another tool not approved yet). */
  drifted: boolean;
  /** What still differs, or that the tools match. */
  summary: string;
}
