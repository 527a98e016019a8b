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
    // One pass, one array (this runs for every audited call).
    const groups: string[] = [];
    for (const g of subject.groups as unknown[]) {
      if (groups.length === AUDIT_LIMITS.groups) break;
      if (typeof g === 'string') groups.push(cut(g, AUDIT_LIMITS.nameChars));
    }
    out.groups = groups;
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
  const kept: AuditArgument[] = [];
  for (let i = 0; i < names.length && i < AUDIT_LIMITS.args; i++) {
    const value = args[names[i]!];
    kept.push({ name: cut(names[i]!, AUDIT_LIMITS.argNameChars), type: typeOf(value), bytes: sizeOf(value) });
  }
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
  // The common arguments without writing their JSON: plain text is its length and two quotes, a number its digits.
  if (typeof value === 'string' && PLAIN.test(value)) return value.length + 2;
  if (typeof value === 'number' || typeof value === 'boolean') return num(value as number).length;
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

let isoSecond = Number.NaN;
let isoPrefix = '';

/**
 * `new Date(ms).toISOString()`, made once a second: an audited call needs its arrival's time, and the full conversion
 * (0.35 µs) was a tenth of what a record cost. Only the milliseconds change within a second.
 */
export function auditTime(ms: number): string {
  // Before 1970, past 9999 or not a number: the rare case, as Date writes it.
  if (!(ms >= 0 && ms < 253402300800000)) return new Date(ms).toISOString();
  const whole = Math.floor(ms);
  const second = Math.floor(whole / 1000);
  if (second !== isoSecond) {
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20);
    isoSecond = second;
  }
  const milli = whole - second * 1000;
  return `${isoPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

/**
 * A record's JSON, written field by field in recordOf's order: what `JSON.stringify` gives for a record of recordOf, in
 * less CPU (the string of every audited call). Only the fields of AuditRecord are written, so nothing put on a record
 * besides them reaches the log; an optional field that is undefined is left out, as JSON.stringify leaves it out.
 * `lead`: fields written before the record's (the chain's `"seq":12,`), so the JSON is not cut and joined again.
 */
export function auditRecordJson(r: AuditRecord, lead = ''): string {
  let s = `{${lead}"time":${str(r.time)},"subject":${subjectJson(r.subject)},"server":${str(r.server)},"method":${str(r.method)},"decision":${str(r.decision)},"durationMs":${num(r.durationMs)},"outcome":${str(r.outcome)}`;
  if (r.client !== undefined) s += `,"client":${str(r.client)}`;
  if (r.name !== undefined) s += `,"name":${str(r.name)}`;
  if (r.rule !== undefined) s += `,"rule":${str(r.rule)}`;
  if (r.code !== undefined) s += `,"code":${num(r.code)}`;
  if (r.requestId !== undefined) s += `,"requestId":${typeof r.requestId === 'string' ? str(r.requestId) : num(r.requestId)}`;
  if (r.args !== undefined) s += `,"args":${argsJson(r.args)}`;
  if (r.argsOmitted !== undefined) s += `,"argsOmitted":${num(r.argsOmitted)}`;
  return `${s}}`;
}

function subjectJson(subject: AuditSubject): string {
  let s = `{"kind":${str(subject.kind)}`;
  if (subject.user !== undefined) s += `,"user":${str(subject.user)}`;
  if (subject.groups !== undefined) {
    s += ',"groups":[';
    for (let i = 0; i < subject.groups.length; i++) s += i === 0 ? str(subject.groups[i]!) : `,${str(subject.groups[i]!)}`;
    s += ']';
  }
  return `${s}}`;
}

function argsJson(args: readonly AuditArgument[]): string {
  let s = '[';
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    s += `${i === 0 ? '' : ','}{"name":${str(a.name)},"type":${str(a.type)},"bytes":${num(a.bytes)}}`;
  }
  return `${s}]`;
}

/** Printable ASCII without `"` and `\`: the text is its own JSON between quotes (almost every name, rule and time). */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** A string's JSON; `null` for what is not one at run time (JSON.stringify's text, or null, so the line stays JSON). */
function str(text: string): string {
  if (typeof text === 'string' && PLAIN.test(text)) return `"${text}"`;
  return (JSON.stringify(text) as string | undefined) ?? 'null';
}

/** A number's JSON: its text, null for NaN and the infinities (as JSON.stringify writes them, which costs more). */
function num(value: number): string {
  if (typeof value === 'number') return Number.isFinite(value) ? `${value}` : 'null';
  return (JSON.stringify(value) as string | undefined) ?? 'null';
}
