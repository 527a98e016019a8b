/**
 * The one answer to a call over a rate limit (issue 26, fixed for every
 * endpoint): a JSON-RPC error in an HTTP 200, code 429, message "Rate limit
 * exceeded", and the retry hint in `data`. Not an HTTP 429: both MCP SDKs
 * turn that into a transport error and lose the body (step-17 research §7),
 * while a JSON-RPC error reaches the caller with `data` intact. Code 429 is
 * outside -32768..-32000, so it is legal in both protocol eras, and it is
 * ToolHive's code for the same condition.
 */
import type { RateLimited } from '../api/gate.js';
import type { Id, JsonRpcResponse } from './jsonrpc.js';

export const RATE_LIMITED_CODE = 429;
export const RATE_LIMITED_MESSAGE = 'Rate limit exceeded';

export interface RateLimitErrorData {
  /** Whole seconds, rounded up: what a Retry-After header says. */
  retryAfterSeconds: number;
  retryAfterMs: number;
  limit: RateLimited['limit'];
  server: string;
  tool?: string;
}

export function rateLimitError(id: Id | null, limited: RateLimited, server: string, tool: string | undefined): JsonRpcResponse {
  const data: RateLimitErrorData = { retryAfterSeconds: retryAfterSeconds(limited), retryAfterMs: limited.retryAfterMs, limit: limited.limit, server, ...(tool !== undefined ? { tool } : {}) };
  return { jsonrpc: '2.0', id, error: { code: RATE_LIMITED_CODE, message: RATE_LIMITED_MESSAGE, data } };
}

/** The Retry-After header's value (RFC 9110 §10.2.3: whole seconds), for an endpoint that writes the HTTP answer itself. */
export function retryAfterSeconds(limited: RateLimited): number {
  return Math.ceil(limited.retryAfterMs / 1000);
}
