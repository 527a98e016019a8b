/**
 * The hot 2026-07-28 requests answered without the SDK's per-request
 * machinery (a web Request, a fresh `Server` connected to a one-exchange
 * transport, its validation, a Response turned back into node's): that
 * costs several times what forwarding does.
 *
 * The SDK stays the reference. A request comes here only once the SDK's
 * classifier has made it modern, and only when it is one whose every check
 * this module can repeat exactly; its answer is written here only when its
 * shape is one whose encoding this module repeats exactly (the SDK's encode
 * contract: its tools/call normalisation, `resultType`, `ttlMs`/`cacheScope`,
 * `_meta` serverInfo). Anything else (an error, `input_required`, a content
 * block other than text, an unusual `_meta`) is served by the SDK with the
 * server's answer already in hand, so a client sees the same bytes either
 * way: test/modern-fast.test.ts holds both paths to that.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isJsonContentType, type CacheHint } from '@modelcontextprotocol/server';
import type { Id } from './jsonrpc.js';

/** `_meta` keys the specification reserves; the SDK's schemas know some of them. */
const RESERVED_PREFIX = 'io.modelcontextprotocol/';

/** The `_meta` key a modern result names its server under. */
const SERVER_INFO_KEY = `${RESERVED_PREFIX}serverInfo`;

/** The envelope keys the SDK lifts out of `_meta` before its checks see the rest. */
const ENVELOPE_KEYS = new Set(['protocolVersion', 'clientCapabilities', 'clientInfo', 'logLevel'].map((key) => `${RESERVED_PREFIX}${key}`));

/** Trace context, which the SDK passes on unchecked when it is a string. */
const TRACE_KEYS = new Set(['traceparent', 'tracestate', 'baggage']);

/** The body field each method's `Mcp-Name` header must repeat (SEP-2243). */
const NAME_SOURCE: Readonly<Record<string, string>> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

/** Results that carry `ttlMs`/`cacheScope` on 2026-07-28 (the SDK's closed list, less discover, which is not forwarded). */
const CACHEABLE = new Set(['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list', 'resources/read']);

/** The SDK's cache defaults where no hint is configured (resources/read). */
const DEFAULT_HINT: Required<CacheHint> = { ttlMs: 0, cacheScope: 'private' };

type Params = Record<string, unknown>;

/**
 * Whether the request is one the fast path serves exactly as the SDK would:
 * JSON by its Content-Type, the standard headers present and agreeing in
 * their plain form, and for tools/call the params the SDK's schema accepts.
 * A false here sends it to the SDK, which answers (or refuses) it as always.
 */
export function fastRequest(req: IncomingMessage, method: string, params: Params): boolean {
  if (!isJsonContentType(req.headers['content-type'] ?? null)) return false;
  if (req.headers['mcp-protocol-version'] === undefined || req.headers['mcp-method'] === undefined) return false;
  // A retry of an input_required exchange (MRTR) has its own checks at the SDK.
  if ('inputResponses' in params || 'requestState' in params) return false;
  const source = NAME_SOURCE[method];
  if (source !== undefined) {
    const named = params[source];
    // The SDK decodes a Base64 sentinel and strips whitespace before comparing: only the plain, equal form is taken here.
    if (typeof named !== 'string' || req.headers['mcp-name'] !== named || named.startsWith('=?')) return false;
  }
  return method === 'tools/call' ? plainCallParams(params) : true;
}

/** tools/call params the SDK's 2026-07-28 schema accepts, in the forms checked here; anything else is its to judge. */
function plainCallParams(params: Params): boolean {
  for (const [key, value] of Object.entries(params)) {
    if (key === 'name' && typeof value === 'string') continue;
    if (key === 'arguments' && isPlainObject(value)) continue;
    if (key === '_meta' && isPlainObject(value) && plainRequestMeta(value)) continue;
    return false;
  }
  return true;
}

function plainRequestMeta(meta: Params): boolean {
  return Object.entries(meta).every(([key, value]) => {
    if (ENVELOPE_KEYS.has(key)) return true;
    if (TRACE_KEYS.has(key)) return typeof value === 'string';
    if (key === 'progressToken') return typeof value === 'string' || Number.isSafeInteger(value);
    return false;
  });
}

/**
 * The result as the SDK's `Server` would send it for `method`, or undefined
 * when its shape is not one repeated here (the SDK then shapes it). The
 * steps are the SDK's, in its order: tools/call's normalisation (its schema
 * keeps the known fields in schema order, and a text block's type and
 * text), then deleted fields, `resultType`, cache fields, serverInfo.
 */
export function encodeResult(method: string, result: unknown, serverInfo: Params, hint: CacheHint | undefined): Params | undefined {
  // The SDK strips `capabilities.tasks`, and apiary's writer rewrites a `supportedVersions` list (discover's): rare enough to leave to them.
  if (!isPlainObject(result) || 'capabilities' in result || 'supportedVersions' in result) return undefined;
  const provided = result['resultType'];
  if (provided !== undefined && provided !== 'complete') return undefined;
  const shaped = method === 'tools/call' ? plainCallResult(result) : method === 'tools/list' ? withoutExecution(result) : result;
  if (shaped === undefined) return undefined;
  const typed = provided === undefined ? { ...shaped, resultType: 'complete' } : shaped;
  return withServerInfo(CACHEABLE.has(method) ? withCacheFields(typed, hint ?? DEFAULT_HINT) : typed, serverInfo);
}

/** A tools/call result of text blocks, as the SDK's schema gives it back (known fields in its order); undefined for anything richer. */
function plainCallResult(result: Params): Params | undefined {
  const { _meta, content, structuredContent, isError, resultType, ...rest } = result;
  if (Object.keys(rest).length > 0) return undefined;
  if (isError !== undefined && typeof isError !== 'boolean') return undefined;
  if (structuredContent !== undefined && !isPlainObject(structuredContent)) return undefined;
  const blocks = content === undefined ? [] : textBlocks(content);
  const meta = _meta === undefined ? undefined : plainResultMeta(_meta);
  if (blocks === undefined || meta === null) return undefined;
  return {
    ...(meta !== undefined ? { _meta: meta } : {}),
    content: blocks,
    ...(structuredContent !== undefined ? { structuredContent } : {}),
    ...(isError !== undefined ? { isError } : {}),
    ...(resultType !== undefined ? { resultType } : {}),
  };
}

/**
 * A result's `_meta` as the SDK's schema gives it back: a server's own
 * serverInfo (a 2026-07-28 server names itself on every result) first, as
 * name and version, the rest as it came; null for what it would reshape
 * otherwise (other reserved keys, a fuller serverInfo).
 */
function plainResultMeta(meta: unknown): Params | null {
  if (!isPlainObject(meta)) return null;
  const { [SERVER_INFO_KEY]: info, ...rest } = meta;
  if (Object.keys(rest).some((key) => key.startsWith(RESERVED_PREFIX))) return null;
  if (info === undefined) return meta;
  if (!isPlainObject(info) || Object.keys(info).length !== 2 || typeof info['name'] !== 'string' || typeof info['version'] !== 'string') return null;
  return { [SERVER_INFO_KEY]: { name: info['name'], version: info['version'] }, ...rest };
}

function textBlocks(content: unknown): Params[] | undefined {
  if (!Array.isArray(content)) return undefined;
  const blocks: Params[] = [];
  for (const block of content) {
    if (!isPlainObject(block) || block['type'] !== 'text' || typeof block['text'] !== 'string' || Object.keys(block).length !== 2) return undefined;
    blocks.push({ type: 'text', text: block['text'] });
  }
  return blocks;
}

/** Tools without `execution` (gone from 2026-07-28: tasks are an extension), the rest of each tool as it was. */
function withoutExecution(result: Params): Params {
  const tools = result['tools'];
  if (!Array.isArray(tools) || !tools.some((t) => isPlainObject(t) && 'execution' in t)) return result;
  return {
    ...result,
    tools: tools.map((tool: unknown) => {
      if (!isPlainObject(tool) || !('execution' in tool)) return tool;
      const { execution: _gone, ...kept } = tool;
      return kept;
    }),
  };
}

/** The server's own valid cache fields win; the hint fills what it left out (each keeps its place in the object). */
function withCacheFields(result: Params, hint: CacheHint): Params {
  const ttl = result['ttlMs'];
  const scope = result['cacheScope'];
  return {
    ...result,
    ttlMs: typeof ttl === 'number' && Number.isSafeInteger(ttl) && ttl >= 0 ? ttl : (hint.ttlMs ?? DEFAULT_HINT.ttlMs),
    cacheScope: scope === 'public' || scope === 'private' ? scope : (hint.cacheScope ?? DEFAULT_HINT.cacheScope),
  };
}

/** serverInfo in `_meta`, unless the server named itself there already or sent a `_meta` that is no object. */
function withServerInfo(result: Params, serverInfo: Params): Params {
  const meta = result['_meta'];
  if (meta === undefined) return { ...result, _meta: { [SERVER_INFO_KEY]: serverInfo } };
  if (!isPlainObject(meta) || meta[SERVER_INFO_KEY] !== undefined) return result;
  return { ...result, _meta: { ...meta, [SERVER_INFO_KEY]: serverInfo } };
}

/** The answer as the SDK writes it: `result` first, then `jsonrpc` and `id`. */
export function writeResult(res: ServerResponse, id: Id, result: Params): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ result, jsonrpc: '2.0', id }));
}

function isPlainObject(value: unknown): value is Params {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
