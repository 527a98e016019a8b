import { describe, expect, it } from 'vitest';
import { DURATION } from '../src/api/manifests.js';
import { isApiaryError } from '../src/errors.js';
import { parseDuration, requireDuration } from '../src/util/duration.js';
import { runCli } from './helpers/cli.js';
import { workspace } from './helpers/tmp.js';

describe('parseDuration (one parser for flags and manifests)', () => {
  it.each([
    ['1h2m3.5s', 3_723_500],
    ['500ms', 500],
    ['90s', 90_000],
    ['1m30s', 90_000],
    ['1h30m', 5_400_000],
    ['1.5m', 90_000],
    ['.5s', 500],
    ['2h', 7_200_000],
    ['0s', 0],
    ['1500us', 1.5],
    ['2000000ns', 2],
    // What the CLI took before: a bare number is seconds, with or without a fraction.
    ['30', 30_000],
    ['2.5', 2500],
    ['0', 0],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', 'soon', '1x', '1m30', 'm', '1 m', '-1s', '1h-2m', '30s ', 's30', '1..5s', '.s'])('"%s" is no duration', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it('names where a bad value came from, and the value', () => {
    let thrown: unknown;
    try {
      requireDuration('soon', '--timeout');
    } catch (err) {
      thrown = err;
    }
    expect(isApiaryError(thrown, 'Usage')).toBe(true);
    expect((thrown as Error).message).toMatch(/^--timeout: "soon" is not a duration \(use e\.g\. 500ms, 30s, 1m30s/);
  });

  it('reads every duration a manifest may hold (the schema pattern is a subset of the parser)', () => {
    for (const text of ['30s', '1m30s', '1h2m3.5s', '500ms', '1.5h']) {
      expect(DURATION.test(text), text).toBe(true);
      expect(parseDuration(text), text).toBeGreaterThanOrEqual(0);
    }
    for (const text of ['30', 'soon', '1m30']) expect(DURATION.test(text), text).toBe(false);
  });
});

describe('--timeout on the built CLI', () => {
  it('takes 1m30s as the manifests take it', async () => {
    const { env } = await workspace();
    const down = await runCli(['down', '--timeout', '1m30s'], { env });
    expect(down.stderr).not.toContain('duration');
    expect(down.code, down.stderr).toBe(0);
    expect(down.stderr).toContain('no apiary controller is running');
  });

  it('refuses a value that is no duration, naming the flag and the value', async () => {
    const { env } = await workspace();
    const down = await runCli(['down', '--timeout', 'soon'], { env });
    expect(down.code).not.toBe(0);
    expect(down.stderr).toContain('--timeout: "soon" is not a duration');
  });
});
