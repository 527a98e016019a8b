/** The one back-off rule, table-driven: each caller's numbers are rows here. */
import { describe, expect, it } from 'vitest';
import { backoff, jitter, type BackoffPolicy } from '../src/util/backoff.js';

const crash: BackoffPolicy = { baseMs: 1_000, capMs: 5 * 60_000 };

describe('backoff', () => {
  it.each<[string, BackoffPolicy, number, number]>([
    ['the first retry waits the base', crash, 1, 1_000],
    ['each retry doubles', crash, 2, 2_000],
    ['and doubles again', crash, 4, 8_000],
    ['up to the cap', crash, 9, 256_000],
    ['never past the cap', crash, 10, 300_000],
    ['far past it, still the cap (no overflow to Infinity or NaN)', crash, 5_000, 300_000],
    ['an attempt of 0 counts as the first', crash, 0, 1_000],
    ['a negative attempt too', crash, -3, 1_000],
    ['a cap below the base is the cap', { baseMs: 5_000, capMs: 2_000 }, 1, 2_000],
    ['a fractional attempt counts whole tries', crash, 2.9, 2_000],
  ])('%s', (_why, policy, attempt, expected) => {
    expect(backoff(policy, attempt)).toBe(expected);
  });

  it.each<[string, number, number, number]>([
    ['jitter takes up to its fraction off: none when random is 0', 0.5, 0, 8_000],
    ['half of the fraction when random is 0.5', 0.5, 0.5, 6_000],
    ['almost all of it when random is near 1', 0.5, 0.999_999, 4_000],
    ['a jitter above 1 counts as 1 (never below zero)', 3, 0.5, 4_000],
    ['a negative jitter counts as none', -1, 0.9, 8_000],
  ])('%s', (_why, jitter, random, expected) => {
    expect(backoff({ ...crash, jitter }, 4, () => random)).toBe(expected);
  });

  it('without jitter, random is never asked', () => {
    expect(backoff(crash, 3, () => {
      throw new Error('asked');
    })).toBe(4_000);
  });
});

describe('jitter', () => {
  it.each<[string, number, number, number]>([
    ['nothing added when random is 0', 0.1, 0, 60_000],
    ['up to the fraction added when random is near 1', 0.1, 0.999_999, 66_000],
    ['half of it when random is 0.5', 0.1, 0.5, 63_000],
    ['a fraction above 1 counts as 1', 3, 0.5, 90_000],
    ['a negative fraction counts as none', -1, 0.9, 60_000],
  ])('%s', (_why, fraction, random, expected) => {
    expect(jitter(60_000, fraction, () => random)).toBe(expected);
  });

  it('adds up to 10% by default, never less than the interval', () => {
    for (let i = 0; i < 200; i++) {
      const ms = jitter(45_000);
      expect(ms).toBeGreaterThanOrEqual(45_000);
      expect(ms).toBeLessThanOrEqual(49_500);
    }
  });
});
