import { describe, expect, it } from 'vitest';
import { mapConcurrent } from '../src/util/concurrency.js';

describe('mapConcurrent', () => {
  it('keeps item order, never has more than the limit in flight, and runs every item once', async () => {
    let inFlight = 0;
    let most = 0;
    const seen: number[] = [];
    const out = await mapConcurrent(Array.from({ length: 50 }, (_, i) => i), 4, async (i) => {
      inFlight++;
      most = Math.max(most, inFlight);
      seen.push(i);
      await new Promise((r) => setTimeout(r, (i * 7) % 5));
      inFlight--;
      return i * 2;
    });
    expect(out).toEqual(Array.from({ length: 50 }, (_, i) => i * 2));
    expect(most).toBe(4);
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(await mapConcurrent([], 4, async () => 1)).toEqual([]);
  });

  it('rejects when a call does', async () => {
    await expect(mapConcurrent([1, 2, 3], 2, async (i) => (i === 2 ? Promise.reject(new Error('two')) : i))).rejects.toThrow('two');
  });
});
