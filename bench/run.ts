/**
 * `npm run bench`: prints apiary's figures as tables. Not a test: nothing
 * here passes or fails, it measures.
 */
import { cpus } from 'node:os';
import { benchController, hundredServers } from './controller.js';
import { benchCli } from './cli.js';
import { benchConsole } from './console.js';
import { auditPathCpu, benchAudit } from './audit.js';
import { benchAccess } from './access.js';
import { benchTelemetry } from './telemetry.js';
import { benchCrypto } from './crypto.js';
import { benchFairness } from './fairness.js';
import { benchMcp, benchMcpEras } from './mcp.js';
import { benchRollout } from './rollout.js';
import { benchKubernetes } from './kubernetes.js';
import { benchRecipients } from './recipients.js';
import { benchGit } from './git.js';
import { benchRedact, benchRedactHttp, benchRedactStdio } from './redact.js';
import { benchOAuth } from './oauth.js';
import { printTable } from './stats.js';

const sections = new Set(process.argv.slice(2));
const want = (name: string): boolean => sections.size === 0 || sections.has(name);

console.log(`# apiary benchmark, ${new Date().toISOString()}`);
console.log(
  `node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}); ` +
    `NODE_EXTRA_CA_CERTS ${process.env['NODE_EXTRA_CA_CERTS'] ? 'set (adds ~90 ms to each node start)' : 'not set'}`,
);

if (want('cli')) printTable('CLI start-up', await benchCli());
if (want('crypto')) printTable('Secrets at rest', await benchCrypto());
if (want('audit')) printTable('Audit log (CPU per call, process-wide)', await benchAudit());
// Not in the default run (a row of 'audit'): the record path alone, e.g. `npm run bench -- audit-path`, for before/after.
if (sections.has('audit-path')) printTable('Audit record path (CPU per record)', [{ measure: 'the record path alone', result: `${(await auditPathCpu(200_000)).toFixed(3)} µs CPU` }]);
if (want('telemetry')) printTable('Telemetry (CPU per request, process-wide)', await benchTelemetry());
if (want('recipients')) printTable('Values sealed for a team (age recipients)', await benchRecipients());
if (want('controller')) printTable('Controller', await benchController());
// Not in the default run (it is part of 'controller'): the cold start alone, e.g. `npm run bench -- cold-start`.
if (sections.has('cold-start')) printTable('Cold start', [await hundredServers(false), await hundredServers(true)]);
if (want('rollout')) printTable('Rollouts (edit -> new process, side by side with mcp-hub --watch)', await benchRollout());
if (want('kubernetes')) printTable('Kubernetes runtime (against the fake API server; apiary in its own process)', await benchKubernetes());
if (want('git')) printTable('Following a git repository (the real git; side by side with git pull + mcp-hub --watch)', await benchGit());
if (want('mcp')) printTable('MCP endpoint', await benchMcp());
// Not in the default run (its rows are part of 'mcp'): the two revisions side by side, e.g. `npm run bench -- mcp-eras`.
if (sections.has('mcp-eras')) printTable('MCP revisions at one endpoint', await benchMcpEras());
if (want('access')) printTable('Who may call what (step 17: oidc, policies, audit) against token mode, in turns', await benchAccess());
if (want('oauth')) printTable('A hosted server behind an OAuth login (step 18): through apiary against the SDK calling it directly', await benchOAuth());
if (want('redact')) printTable('No secret in a response (100 secrets, 1 KiB answers)', await benchRedact());
// Not in the default run (rows of 'redact'): a stdio server's or the HTTP proxy's rows alone, `npm run bench -- redact-stdio` or `redact-http`, for before/after.
if (sections.has('redact-stdio')) printTable('No secret in a response: stdio server (100 secrets, 1 KiB answers)', await benchRedactStdio());
if (sections.has('redact-http')) printTable('No secret in a response: HTTP proxy (100 secrets, 1 KiB answers)', await benchRedactHttp());
if (want('fairness')) printTable('One client flooding a server', await benchFairness());
if (want('console')) printTable('Web console (Chromium, 500 servers)', await benchConsole());
