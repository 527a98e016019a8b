/** A tiny stdio server behind a real Bridge and HttpEndpoint: for tests of the endpoint itself, without a controller. */
import { spawn, type ChildProcess } from 'node:child_process';
import { Bridge } from '../../src/mcp/bridge.js';
import { HttpEndpoint } from '../../src/mcp/http-endpoint.js';
import { systemClock } from '../../src/util/clock.js';
import { TINY_SERVER } from './controller.js';
import { waitFor } from './wait.js';

export interface TinyEndpoint {
  server: ChildProcess;
  bridge: Bridge;
  endpoint: HttpEndpoint;
  close(): Promise<void>;
}

/** `ready`: wait for the bridge's handshake with the server before the endpoint listens. */
export async function tinyEndpoint(name: string, options: { readyWaitMs?: number; ready?: boolean; endpoint?: ConstructorParameters<typeof HttpEndpoint>[2] } = {}): Promise<TinyEndpoint> {
  const server = spawn(process.execPath, [TINY_SERVER], { stdio: ['pipe', 'pipe', 'ignore'] });
  const bridge = new Bridge({ name, clock: systemClock, readyWaitMs: options.readyWaitMs ?? 10_000 });
  bridge.attach(server.stdin!, server.stdout!, server.pid!);
  if (options.ready === true) await waitFor('the tiny server ready (handshake done)', () => bridge.isReady(), 10_000, { observe: () => bridge.status() });
  const endpoint = new HttpEndpoint(bridge, 0, options.endpoint);
  await endpoint.listen();
  return {
    server,
    bridge,
    endpoint,
    async close() {
      await endpoint.close();
      bridge.close();
      server.kill('SIGKILL');
    },
  };
}
