/** Which repeated reports are made (SecretRedacted, EgressDenied events): src/util/once-per.ts with a fake clock. */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../src/util/clock.js';
import { OncePerWindow } from '../src/util/once-per.js';

describe('once per window', () => {
  it('reports a key once per window, per group, and again once the window has passed', () => {
    const clock = new FakeClock();
    const once = new OncePerWindow(clock, 60_000);
    expect([once.first('a', 'x'), once.first('a', 'x'), once.first('b', 'x'), once.first('a', 'y')]).toEqual([true, false, true, true]);
    clock.advance(59_999);
    expect(once.first('a', 'x')).toBe(false);
    clock.advance(1);
    expect(once.first('a', 'x')).toBe(true);
  });

  it("caps a group's keys in a window: a server trying a thousand hosts makes ten reports", () => {
    const clock = new FakeClock();
    const once = new OncePerWindow(clock, 60_000, 10);
    const reported = Array.from({ length: 1000 }, (_, i) => once.first('probe', `10.0.0.${i}:443`)).filter(Boolean);
    expect(reported).toHaveLength(10);
    // Another server is not held back by it; after the window, the first group reports again.
    expect(once.first('other', '10.0.0.999:443')).toBe(true);
    clock.advance(60_000);
    expect(once.first('probe', '10.0.0.500:443')).toBe(true);
  });
});
