/** The JSON-RPC 2.0 shapes MCP uses, from the SDK's own types; apiary routes messages, it does not interpret most of them. */
import { JSONRPCMessageSchema, type JSONRPCErrorResponse, type JSONRPCNotification, type JSONRPCRequest, type JSONRPCResultResponse, type RequestId } from '@modelcontextprotocol/sdk/types.js';

export type Id = RequestId;

/** The SDK's message types: a request, a notification (params loosely typed: apiary routes most without reading them). */
export type JsonRpcRequest = JSONRPCRequest;
export type JsonRpcNotification = JSONRPCNotification;

/**
 * The SDK's result and error responses. An error answering a message that
 * could not be read carries id null (JSON-RPC 2.0, section 5), which the
 * SDK's error type leaves out; hence the one widening here.
 */
export type JsonRpcResponse = (JSONRPCResultResponse & { error?: undefined }) | (Omit<JSONRPCErrorResponse, 'id'> & { id: Id | null; result?: undefined });

export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

export function isRequest(m: JsonRpcMessage): m is JsonRpcRequest {
  return 'method' in m && 'id' in m && m.id !== undefined;
}

export function isNotification(m: JsonRpcMessage): m is JsonRpcNotification {
  return 'method' in m && !('id' in m && m.id !== undefined);
}

export function isResponse(m: JsonRpcMessage): m is JsonRpcResponse {
  return !('method' in m) && ('result' in m || 'error' in m);
}

export const ErrorCodes = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** apiary: the server is not running or not ready. */
  ServerUnavailable: -32001,
  /** apiary: the server restarted while handling the request. */
  ServerRestarted: -32002,
} as const;

/**
 * The codes of the 2026-07-28 revision, and apiary's own codes for its
 * clients: that revision forbids -32002, calls -32000..-32019 legacy, and
 * keeps -32020..-32099 for the specification, so apiary's own conditions get
 * codes outside -32768..-32000 there (the legacy ones stay for 2025 clients).
 */
export const ModernErrorCodes = {
  HeaderMismatch: -32020,
  MissingRequiredClientCapability: -32021,
  UnsupportedProtocolVersion: -32022,
  /** apiary: the server is not running or not ready (-32001 to a 2025 client). */
  ServerUnavailable: -31001,
  /** apiary: the server restarted while handling the request (-32002 to a 2025 client). */
  ServerRestarted: -31002,
} as const;

/** An error code as a 2026-07-28 client may receive it: apiary's legacy-range codes become their modern ones. */
export function modernErrorCode(code: number): number {
  if (code === ErrorCodes.ServerUnavailable) return ModernErrorCodes.ServerUnavailable;
  if (code === ErrorCodes.ServerRestarted) return ModernErrorCodes.ServerRestarted;
  return code;
}

export function errorResponse(id: Id | null, code: number, message: string): JsonRpcResponse {
  return { jsonrpc: '2.0', id, error: { code, message } };
}

/** Parses one JSON-RPC message (or a batch); undefined when it is not one. */
export function parseMessages(value: unknown): JsonRpcMessage[] | undefined {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) return undefined;
  for (const m of list) {
    if (m === null || typeof m !== 'object' || (m as { jsonrpc?: unknown }).jsonrpc !== '2.0') return undefined;
  }
  return list as JsonRpcMessage[];
}

export interface CheckedBatch {
  /** Well-formed messages, in order, each request id once. */
  messages: JsonRpcMessage[];
  /** The answer to each element that was not a valid message (or repeated an id), as JSON-RPC says. */
  rejected: JsonRpcResponse[];
  batch: boolean;
}

/**
 * A client's POST body, element by element, against the MCP SDK's own
 * JSON-RPC schema: an element that is not a message (`"method": 123`,
 * `"id": null`) is answered with Invalid Request instead of being forwarded
 * to a server that would never answer it; a request id repeated within one
 * batch is answered once per repeat, never merged.
 */
export function checkClientMessages(value: unknown): CheckedBatch | undefined {
  const batch = Array.isArray(value);
  const list: unknown[] = batch ? value : [value];
  if (list.length === 0) return undefined;
  const messages: JsonRpcMessage[] = [];
  const rejected: JsonRpcResponse[] = [];
  const ids = new Set<Id>();
  for (const element of list) {
    const id = idOf(element);
    if (!JSONRPCMessageSchema.safeParse(element).success) {
      rejected.push(errorResponse(id, ErrorCodes.InvalidRequest, 'not a valid JSON-RPC 2.0 message'));
      continue;
    }
    const message = element as JsonRpcMessage;
    if (isRequest(message)) {
      if (ids.has(message.id)) {
        rejected.push(errorResponse(message.id, ErrorCodes.InvalidRequest, `request id ${JSON.stringify(message.id)} is used twice in this batch`));
        continue;
      }
      ids.add(message.id);
    }
    messages.push(message);
  }
  return { messages, rejected, batch };
}

function idOf(value: unknown): Id | null {
  const id = typeof value === 'object' && value !== null ? (value as { id?: unknown }).id : undefined;
  return typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)) ? id : null;
}
