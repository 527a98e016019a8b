/**
 * The MRTR loop a 2025 client's call runs in front of a 2026-07-28 server
 * (src/mcp/mrtr.ts), on its own: what it leaves on the call's signal.
 */
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { JsonRpcResponse } from '../src/mcp/jsonrpc.js';
import { MAX_INPUT_ROUNDS, withInputAnswered } from '../src/mcp/mrtr.js';

describe('the input loop', () => {
  it('leaves no listener on the call signal after its rounds, however many there were', async () => {
    const abort = new AbortController();
    let sent = 0;
    const asking: JsonRpcResponse = { jsonrpc: '2.0', id: 1, result: { resultType: 'input_required', inputRequests: { q: { method: 'elicitation/create', params: { message: 'again?', requestedSchema: { type: 'object', properties: {} } } } }, requestState: 's' } };
    const done: JsonRpcResponse = { jsonrpc: '2.0', id: 1, result: { content: [] } };
    const answer = await withInputAnswered(
      { name: 'nag' },
      {
        server: 's',
        capabilities: { elicitation: {} },
        send: async () => (++sent < MAX_INPUT_ROUNDS ? asking : done),
        ask: async () => ({ jsonrpc: '2.0', id: 2, result: { action: 'accept', content: {} } }),
        signal: abort.signal,
      },
    );
    expect(answer).toEqual(done);
    expect(sent).toBe(MAX_INPUT_ROUNDS);
    // One listener a round, never taken off, made Node warn of a leak past 10 (seen in CI); each round takes its own off now.
    expect(getEventListeners(abort.signal, 'abort')).toHaveLength(0);
  });
});
