/**
 * The official MCP conformance suite (@modelcontextprotocol/conformance,
 * every server scenario of its 2025 revisions) through apiary's endpoints,
 * as a client would meet them: a stdio server's endpoint (the bridge), an
 * HTTP server's (the proxy) and the aggregate. The server behind them is the
 * suite's own reference server (fixtures/servers/conformance-everything.mjs),
 * over stdio and over HTTP, and server-everything over stdio. Each run
 * passes only if exactly the scenarios its baseline lists fail (the suite's
 * --expected-failures: a scenario that starts passing fails the run too, so
 * the baseline is kept true); the baselines say why each one fails.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { harness, nodeServer, type Harness } from './helpers/controller.js';
import { requireTool } from './helpers/tools.js';

const require = createRequire(import.meta.url);
const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const REFERENCE_SERVER = join(FIXTURES, 'servers/conformance-everything.mjs');
const EVERYTHING = require.resolve('@modelcontextprotocol/server-everything/dist/index.js');

/** The suite's CLI, when installed (a devDependency). */
function conformanceCli(): string | undefined {
  try {
    return join(dirname(require.resolve('@modelcontextprotocol/conformance/package.json')), 'dist/index.js');
  } catch {
    return undefined;
  }
}

const CLI = conformanceCli();
const suite = requireTool('@modelcontextprotocol/conformance', 'npm install (it is a devDependency of apiary)', () => CLI !== undefined);

/** The CLI's own summary lines (✓/✗ per scenario) and its verdict. */
interface Run {
  code: number | null;
  summary: string;
}

/** Every server scenario against `url`; `expectedFailures`: the baseline file, or none (every scenario must pass). */
function runSuite(url: string, cwd: string, expectedFailures?: string, scenario?: string): Promise<Run> {
  // The CLI imports fs.globSync (Node 22) for a command these runs never use: on Node 20 that import is patched out.
  const node20 = 'globSync' in fs ? [] : ['--import', join(FIXTURES, 'conformance/node20.mjs')];
  const baseline = expectedFailures === undefined ? [] : ['--expected-failures', join(FIXTURES, 'conformance', expectedFailures)];
  const results = fs.mkdtempSync(join(cwd, 'results-'));
  const which = scenario === undefined ? ['--suite', 'all'] : ['--scenario', scenario];
  const child = spawn(process.execPath, [...node20, CLI!, 'server', '--url', url, ...which, '--output-dir', results, ...baseline], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, summary: output.slice(output.indexOf('=== SUMMARY ===')) + (code === 0 ? '' : failedChecks(results)) }));
  });
}

/** What each failed check said (the summary names only the scenario): so a failure seen once in CI can be read afterwards. */
function failedChecks(results: string): string {
  const lines: string[] = [];
  const walk = (folder: string): void => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name === 'checks.json') {
        const checks = JSON.parse(fs.readFileSync(path, 'utf8')) as { id?: string; status?: string; errorMessage?: string; details?: unknown }[];
        for (const check of checks) {
          if (check.status === 'FAILURE') lines.push(`${folder.slice(results.length + 1)}: ${check.id}: ${check.errorMessage ?? JSON.stringify(check.details)}`);
        }
      }
    }
  };
  walk(results);
  return `\nfailed checks:\n${lines.join('\n')}`;
}

/**
 * Scenarios whose server asks the client something outside the call it
 * serves (the reference server's elicitation and sampling tools send their
 * request without relating it to the call), so the request goes on the
 * client's GET stream, and is dropped when the client's call reached the
 * server before its GET did. The suite's client opens the GET and calls at
 * once: a race in the peer, seen without apiary too (the reference server
 * served directly, three suites at once on this 2-core machine:
 * elicitation-sep1034-defaults failed 2 of 12 runs).
 */
const RACY = new Set(['elicitation-sep1034-defaults', 'elicitation-sep1330-enums', 'tools-call-sampling', 'tools-call-elicitation']);

/** A run that passed, or whose only failures were racy scenarios that each pass when run again alone. */
async function passes(run: Run, url: string, cwd: string, expectedFailures?: string): Promise<Run> {
  if (run.code === 0) return run;
  const failed = [...run.summary.matchAll(/^✗ (\S+):/gm)].map((m) => m[1]!);
  if (failed.length === 0 || failed.some((name) => !RACY.has(name))) return run;
  for (const name of failed) {
    const again = await runSuite(url, cwd, expectedFailures, name);
    if (again.code !== 0) return { code: again.code, summary: `${run.summary}\n--- ${name} run again alone:\n${again.summary}` };
  }
  return { code: 0, summary: run.summary };
}

async function ready(h: Harness, name: string): Promise<string> {
  return h.waitFor(
    `${name} Ready`,
    async () => {
      const s = await h.status(name);
      return findCondition(s?.conditions, 'Ready')?.status === 'True' && s?.url ? s.url : undefined;
    },
    30_000,
  );
}

describe.skipIf(!suite.available)('the MCP conformance suite through apiary (2025 revisions)', () => {
  it("passes every scenario through a stdio server's endpoint and an HTTP server's proxy, and those its baselines allow with server-everything and at the aggregate", async () => {
    const h = await harness();
    await h.write('reference-stdio.yaml', nodeServer('reference-stdio', [REFERENCE_SERVER, 'stdio']));
    await h.write('reference-http.yaml', nodeServer('reference-http', [REFERENCE_SERVER], '  transport: streamable-http\n'));
    await h.write('everything.yaml', nodeServer('everything', [EVERYTHING, 'stdio']));
    // The suite's client sends no token: the endpoints are served without one (up --no-auth).
    const controller = await h.start({}, { auth: false });
    const urls = { stdio: await ready(h, 'reference-stdio'), http: await ready(h, 'reference-http'), everything: await ready(h, 'everything') };
    const aggregate = controller.aggregateUrl!;
    // The suite writes its results/ where it runs: beside the manifests, not among them.
    const out = join(dirname(h.dir), 'conformance');
    await mkdir(out);

    // One after another: each run reports to its own folder, and the servers are not shared mid-scenario.
    const stdio = await passes(await runSuite(urls.stdio, out), urls.stdio, out);
    expect(stdio.summary).toContain('Total: ');
    expect(stdio.code, stdio.summary).toBe(0);
    const http = await passes(await runSuite(urls.http, out), urls.http, out);
    expect(http.code, http.summary).toBe(0);
    const everythingBaseline = 'everything-expected-failures.yml';
    const everything = await passes(await runSuite(urls.everything, out, everythingBaseline), urls.everything, out, everythingBaseline);
    expect(everything.code, everything.summary).toBe(0);
    const aggregateBaseline = 'aggregate-expected-failures.yml';
    const atAggregate = await passes(await runSuite(aggregate, out, aggregateBaseline), aggregate, out, aggregateBaseline);
    expect(atAggregate.code, atAggregate.summary).toBe(0);
  }, 240_000);
});
