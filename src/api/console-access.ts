/**
 * The console API's answers about who may call what, and what was called
 * (issue 26): the Gateway, the AccessPolicies, the effective access of a
 * caller, and the audit log. Written by src/console, read by the page in
 * ui/. Types only. None of them carries a token or a secret value: the
 * Gateway's settings are not secrets (an issuer, an audience, claims), the
 * audit records hold argument names and sizes, never values.
 */
import type { AccessKind, Effect, Subject } from './access.js';
import type { StoredAuditRecord } from './audit.js';
import type { AccessRule, AccessSubject, AuthMode } from './manifests.js';

/** `GET /api/v1/gateway`. */
export interface GatewayAnswer {
  /** False: no Gateway is written, and apiary asks for its bearer token, as always. */
  present: boolean;
  /** The auth mode in force (token without a Gateway). */
  mode: AuthMode;
  /** Where it is declared, relative to the manifest directory, and its line. */
  file?: string;
  line?: number;
  /** spec as written (URL credentials, if someone wrote them, shown as ***). */
  spec?: unknown;
  /** The OpenID provider (mode oidc): public settings, never a token. */
  provider?: { issuer: string; audience: string; usernameClaim: string; groupsClaim: string; jwksURL?: string; requiredScopes?: string[] };
  /** The controller's status for it, when it wrote one. */
  status?: unknown;
  errors: string[];
  /** Settings that would shut out a caller nobody meant to (as validate prints them). */
  warnings: string[];
  /** What to do, when there is nothing to show. */
  message?: string;
}

export interface PolicyRuleView extends AccessRule {
  /** `file:line` of the rule. */
  at: string;
  line: number;
}

export interface PolicyView {
  name: string;
  file: string;
  line: number;
  subjects: AccessSubject[];
  rules: PolicyRuleView[];
  /** Set when the manifest is invalid: its rules are not shown, and no decision is made until it is fixed. */
  errors: string[];
}

/** `GET /api/v1/accesspolicies`. */
export interface AccessPoliciesAnswer {
  mode: AuthMode;
  items: PolicyView[];
  warnings: string[];
}

/** What one caller may do with one tool (prompt, resource) of a server, and why. */
export interface ItemAccess {
  kind: AccessKind;
  name: string;
  effect: Effect;
  reason: 'rule' | 'default-deny' | 'no-policies';
  /** The rule, as a denial names it: `devs (policies.yaml:12)`. */
  rule?: string;
  /** Kept from every client by spec.tools, whatever the policies say. */
  hiddenBySpec?: boolean;
}

export interface ServerAccess {
  server: string;
  /** False: the server has not listed its tools since the controller started, so none can be shown. */
  toolsKnown: boolean;
  /** Set when the tools are the last the server listed, from before it stopped. */
  toolsLastKnownAt?: string;
  items: ItemAccess[];
  allowed: number;
  denied: number;
}

/** A caller the policies name, as a row of the matrix and a query for the effective view. */
export interface SubjectRow {
  label: string;
  /** The query string that asks the effective view for this caller: `user=alice`, `group=dev`, `token=local`. */
  query: string;
}

export interface AccessCell {
  known: boolean;
  allowed: number;
  denied: number;
}

/** `GET /api/v1/access?user=U&group=G&token=local`. */
export interface AccessAnswer {
  mode: AuthMode;
  subject: Subject;
  /** The caller in words. */
  label: string;
  /** What makes the answer easy to misread (a user while the mode has no users). */
  notes: string[];
  servers: ServerAccess[];
  /** Subjects the policies name × declared servers: how many known tools each may use. */
  matrix: { subjects: SubjectRow[]; servers: string[]; cells: AccessCell[][] };
}

/** What `apiary audit verify` says, in short: `GET /api/v1/audit/verify`. */
export type AuditVerifySummary =
  | { ok: true; records: number; files: number; first?: number; last?: number; unanchored: number }
  | { ok: false; message: string; file?: string; line?: number; seq?: number };

/** `GET /api/v1/audit`: a page of records, newest first. */
export interface AuditAnswer {
  records: StoredAuditRecord[];
  /** Pass as `before` for the next (older) page; absent when there is none. */
  next?: number;
  /** What `audit verify` said of the files as they are now; absent until it has run on them (GET /api/v1/audit/verify runs it). */
  verify?: AuditVerifySummary;
  /** What to do when the log is empty. */
  message?: string;
}
