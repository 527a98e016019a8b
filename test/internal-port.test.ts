/**
 * What describe says about an HTTP server's internal port: read from
 * ports.json (or the PORT the manifest sets) and, on Linux, from the
 * kernel's table of listening sockets. Real sockets, opened here.
 */
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { MCPServerSpec } from '../src/api/manifests.js';
import { internalPortLines } from '../src/cli/format.js';
import { internalPortOf } from '../src/cli/internal-port.js';
import { tempDir } from './helpers/tmp.js';

const open: Server[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

async function listenOn(host: string): Promise<number> {
  const server = createServer();
  open.push(server);
  await new Promise<void>((r) => server.listen(0, host, r));
  return (server.address() as { port: number }).port;
}

const http: MCPServerSpec = { command: 'node', transport: 'streamable-http' };

describe('an HTTP server\'s internal port, as describe tells it', () => {
  it.runIf(process.platform === 'linux')('names where a socket listens on it: loopback only is reachable by local users, not other machines', async () => {
    const stateDir = await tempDir();
    const port = await listenOn('127.0.0.1');
    await writeFile(join(stateDir, 'ports.json'), JSON.stringify({ web: port + 1, 'web~upstream': port }));
    const internal = await internalPortOf(stateDir, 'web', http);
    expect(internal).toEqual({ port, listening: ['127.0.0.1'] });
    expect(internalPortLines(internal!)).toEqual([`${port} (the server's own $PORT), listening on 127.0.0.1`, "not protected by apiary's token or spec.tools: any local user can call the server there directly"]);
  });

  it.runIf(process.platform === 'linux')('the PORT a manifest sets is the one it listens on; nothing listening there says only what is not protected', async () => {
    const stateDir = await tempDir();
    const port = await listenOn('0.0.0.0');
    expect(await internalPortOf(stateDir, 'web', { ...http, env: [{ name: 'PORT', value: String(port) }] })).toEqual({ port, listening: ['0.0.0.0'] });
    const closed = await internalPortOf(stateDir, 'web', { ...http, env: [{ name: 'PORT', value: '1' }] });
    expect(internalPortLines(closed!)).toEqual(["1 (the server's own $PORT)", "not protected by apiary's token or spec.tools: any local user can call the server there directly"]);
  });

  it('a stdio or hosted server has none; nor has a server never given one', async () => {
    const stateDir = await tempDir();
    expect(await internalPortOf(stateDir, 'a', { command: 'node' })).toBeUndefined();
    expect(await internalPortOf(stateDir, 'a', { remote: { url: 'https://example.com/mcp' } })).toBeUndefined();
    expect(await internalPortOf(stateDir, 'a', http)).toBeUndefined();
  });
});
