/**
 * What step 17 costs a call (`npm run bench -- access`): four apiary
 * controllers side by side, each fronting examples/hello-server.mjs, one lean
 * 2026-07-28 client each, measured in turns so the machine's load falls on
 * all alike:
 * - token mode without a Gateway (what every user who never writes one has);
 * - a Gateway in mode oidc (a real oidc-provider on 127.0.0.1 minted the
 *   client's JWT; apiary verifies it and remembers it), two AccessPolicies,
 *   the audit log on;
 * - a Gateway in token mode with a policy for the local token, audit on;
 * - the same with `audit.enabled: false`.
 */
import { makeKey, startProvider } from '../test/helpers/oidc-provider.js';
import { inTurns, leanModernClient, roundShare, withApiary, type Result } from './mcp.js';
import { fmtMs, type Row } from './stats.js';

const CLIENT = { id: 'bench', secret: 'bench-secret-0123456789abcdef' };

const POLICIES = `apiVersion: apiary.dev/v1alpha1
kind: AccessPolicy
metadata:
  name: devs
spec:
  subjects:
    - group: dev
  rules:
    - servers: ["hello"]
      tools: ["greet", "search_*"]
      effect: Allow
---
apiVersion: apiary.dev/v1alpha1
kind: AccessPolicy
metadata:
  name: no-admin
spec:
  subjects:
    - authenticated: true
    - token: local
  rules:
    - servers: ["*"]
      tools: ["admin_*"]
      effect: Deny
`;

const LOCAL_POLICY = `apiVersion: apiary.dev/v1alpha1
kind: AccessPolicy
metadata:
  name: me
spec:
  subjects:
    - token: local
  rules:
    - servers: ["*"]
      effect: Allow
`;

function gateway(spec: string): string {
  return `apiVersion: apiary.dev/v1alpha1\nkind: Gateway\nmetadata:\n  name: default\nspec:\n${spec}---\n`;
}

/** CPU per call: the controller with its server, and the client. */
function cpuText(r: Result): string {
  return r.serverCpuMs === undefined ? 'CPU not measured' : `CPU per call ${(r.serverCpuMs * 1000).toFixed(0)} µs controller+server, ${(r.clientCpuMs * 1000).toFixed(0)} µs client`;
}

/**
 * What audit adds to the CPU one call costs on this machine (the controller, its server and the client together): on a
 * machine where calls/s is bound by CPU this is the share of calls/s audit takes, measured without the run-to-run swing of
 * calls/s when other work shares the cores.
 */
function cpuShare(on: Result, off: Result): string {
  if (on.serverCpuMs === undefined || off.serverCpuMs === undefined) return 'CPU not measured';
  const added = on.serverCpuMs - off.serverCpuMs;
  const whole = off.serverCpuMs + off.clientCpuMs;
  return `audit adds ${(added * 1000).toFixed(1)} µs of CPU per call, ${((100 * added) / whole).toFixed(1)}% of a call's CPU`;
}

export async function benchAccess(calls = 24_000): Promise<Row[]> {
  const provider = await startProvider({
    keys: [await makeKey('k1')],
    clients: [{ client_id: CLIENT.id, client_secret: CLIENT.secret, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] }],
    clientGroups: { [CLIENT.id]: ['dev'] },
    audienceOf: (resource) => (resource.startsWith('http://127.0.0.1:') ? 'apiary' : undefined),
  });
  try {
    const oidc = gateway(`  auth:\n    mode: oidc\n    oidc:\n      issuer: ${provider.issuer}\n      audience: apiary\n`) + POLICIES;
    const audited = gateway('  auth:\n    mode: token\n') + LOCAL_POLICY;
    const unaudited = gateway('  auth:\n    mode: token\n  audit:\n    enabled: false\n') + LOCAL_POLICY;
    const [plain, withOidc, withAudit, withoutAudit] = (await withApiary((plainUrl, plainHeaders, _a, _s, plainPid) =>
      withApiary(
        async (oidcUrl, _h, _a2, _s2, oidcPid) => {
          const jwt = await provider.clientToken(CLIENT.id, CLIENT.secret, oidcUrl);
          return withApiary(
            (auditUrl, auditHeaders, _a3, _s3, auditPid) =>
              withApiary(
                (quietUrl, quietHeaders, _a4, _s4, quietPid) =>
                  inTurns(
                    [
                      () => leanModernClient(plainUrl, plainHeaders),
                      () => leanModernClient(oidcUrl, { Authorization: `Bearer ${jwt}` }),
                      () => leanModernClient(auditUrl, auditHeaders),
                      () => leanModernClient(quietUrl, quietHeaders),
                    ],
                    calls,
                    16,
                    undefined,
                    [plainPid, oidcPid, auditPid, quietPid],
                  ),
                unaudited,
              ),
            audited,
          );
        },
        oidc,
      ),
    )) as [Result, Result, Result, Result];
    const added = withOidc.p50 - plain.p50;
    return [
      { measure: 'tools/call, lean 2026-07-28 client: token mode, no Gateway (as before step 17)', result: `p50 ${fmtMs(plain.p50)} / p99 ${fmtMs(plain.p99)}, ${plain.rps.toFixed(0)} calls/s` },
      {
        measure: 'the same through a Gateway in mode oidc (a JWT from oidc-provider, verified once and remembered), two AccessPolicies, the audit log',
        result: `p50 ${fmtMs(withOidc.p50)} / p99 ${fmtMs(withOidc.p99)}, ${withOidc.rps.toFixed(0)} calls/s`,
        target: 'added p50 <= 0.2 ms',
        note: `${added >= 0 ? '+' : '-'}${fmtMs(Math.abs(added))} p50 against token mode; ${(withOidc.rps / plain.rps).toFixed(2)}x its calls/s`,
      },
      {
        measure: 'a Gateway in token mode, a policy for the local token, audit on',
        result: `p50 ${fmtMs(withAudit.p50)}, ${withAudit.rps.toFixed(0)} calls/s; ${cpuText(withAudit)}`,
        target: 'audit lowers calls/s by <= 5%',
        note: `${(100 * (withAudit.rps / withoutAudit.rps - 1)).toFixed(1)}% calls/s against the same with audit off (median of the rounds' ratios: ${roundShare(withAudit, withoutAudit)}); ${cpuShare(withAudit, withoutAudit)}`,
      },
      { measure: 'the same with audit.enabled: false', result: `p50 ${fmtMs(withoutAudit.p50)}, ${withoutAudit.rps.toFixed(0)} calls/s; ${cpuText(withoutAudit)}` },
    ];
  } finally {
    await provider.close();
  }
}
