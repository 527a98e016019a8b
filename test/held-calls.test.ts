/**
 * The requestState of a held call, checked without a server: what the
 * endpoint tests cannot reach (one token per endpoint, so never another
 * principal), and the bound and the endpoint's close.
 */
import { describe, expect, it } from 'vitest';
import { HeldCalls, principalOf, type Binding } from '../src/mcp/held-calls.js';

function holdable(): { expired: string[]; expire(reason: string): void } {
  const expired: string[] = [];
  return { expired, expire: (reason) => void expired.push(reason) };
}

const call = (principal: string): Binding => ({ method: 'tools/call', name: 'ask', principal });

describe('held calls', () => {
  it('a state is refused to another principal, and says nothing of the token', () => {
    const held = new HeldCalls();
    const item = holdable();
    const state = held.hold('h1', 1, item, call(principalOf('Bearer one')))!;
    expect(state).not.toContain(principalOf('Bearer one'));
    expect(Buffer.from(state.split('.')[1]!, 'base64url').toString()).not.toContain('one');
    expect(held.claim(state, call(principalOf('Bearer two')))).toEqual({ refused: expect.objectContaining({ data: { reason: 'invalid_request_state', fault: 'mismatched' }, message: expect.stringMatching(/issued to another client/) as unknown }) as unknown });
    expect(held.claim(state, call(principalOf(undefined)))).toMatchObject({ refused: { data: { fault: 'mismatched' } } });
    expect(held.claim(state, call(principalOf('Bearer one')))).toEqual({ item });
  });

  it('holds at most its bound, and its close gives up every held call', () => {
    const held = new HeldCalls({ max: 2 });
    const [a, b, c] = [holdable(), holdable(), holdable()];
    expect(held.hold('a', 1, a, call(''))).toBeDefined();
    expect(held.hold('b', 1, b, call(''))).toBeDefined();
    expect(held.hold('c', 1, c, call(''))).toBeUndefined();
    expect(held.size).toBe(2);
    held.close('the endpoint is closing');
    expect([a.expired, b.expired, c.expired]).toEqual([['the endpoint is closing'], ['the endpoint is closing'], []]);
    expect(held.size).toBe(0);
  });

  it("another endpoint's (or an earlier process's) state does not verify", () => {
    const state = new HeldCalls().hold('h', 1, holdable(), call(''))!;
    expect(new HeldCalls().claim(state, call(''))).toMatchObject({ refused: { data: { fault: 'forged' } } });
    expect(new HeldCalls().claim('not a state', call(''))).toMatchObject({ refused: { data: { fault: 'forged' } } });
  });
});
