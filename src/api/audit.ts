/**
 * One audit record: who called what through apiary, what was decided and how
 * it ended (issue 26, item 4). Argument NAMES and SIZES are kept, never a
 * value: `recordOf` is the one way a record is built from a JSON-RPC request,
 * and it copies named fields only, so a value cannot slip in by a spread.
 * Pure: imports nothing of the project (the writer is src/state/audit-log.ts).
 */

/**
 * Who called: the local bearer token (the console's own writes too), a
 * person (from an OIDC token, or the user running the CLI), nobody (auth
 * off), a caller that failed to authenticate, or apiary itself (what the
 * controller saw happen, such as a server's tools drifting).
 */
export interface AuditSubject {
  kind: 'token' | 'user' | 'none' | 'unauthenticated' | 'apiary';
  /** The token's username claim, for kind `user`. */
  user?: string;
  groups?: string[];
}

export type AuditDecision = 'allow' | 'deny';

/** How the call ended, as the caller saw it. */
export type AuditOutcome = 'ok' | 'error' | 'tool_error' | 'denied' | 'rate_limited' | 'unauthenticated';

/** One argument: its name, the JSON type of its value and the byte length of the value's JSON. */
export interface AuditArgument {
  name: string;
  type: 'string' | 'number' | 'boolean' | 'null' | 'object' | 'array';
  bytes: number;
}

export interface AuditRecord {
  /** ISO 8601, when the request arrived. */
  time: string;
  subject: AuditSubject;
  /** The client's `clientInfo` name and version, when it sent one. */
  client?: string;
  /** The server's name; `*` for the aggregate endpoint before a call is routed. */
  server: string;
  method: string;
  /** The tool or prompt name, or the resource URI without its query and fragment. */
  name?: string;
  decision: AuditDecision;
  /** The rule that decided, e.g. `devs (policies.yaml:12)`. */
  rule?: string;
  durationMs: number;
  outcome: AuditOutcome;
  /** The JSON-RPC error code, when the outcome is an error. */
  code?: number;
  requestId?: string | number;
  args?: AuditArgument[];
  /** How many arguments were left out past the limit (a hostile client could send thousands of names). */
  argsOmitted?: number;
}

/** A record as stored: its place in the chain, and the keyed MAC that chains it to the one before. */
export interface StoredAuditRecord extends AuditRecord {
  seq: number;
  mac: string;
}

/**
 * Where the gateway sends records (the seam it will be given; the state
 * directory's AuditLog implements it). `append` never waits and never throws
 * for the disk: an audited call is never slowed or failed by its record.
 */
export interface AuditSink {
  append(record: AuditRecord): void;
}

/** What the caller knows besides the request: who, where, and how it ended. */
export interface AuditFacts {
  time: string;
  subject: AuditSubject;
  client?: string | undefined;
  server: string;
  decision: AuditDecision;
  rule?: string | undefined;
  durationMs: number;
  outcome: AuditOutcome;
  code?: number | undefined;
}

/** The JSON-RPC request as it came, with params unparsed by any schema. */
export interface AuditedRequest {
  method: string;
  params?: unknown;
  id?: string | number | null;
}

/** Bounds on what a caller controls, so one record stays well under 64 KiB whatever is sent. */
export const AUDIT_LIMITS = { nameChars: 256, args: 64, argNameChars: 128, requestIdChars: 128, clientChars: 128, groups: 64 } as const;

/** The methods that carry a name worth recording, and where it is. */
const NAME_PARAM: Record<string, 'name' | 'uri'> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri', 'resources/subscribe': 'uri', 'resources/unsubscribe': 'uri' };

/**
 * The record of one request. Only these are read from the request: the
 * method, the tool/prompt name or resource URI, the id, and for each
 * top-level argument its name, type and size. Nested values are measured as
 * a whole and never looked into.
 */
export function recordOf(request: AuditedRequest, facts: AuditFacts): AuditRecord {
  const params = isObject(request.params) ? request.params : {};
  const record: AuditRecord = {
    time: facts.time,
    subject: subjectOf(facts.subject),
    server: facts.server,
    method: cut(request.method, AUDIT_LIMITS.nameChars),
    decision: facts.decision,
    durationMs: Math.round(facts.durationMs * 1000) / 1000,
    outcome: facts.outcome,
  };
  if (facts.client !== undefined) record.client = cut(facts.client, AUDIT_LIMITS.clientChars);
  const name = nameOf(request.method, params);
  if (name !== undefined) record.name = name;
  if (facts.rule !== undefined) record.rule = facts.rule;
  if (facts.code !== undefined) record.code = facts.code;
  if (typeof request.id === 'number' && Number.isFinite(request.id)) record.requestId = request.id;
  else if (typeof request.id === 'string') record.requestId = cut(request.id, AUDIT_LIMITS.requestIdChars);
  const args = argumentsOf(params['arguments']);
  if (args !== undefined) {
    record.args = args.kept;
    if (args.omitted > 0) record.argsOmitted = args.omitted;
  }
  return record;
}

/** A fresh subject with only the known fields: a subject object with more in it (a token's claims) never reaches the log. */
function subjectOf(subject: AuditSubject): AuditSubject {
  const out: AuditSubject = { kind: subject.kind };
  if (typeof subject.user === 'string') out.user = cut(subject.user, AUDIT_LIMITS.nameChars);
  if (Array.isArray(subject.groups)) {
    out.groups = subject.groups
      .filter((g) => typeof g === 'string')
      .slice(0, AUDIT_LIMITS.groups)
      .map((g) => cut(g, AUDIT_LIMITS.nameChars));
  }
  return out;
}

function nameOf(method: string, params: Record<string, unknown>): string | undefined {
  const field = NAME_PARAM[method];
  const value = field === undefined ? undefined : params[field];
  if (typeof value !== 'string') return undefined;
  // A URI's query and fragment carry values (a token in `?key=`), like arguments do: only the path names the resource.
  return cut(field === 'uri' ? value.replace(/[?#].*$/s, '') : value, AUDIT_LIMITS.nameChars);
}

function argumentsOf(args: unknown): { kept: AuditArgument[]; omitted: number } | undefined {
  if (!isObject(args)) return undefined;
  const names = Object.keys(args);
  const kept = names.slice(0, AUDIT_LIMITS.args).map((name) => ({ name: cut(name, AUDIT_LIMITS.argNameChars), type: typeOf(args[name]), bytes: sizeOf(args[name]) }));
  return { kept, omitted: names.length - kept.length };
}

function typeOf(value: unknown): AuditArgument['type'] {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  const type = typeof value;
  return type === 'string' || type === 'number' || type === 'boolean' || type === 'object' ? type : 'null';
}

/** The UTF-8 length of the value's JSON: what the caller sent, measured, never kept. */
function sizeOf(value: unknown): number {
  const json = JSON.stringify(value) as string | undefined;
  return json === undefined ? 0 : Buffer.byteLength(json);
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}...`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** How a subject reads in one word: the user, or the kind in brackets. */
export function subjectLabel(subject: AuditSubject): string {
  return subject.kind === 'user' && subject.user !== undefined ? subject.user : `(${subject.kind})`;
}

/** The method of the record of a server's tools drifting from tools.lock.yaml (not a JSON-RPC method: apiary's own). */
export const TOOLS_DRIFT_METHOD = 'tools/drift';
/** The method of the record of an approval (`apiary tools approve`, or Approve in the console). */
export const TOOLS_APPROVE_METHOD = 'tools/approve';

/** The tools a record names, in one field: a server may change thousands, and a record stays small. */
function toolNames(tools: readonly string[]): string {
  return cut(tools.join(', '), AUDIT_LIMITS.nameChars);
}

/**
 * A server's tools drifted: subject apiary, the tools named, and what was
 * done about it: withheld (deny, denied) or listed anyway under onDrift
 * Warn (allow, ok).
 */
export function toolsDriftRecord(facts: { time: string; server: string; tools: readonly string[]; withheld: boolean }): AuditRecord {
  return {
    time: facts.time,
    subject: { kind: 'apiary' },
    server: facts.server,
    method: TOOLS_DRIFT_METHOD,
    name: toolNames(facts.tools),
    decision: facts.withheld ? 'deny' : 'allow',
    rule: facts.withheld ? 'tools.lock.yaml' : 'tools.lock.yaml (onDrift: Warn)',
    durationMs: 0,
    outcome: facts.withheld ? 'denied' : 'ok',
  };
}

/** Someone approved what a server lists into tools.lock.yaml: who, and which tools. */
export function toolsApprovalRecord(facts: { time: string; server: string; tools: readonly string[]; subject: AuditSubject }): AuditRecord {
  return {
    time: facts.time,
    subject: subjectOf(facts.subject),
    server: facts.server,
    method: TOOLS_APPROVE_METHOD,
    name: toolNames(facts.tools),
    decision: 'allow',
    rule: 'tools.lock.yaml',
    durationMs: 0,
    outcome: 'ok',
  };
}
