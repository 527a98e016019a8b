/**
 * The two eras of MCP as apiary meets them upstream: a server speaks the
 * stateless revision (2026-07-28: no initialize, every request carries its
 * version and client capabilities in `_meta`, `server/discover` instead of
 * the handshake) or an earlier one (initialize first). These are the pieces
 * of the modern wire apiary writes and reads as a client of a server.
 */
import type { JsonRpcResponse } from './jsonrpc.js';

export type Era = 'modern' | 'legacy';

/** The stateless revision: what apiary asks a modern server for. */
export const MODERN_PROTOCOL_VERSION = '2026-07-28';

export const PROTOCOL_VERSION_META_KEY = 'io.modelcontextprotocol/protocolVersion';
export const CLIENT_CAPABILITIES_META_KEY = 'io.modelcontextprotocol/clientCapabilities';
export const CLIENT_INFO_META_KEY = 'io.modelcontextprotocol/clientInfo';
export const SERVER_INFO_META_KEY = 'io.modelcontextprotocol/serverInfo';
/** The server does not speak the version asked for; its data lists those it does. */
export const UNSUPPORTED_PROTOCOL_VERSION = -32022;

/** The `_meta` keys every modern request carries: the version, the client's capabilities and who it is. */
export function envelope(capabilities: Record<string, unknown>, clientInfo: { name: string; version: string }): Record<string, unknown> {
  return { [PROTOCOL_VERSION_META_KEY]: MODERN_PROTOCOL_VERSION, [CLIENT_CAPABILITIES_META_KEY]: capabilities, [CLIENT_INFO_META_KEY]: clientInfo };
}

/** What a modern server says of itself in its DiscoverResult. */
export interface Discovered {
  capabilities: Record<string, unknown>;
  serverInfo?: { name: string; version: string };
  instructions?: string;
}

/**
 * What an answer to `server/discover` says of the server's era, as the
 * spec's stdio probe reads it: a DiscoverResult listing 2026-07-28 is modern;
 * UnsupportedProtocolVersion listing it is modern too (the server knows the
 * revision; `discovered` is then absent). Any other answer (method not found
 * from a 2025 server, another error, a result of another shape) is legacy:
 * the fallback is not keyed to one code.
 */
export function readDiscover(answer: JsonRpcResponse): { era: 'modern'; discovered?: Discovered } | { era: 'legacy' } {
  if (answer.error !== undefined) {
    const supported = (answer.error.data as { supported?: unknown } | undefined)?.supported;
    return answer.error.code === UNSUPPORTED_PROTOCOL_VERSION && Array.isArray(supported) && supported.includes(MODERN_PROTOCOL_VERSION) ? { era: 'modern' } : { era: 'legacy' };
  }
  const result = answer.result as { supportedVersions?: unknown; capabilities?: unknown; instructions?: unknown; _meta?: Record<string, unknown> } | undefined;
  if (!Array.isArray(result?.supportedVersions) || !result.supportedVersions.includes(MODERN_PROTOCOL_VERSION)) return { era: 'legacy' };
  const capabilities = isObject(result.capabilities) ? result.capabilities : {};
  const info = result._meta?.[SERVER_INFO_META_KEY] as { name?: unknown; version?: unknown } | undefined;
  const serverInfo = typeof info?.name === 'string' && typeof info.version === 'string' ? { name: info.name, version: info.version } : undefined;
  return {
    era: 'modern',
    discovered: { capabilities, ...(serverInfo ? { serverInfo } : {}), ...(typeof result.instructions === 'string' ? { instructions: result.instructions } : {}) },
  };
}

/** A modern result that is not the final answer: the server asks the client for input (MRTR) and expects a retry. */
export function isInputRequired(answer: JsonRpcResponse): boolean {
  return (answer.result as { resultType?: unknown } | undefined)?.resultType === 'input_required';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The request that made a server Ready, as a status message names it: discover for a modern server, initialize for a 2025 one. */
export function handshakeName(protocolVersion: string | undefined): string {
  return protocolVersion === MODERN_PROTOCOL_VERSION ? 'server/discover' : 'initialize';
}
