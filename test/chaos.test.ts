/**
 * The fault harness, short: every fault twice against a real `apiary up`
 * and real servers, and a 300-edit soak; every invariant must hold. The
 * full run (100 rounds, 10,000 edits, the 2 s convergence bound) is
 * `npm run chaos`; here the suite shares two cores with the other test
 * files, so a round may take up to 5 s to converge.
 */
import { describe, expect, it } from 'vitest';
import { FAULTS, runChaos } from '../chaos/harness.js';
import { needsGit } from './helpers/tools.js';

// The hanging git remote needs the real git: without it (and CI unset) that one fault is left out, saying why.
const faults = needsGit().available ? [...FAULTS] : FAULTS.filter((f) => f !== 'git-hang');

describe('fault harness (short)', () => {
  it('keeps every invariant through each fault and a soak', async () => {
    const lines: string[] = [];
    const report = await runChaos({ rounds: faults.length * 2, soakEdits: 300, order: 'cycle', faults, convergeMs: 5_000, log: (l) => lines.push(l) });
    expect(report.violations, `seed ${report.seed}\n${lines.join('\n')}`).toEqual([]);
    expect(Object.keys(report.faults).sort()).toEqual([...faults].sort());
    expect(report.flood.floodCalls).toBeGreaterThan(0);
    expect(report.soak.edits).toBe(300);
  }, 300_000);
});
