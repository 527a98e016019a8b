/**
 * server-everything processes attached to a Gateway made in the test (no
 * controller): the record the gateway is given for a child, and one over
 * HTTP on a port of its own behind the gateway's proxy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { DEFAULT_HEALTH } from '../../src/mcp/health.js';
import type { Gateway } from '../../src/mcp/gateway.js';
import type { ObservedProcess } from '../../src/runtime/runtime.js';
import { freePort } from './ports.js';

export const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');

/** What the runtime would tell the gateway of `child`: the current slot, generation 1, its pipes when it has them. */
export function observedChild(name: string, child: ChildProcess): ObservedProcess {
  return { name, pid: child.pid!, slot: 'current', startedAt: new Date().toISOString(), configHash: name, generation: 1, stopping: false, adopted: false, ...(child.stdin && child.stdout ? { stdio: { stdin: child.stdin, stdout: child.stdout } } : {}) };
}

/** server-everything over HTTP on a port of its own, behind the gateway's proxy (pushed to `children` to be killed); gives the proxy's port. */
export async function everythingBehindProxy(gateway: Gateway, children: ChildProcess[], name: string, transport: 'streamable-http' | 'sse'): Promise<number> {
  const upstreamPort = await freePort();
  const child = spawn(process.execPath, [EVERYTHING, transport === 'sse' ? 'sse' : 'streamableHttp'], { stdio: 'ignore', env: { ...process.env, PORT: String(upstreamPort) } });
  children.push(child);
  const proxyPort = await freePort();
  await gateway.ensure(name, transport, proxyPort, DEFAULT_HEALTH, undefined, upstreamPort);
  gateway.attach(name, observedChild(name, child));
  return proxyPort;
}
