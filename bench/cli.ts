/**
 * What a verb costs before it does anything: wall time of `apiary --version`,
 * `get` and `validate` on the bundled manifests, as whole processes, beside
 * `node -e 0` measured in the same run (interleaved, so machine noise falls on
 * all alike). Target: within 1.5x of node's own start. Beside the wall time,
 * the CPU time the processes used (user + system, a mean: Linux counts it in
 * ticks of 10 ms), which other work on a loaded machine moves far less.
 * get, validate and `--version` alone start from the build's V8 start-up
 * snapshot (see src/cli/snapshot.cts); a row beside them runs get from the bundle, as it
 * starts without a snapshot (an npm install, another node), and one runs
 * validate on an invalid manifest, for which the snapshot loads zod.
 *
 * NODE_EXTRA_CA_CERTS, when set, makes node read and parse those
 * certificates at every start (Node 20; about 29 ms of CPU here), which flatters
 * every ratio to `node -e 0`: the same cases then run again without it,
 * interleaved with the rest, each compared with `node -e 0` without it.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtMs, percentile, type Row } from './stats.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'apiary');
const RUNS = 30;
const CA = 'NODE_EXTRA_CA_CERTS';

/** CPU ticks (1/100 s) used by the children this process has waited for, where Linux says (/proc/self/stat's cutime + cstime); else undefined. */
function childTicks(): number | undefined {
  try {
    // The fields after the command name, which is in parentheses and may hold spaces: cutime and cstime are the 16th and 17th fields.
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
    return Number(fields[13]) + Number(fields[14]);
  } catch {
    return undefined;
  }
}

function time(command: string, args: readonly string[], env: NodeJS.ProcessEnv): { ms: number; ticks: number | undefined } {
  const ticks = childTicks();
  const started = performance.now();
  const result = spawnSync(command, args, { cwd: ROOT, stdio: 'ignore', env });
  const ms = performance.now() - started;
  if (result.status !== 0 && result.status !== 1) throw new Error(`bench: ${command} ${args.join(' ')} exited ${result.status}`);
  const after = childTicks();
  return { ms, ticks: ticks === undefined || after === undefined ? undefined : after - ticks };
}

type Case = { measure: string; command: string; args: string[]; env: NodeJS.ProcessEnv; baseline: number };

/** The verbs measured, by label. */
function verbs(stateDir: string): [string, string, string[]][] {
  return [
    ['apiary --version', BIN, ['--version']],
    ['apiary get (bundled manifests)', BIN, ['get', '--dir', 'manifests', '--state-dir', stateDir]],
    ['apiary validate (bundled manifests)', BIN, ['validate', 'manifests']],
    // A document the snapshot's lite schemas refuse: zod's path is loaded (dist/apiary-snapshot-zod.cjs) for its messages.
    ['apiary validate (one invalid manifest)', BIN, ['validate', join('test', 'fixtures', 'manifests', 'invalid', '03-missing-command.yaml')]],
    ['apiary get, without the snapshot', process.execPath, [join(ROOT, 'dist', 'src', 'cli', 'launch.cjs'), 'get', '--dir', 'manifests', '--state-dir', stateDir]],
  ];
}

/** `node -e 0` and the verbs in each environment: as this one is and, when it sets the variable, without it; each compared with its own `node -e 0`. */
function casesFor(stateDir: string): Case[] {
  const sets: [string, NodeJS.ProcessEnv][] = [['', process.env]];
  if (process.env[CA] !== undefined) {
    const without = { ...process.env };
    delete without[CA];
    sets.splice(0, 1, [` (${CA} set)`, process.env], [`, without ${CA}`, without]);
  }
  const cases: Case[] = [];
  for (const [label, env] of sets) {
    const baseline = cases.length;
    for (const [measure, command, args] of [['node -e 0', process.execPath, ['-e', '0']] as [string, string, string[]], ...verbs(stateDir)]) {
      cases.push({ measure: `${measure}${label}`, command, args, env, baseline });
    }
  }
  return cases;
}

export async function benchCli(): Promise<Row[]> {
  const stateDir = await mkdtemp(join(tmpdir(), 'apiary-bench-cli-'));
  const cases = casesFor(stateDir);
  try {
    for (const { command, args, env } of cases) time(command, args, env); // warm the page cache and the code cache
    const samples = cases.map(() => [] as number[]);
    const ticks = cases.map(() => 0 as number | undefined);
    for (let i = 0; i < RUNS; i++) {
      cases.forEach(({ command, args, env }, c) => {
        const run = time(command, args, env);
        samples[c]!.push(run.ms);
        ticks[c] = ticks[c] === undefined || run.ticks === undefined ? undefined : ticks[c] + run.ticks;
      });
    }
    const cpu = (c: number): number | undefined => (ticks[c] === undefined ? undefined : (ticks[c] * 10) / RUNS);
    return cases.map(({ measure, baseline }, c) => {
      const p50 = percentile(samples[c]!, 50);
      const node = percentile(samples[baseline]!, 50);
      const used = cpu(c);
      const nodeCpu = cpu(baseline);
      const cpuNote = used === undefined || nodeCpu === undefined ? '' : `cpu ${fmtMs(used)}${c === baseline ? '' : ` (${(used / nodeCpu).toFixed(2)}x node)`}`;
      return c === baseline
        ? { measure, result: `p50 ${fmtMs(p50)}`, note: [`${RUNS} runs, interleaved`, cpuNote].filter((n) => n !== '').join('; ') }
        : { measure, result: `p50 ${fmtMs(p50)} (${(p50 / node).toFixed(2)}x node)`, target: '<= 1.5x node', ...(cpuNote !== '' ? { note: cpuNote } : {}) };
    });
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
}
