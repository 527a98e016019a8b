/**
 * A directory with a Gateway and access policies, and an audit log written
 * by the real AuditLog (records built by the one recordOf), for the console's
 * Access and Audit tests. Canaries: a secret value and an argument value that
 * must never reach an API answer or a page.
 */
import { recordOf, type AuditOutcome, type AuditSubject } from '../../src/api/audit.js';
import { AuditLog } from '../../src/state/audit-log.js';
import { StateLayout } from '../../src/state/layout.js';

export const SECRET_CANARY = 'canary-secret-5f3e9d1c';
export const ARGUMENT_CANARY = 'canary-argument-8a7b6c5d';

export const OIDC_GATEWAY = `apiVersion: apiary.dev/v1alpha1
kind: Gateway
metadata:
  name: default
spec:
  auth:
    mode: oidc
    oidc:
      issuer: http://127.0.0.1:9/realms/team
      audience: apiary
      groupsClaim: groups
  audit:
    maxFiles: 3
`;

/** Two policies in one file: group dev may use `tools` of `server` and all of `other`; bob may not call `denied`. */
export function twoPolicies(server: string, tools: readonly string[], other: string, denied: string): string {
  return `apiVersion: apiary.dev/v1alpha1
kind: AccessPolicy
metadata:
  name: devs
spec:
  subjects:
    - group: dev
  rules:
    - servers: [${server}]
      tools: [${tools.map((t) => JSON.stringify(t)).join(', ')}]
      effect: Allow
    - servers: [${other}]
      effect: Allow
---
apiVersion: apiary.dev/v1alpha1
kind: AccessPolicy
metadata:
  name: contractors
spec:
  subjects:
    - user: bob
  rules:
    - servers: ["*"]
      tools: [${JSON.stringify(denied)}]
      effect: Deny
`;
}

export interface Call {
  subject: AuditSubject;
  server: string;
  method?: string;
  name?: string;
  decision: 'allow' | 'deny';
  rule?: string;
  outcome: AuditOutcome;
  code?: number;
  client?: string;
  /** Seconds after 2026-12-04T12:00:00Z. */
  at: number;
}

export const alice: AuditSubject = { kind: 'user', user: 'alice', groups: ['dev'] };
export const bob: AuditSubject = { kind: 'user', user: 'bob', groups: ['dev'] };

/** The calls written in order, each with the argument canary as a value; resolves once they are on disk and anchored. */
export async function writeAudit(stateDir: string, calls: readonly Call[]): Promise<void> {
  const log = await AuditLog.open(new StateLayout(stateDir));
  for (const [i, c] of calls.entries()) {
    const record = recordOf(
      { method: c.method ?? 'tools/call', id: i + 1, params: { name: c.name, uri: c.name, arguments: { message: ARGUMENT_CANARY, count: 3 } } },
      {
        time: new Date(Date.UTC(2026, 11, 4, 12, 0, c.at)).toISOString(),
        subject: c.subject,
        client: c.client ?? 'claude-code 2.1',
        server: c.server,
        decision: c.decision,
        rule: c.rule,
        durationMs: 1.25 + i,
        outcome: c.outcome,
        code: c.code,
      },
    );
    log.append(record);
  }
  await log.close();
}
