/** Small helpers for the benchmark tables. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms < 0.01) return `${(ms * 1000).toFixed(2)} µs`;
  if (ms < 10) return `${ms.toFixed(3)} ms`;
  return `${ms.toFixed(1)} ms`;
}

export interface Row {
  measure: string;
  result: string;
  target?: string;
  note?: string;
}

export function printTable(title: string, rows: readonly Row[]): void {
  const headers = ['measure', 'result', 'target', 'note'];
  const cells = rows.map((r) => [r.measure, r.result, r.target ?? '', r.note ?? '']);
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]): string => `| ${c.map((x, i) => x.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`\n## ${title}\n`);
  console.log(line(headers));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const c of cells) console.log(line(c));
}

export function now(): number {
  return performance.now();
}

/** "apiary is 5.2x faster" or, when the peer wins, "apiary is 1.3x slower". */
export function ratioNote(peerP50: number, apiaryP50: number): string {
  return peerP50 >= apiaryP50 ? `apiary is ${(peerP50 / apiaryP50).toFixed(1)}x faster at p50` : `apiary is ${(apiaryP50 / peerP50).toFixed(1)}x slower at p50`;
}
