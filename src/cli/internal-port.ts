/**
 * What describe says about the internal port of an HTTP server apiary runs
 * (its own $PORT, behind apiary's URL). apiary's token, Host checks and
 * spec.tools guard only the URL in front: on its own port the server answers
 * whoever reaches it, as nearly every MCP server does, and apiary cannot make
 * it do otherwise. So describe says so plainly, with where the server really
 * listens (the kernel's table of listening sockets, on Linux), rather than
 * pretend the port is covered.
 */
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import type { MCPServerSpec } from '../api/manifests.js';
import { upstreamPortKey } from '../mcp/ports.js';
import { declaredPort } from '../reconcilers/mcpserver.js';

export interface InternalPort {
  port: number;
  /** The addresses a socket listens on at that port; undefined when they cannot be read (not Linux). */
  listening?: string[];
}

/** The internal port of an HTTP server apiary runs, or undefined for a stdio or hosted server (or one never given a port). */
export async function internalPortOf(stateDir: string, name: string, spec: MCPServerSpec): Promise<InternalPort | undefined> {
  if (spec.remote !== undefined || (spec.transport ?? 'stdio') === 'stdio') return undefined;
  const port = declaredPort(spec) ?? (await assignedPort(stateDir, name));
  if (port === undefined) return undefined;
  const listening = await listeningAddresses(port);
  return { port, ...(listening !== undefined ? { listening } : {}) };
}

async function assignedPort(stateDir: string, name: string): Promise<number | undefined> {
  const text = await readFile(join(stateDir, 'ports.json'), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const port = (JSON.parse(text) as Record<string, unknown>)[upstreamPortKey(name)];
    return typeof port === 'number' && Number.isInteger(port) ? port : undefined;
  } catch {
    return undefined;
  }
}

const LISTEN = '0A';

/** Addresses with a TCP socket listening on `port`, from /proc/net/tcp and tcp6; undefined where those cannot be read. */
async function listeningAddresses(port: number): Promise<string[] | undefined> {
  const tables = await Promise.all(['/proc/net/tcp', '/proc/net/tcp6'].map((file) => readFile(file, 'utf8').catch(() => undefined)));
  if (tables.every((t) => t === undefined)) return undefined;
  const found = new Set<string>();
  for (const table of tables) {
    for (const row of (table ?? '').split('\n').slice(1)) {
      const [, local, , state] = row.trim().split(/\s+/);
      const [address, hexPort] = (local ?? '').split(':');
      if (state !== LISTEN || address === undefined || hexPort === undefined || parseInt(hexPort, 16) !== port) continue;
      found.add(kernelAddress(address));
    }
  }
  return [...found].sort();
}

/** An address as /proc/net writes it (32-bit words in host byte order) in the usual notation. */
function kernelAddress(hex: string): string {
  const inOrder = (pairs: string[]): string[] => (endianness() === 'LE' ? pairs.reverse() : pairs);
  const bytes = (hex.match(/.{8}/g) ?? []).flatMap((word) => inOrder(word.match(/../g) ?? []).map((b) => parseInt(b, 16)));
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.every((b) => b === 0)) return '::';
  if (bytes.slice(0, 15).every((b) => b === 0) && bytes[15] === 1) return '::1';
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return `::ffff:${bytes.slice(12).join('.')}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return groups.join(':');
}
