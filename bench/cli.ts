/**
 * What a verb costs before it does anything: wall time of `apiary --version`,
 * `get` and `validate` on the bundled manifests, as whole processes, beside
 * `node -e 0` measured in the same run (interleaved, so machine noise falls on
 * all alike). Target: within 1.5x of node's own start.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtMs, percentile, type Row } from './stats.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'apiary');
const RUNS = 20;

function time(command: string, args: readonly string[]): number {
  const started = performance.now();
  const result = spawnSync(command, args, { cwd: ROOT, stdio: 'ignore' });
  if (result.status !== 0 && result.status !== 1) throw new Error(`bench: ${command} ${args.join(' ')} exited ${result.status}`);
  return performance.now() - started;
}

export async function benchCli(): Promise<Row[]> {
  const stateDir = await mkdtemp(join(tmpdir(), 'apiary-bench-cli-'));
  const cases: [string, string, string[]][] = [
    ['node -e 0', process.execPath, ['-e', '0']],
    ['apiary --version', BIN, ['--version']],
    ['apiary get (bundled manifests)', BIN, ['get', '--dir', 'manifests', '--state-dir', stateDir]],
    ['apiary validate (bundled manifests)', BIN, ['validate', 'manifests']],
  ];
  try {
    for (const [, command, args] of cases) time(command, args); // warm the page cache and the code cache
    const samples = cases.map(() => [] as number[]);
    for (let i = 0; i < RUNS; i++) cases.forEach(([, command, args], c) => samples[c]!.push(time(command, args)));
    const node = percentile(samples[0]!, 50);
    return cases.map(([measure], c) => {
      const p50 = percentile(samples[c]!, 50);
      return c === 0
        ? { measure, result: `p50 ${fmtMs(p50)}`, note: `${RUNS} runs, interleaved` }
        : { measure, result: `p50 ${fmtMs(p50)} (${(p50 / node).toFixed(2)}x node)`, target: '<= 1.5x node' };
    });
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
}
