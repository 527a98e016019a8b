/**
 * A stdio server's endpoint answers `initialize` with the version the client
 * asked for when apiary supports it (the specification's MUST; older clients
 * disconnect otherwise), and with the latest one when it does not. A real
 * tiny server behind the Bridge and HttpEndpoint, spoken to in raw JSON-RPC
 * (the SDK client always asks for the latest version).
 */
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpEndpoint } from '../src/mcp/http-endpoint.js';
import { tinyEndpoint, type TinyEndpoint } from './helpers/tiny-endpoint.js';

let tiny: TinyEndpoint;
let endpoint: HttpEndpoint;

beforeAll(async () => {
  tiny = await tinyEndpoint('versions');
  endpoint = tiny.endpoint;
});

afterAll(() => tiny.close());

async function initialize(protocolVersion: string): Promise<{ protocolVersion: string; serverInfo: { name: string } }> {
  const res = await fetch(endpoint.url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion, capabilities: {}, clientInfo: { name: 'old-client', version: '1' } } }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { result: { protocolVersion: string; serverInfo: { name: string } } }).result;
}

describe('initialize at a stdio server endpoint', () => {
  it.each(['2025-06-18', '2025-03-26', '2024-11-05'])('a client asking for %s gets that version back', async (asked) => {
    const result = await initialize(asked);
    expect(result.protocolVersion).toBe(asked);
    expect(result.serverInfo.name).toBe('tiny');
  });

  it('a client asking for the latest gets it, and one asking for a version apiary does not know gets the latest', async () => {
    expect((await initialize(LATEST_PROTOCOL_VERSION)).protocolVersion).toBe(LATEST_PROTOCOL_VERSION);
    expect((await initialize('1999-01-01')).protocolVersion).toBe(LATEST_PROTOCOL_VERSION);
  });
});
