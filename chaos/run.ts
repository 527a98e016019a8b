/**
 * `npm run chaos [-- --rounds N --soak N --seed N]`: the fault harness at
 * full size (100 rounds, a 10,000-edit soak). Prints its figures and every
 * violated invariant; exits 1 if any.
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { fmtMs, percentile, printTable } from '../bench/stats.js';
import { FAULTS, runChaos, type ChaosReport, type Fault } from './harness.js';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '100' }, soak: { type: 'string', default: '10000' }, seed: { type: 'string' }, faults: { type: 'string' }, order: { type: 'string', default: 'random' }, verbose: { type: 'boolean', default: false } },
});
const faults = values.faults?.split(',').map((f) => f.trim()) ?? [...FAULTS];
const unknown = faults.filter((f) => !(FAULTS as readonly string[]).includes(f));
if (unknown.length > 0) {
  console.error(`unknown fault(s): ${unknown.join(', ')}; known: ${FAULTS.join(', ')}`);
  process.exit(2);
}
if (values.order !== 'random' && values.order !== 'cycle') {
  console.error(`--order is random or cycle, not ${values.order}`);
  process.exit(2);
}
console.log(`# apiary fault harness, ${new Date().toISOString()}`);
console.log(`node ${process.version}, ${cpus().length} cores; NODE_EXTRA_CA_CERTS ${process.env['NODE_EXTRA_CA_CERTS'] ? 'set' : 'not set'}`);
const report = await runChaos({
  rounds: Number(values.rounds),
  soakEdits: Number(values.soak),
  faults: faults as Fault[],
  order: values.order,
  ...(values.seed !== undefined ? { seed: Number(values.seed) } : {}),
  log: (line) => {
    if (values.verbose || !line.startsWith('round')) console.log(line);
  },
});
printReport(report);
process.exitCode = report.violations.length === 0 ? 0 : 1;

function printReport(r: ChaosReport): void {
  const rss = r.soak.rssKb;
  const warm = rss[Math.min(1, rss.length - 1)];
  const last = rss.at(-1);
  printTable(`Fault harness (seed ${r.seed})`, [
    { measure: 'rounds', result: String(r.rounds), note: Object.entries(r.faults).map(([f, n]) => `${f} ${n}`).join(', ') },
    { measure: 'convergence after a fault', result: `p50 ${fmtMs(percentile(r.convergeMs, 50))}, p99 ${fmtMs(percentile(r.convergeMs, 99))}, max ${fmtMs(Math.max(...r.convergeMs))}`, target: '< 2 s', note: 'from the controller back up to every invariant holding' },
    { measure: '... with the server that ignores SIGTERM', result: `p50 ${fmtMs(percentile(r.stubbornMs, 50))}, max ${fmtMs(Math.max(...r.stubbornMs))}`, target: '< 2 s + its 6 s grace', note: 'replaced after a controller crash: its stdio died with it' },
    { measure: 'ping beside a flood (16 clients x 8 in flight)', result: `idle p50 ${fmtMs(percentile(r.flood.idlePingMs, 50))}; flooded p50 ${fmtMs(percentile(r.flood.floodPingMs, 50))}, max ${fmtMs(Math.max(...r.flood.floodPingMs))}`, note: `${r.flood.floodCalls} flood calls, ${r.flood.floodErrors} errors` },
    { measure: `controller RSS over a ${r.soak.edits}-edit soak`, result: warm && last ? `${(warm.kb / 1024).toFixed(1)} MiB at edit ${warm.at} -> ${(last.kb / 1024).toFixed(1)} MiB at ${last.at}` : 'n/a', target: 'flat', note: `${r.soak.seconds.toFixed(0)} s` },
    { measure: 'invariant violations', result: String(r.violations.length), target: '0' },
  ]);
  for (const v of r.violations) console.log(`VIOLATION ${v}`);
}
