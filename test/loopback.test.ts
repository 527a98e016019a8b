/** The one DNS rebinding check, shared by the MCP endpoints and the console, table-driven. */
import { describe, expect, it } from 'vitest';
import { loopbackRefusal } from '../src/util/loopback.js';

const ONLY = 'apiary answers only to 127.0.0.1, localhost and [::1]';

const req = (host: string | undefined, origin?: string): { headers: { host?: string; origin?: string } } => ({
  headers: { ...(host !== undefined ? { host } : {}), ...(origin !== undefined ? { origin } : {}) },
});

describe('loopbackRefusal', () => {
  it.each<[string, string | undefined, string | undefined, number | undefined, string | undefined]>([
    ['127.0.0.1 with a port', '127.0.0.1:4000', undefined, undefined, undefined],
    ['localhost without a port', 'localhost', undefined, undefined, undefined],
    ['[::1] with a port', '[::1]:4000', undefined, undefined, undefined],
    ['a loopback Origin on another port', '127.0.0.1:4000', 'http://localhost:3000', undefined, undefined],
    ['an [::1] Origin', '[::1]:4000', 'http://[::1]:4000', undefined, undefined],
    ['the port asked for', 'localhost:4000', undefined, 4000, undefined],
    ['a foreign Host', 'evil.example:4000', undefined, undefined, `Host "evil.example:4000" is not allowed: ${ONLY}`],
    ['a rebinding name that starts like loopback', '127.0.0.1.nip.io:4000', undefined, undefined, `Host "127.0.0.1.nip.io:4000" is not allowed: ${ONLY}`],
    ['no Host at all', undefined, undefined, undefined, `Host "" is not allowed: ${ONLY}`],
    ['another port than asked', '127.0.0.1:4001', undefined, 4000, `Host "127.0.0.1:4001" is not allowed: ${ONLY} on port 4000`],
    ['no port when one is asked', 'localhost', undefined, 4000, `Host "localhost" is not allowed: ${ONLY} on port 4000`],
    ['a foreign Origin', '127.0.0.1:4000', 'http://evil.example', undefined, 'Origin "http://evil.example" is not allowed'],
    ['Origin null (a sandboxed or file: page)', '127.0.0.1:4000', 'null', undefined, 'Origin "null" is not allowed'],
    ['an Origin that does not parse', '127.0.0.1:4000', 'not a url', undefined, 'Origin "not a url" is not allowed'],
  ])('%s', (_why, host, origin, port, expected) => {
    expect(loopbackRefusal(req(host, origin), port)).toBe(expected);
  });
});
