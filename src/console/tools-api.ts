/**
 * The console's Try a tool: a server's tools with their input schemas, and a
 * call of one. Both go where any client goes, through the server's own
 * endpoint at apiary's gateway with apiary's endpoint token, never around
 * it: what the page sees is what a client sees (spec.tools applied, the
 * token checked, the same limits), and a call reaches the server as a
 * client's call does. Each request is one short client of the 2026-07-28
 * revision (stateless: no session is left behind at the endpoint); an `/sse`
 * endpoint, which speaks only the 2025 revision, gets a 2025 client that
 * closes its session when done.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Client, ProtocolError, SSEClientTransport, StreamableHTTPClientTransport, type Transport } from '@modelcontextprotocol/client';
import type { CallToolAnswer, ToolsAnswer } from '../api/console.js';
import type { MCPServerStatus } from '../api/status.js';
import { findCondition } from '../api/status.js';
import { withoutSecrets } from '../api/remote.js';
import { openSecret } from '../crypto/secret-data.js';
import { messageOf } from '../errors.js';
import { secretReferences } from '../manifests/references.js';
import type { Resource, SecretResource } from '../manifests/resource.js';
import { readEndpointToken } from '../mcp/endpoint-token.js';
import { StateLayout } from '../state/layout.js';
import type { ApiContext } from './api.js';
import { CallToolBody, readBodyAs } from './bodies.js';
import { HttpError, sendJson } from './http.js';

/** How long a call may take before the console gives up on it (a person is waiting at the page). */
const CALL_TIMEOUT_MS = 60_000;
const MODERN = '2026-07-28';

/** The server's endpoint, if it is Ready to be called: otherwise a 409 that says why not. */
function endpointOf(ctx: ApiContext, name: string): string {
  const o = ctx.feed.view().objects.find((x) => x.kind === 'MCPServer' && x.name === name);
  if (o === undefined) throw new HttpError(404, 'NotFound', `mcpserver/${name} not found`);
  const status = o.object.status as MCPServerStatus | undefined;
  const ready = findCondition(status?.conditions, 'Ready');
  if (status?.url === undefined || ready?.status !== 'True') {
    throw new HttpError(409, 'NotReady', `mcpserver/${name} is not Ready (${status?.phase ?? 'no status yet'}${ready?.reason ? `: ${ready.reason}` : ''}): its tools cannot be called now`);
  }
  return status.url;
}

/** A client connected to the endpoint as any client would connect, with apiary's token (if the endpoints ask for one). */
async function connect(ctx: ApiContext, url: string, signal: AbortSignal): Promise<{ client: Client; transport: Transport }> {
  const token = await readEndpointToken(new StateLayout(ctx.stateDir));
  const auth = token !== undefined ? { authProvider: { token: async () => token } } : {};
  const sse = new URL(url).pathname.endsWith('/sse');
  const transport = sse ? new SSEClientTransport(new URL(url), auth) : new StreamableHTTPClientTransport(new URL(url), auth);
  const client = new Client({ name: 'apiary-console', version: ctx.version }, { capabilities: {}, versionNegotiation: { mode: sse ? 'legacy' : { pin: MODERN } } });
  try {
    await client.connect(transport, { signal, timeout: CALL_TIMEOUT_MS });
  } catch (err) {
    await client.close().catch(() => undefined);
    throw unreachable(url, err);
  }
  return { client, transport };
}

function unreachable(url: string, err: unknown): HttpError {
  return new HttpError(502, 'EndpointUnavailable', `the endpoint ${url} did not answer: ${messageOf(err)}`);
}

/**
 * Shorter values are left: masking every "ab" would garble any answer and
 * hide nothing a person could not guess.
 */
const MIN_MASKED = 4;

/** The values of the secrets the server is given (env and envFrom), as it runs with them: what its answers must not carry to the page. */
async function boundValues(ctx: ApiContext, name: string): Promise<string[]> {
  const all: Resource[] = ctx.feed.view().objects.flatMap((o) => (o.resource ? [o.resource] : []));
  const server = all.find((r) => r.kind === 'MCPServer' && r.name === name);
  if (server?.kind !== 'MCPServer') return [];
  const values: string[] = [];
  for (const secretName of new Set(secretReferences(server).map((ref) => ref.secret))) {
    const secret = all.find((r): r is SecretResource => r.kind === 'Secret' && r.name === secretName);
    if (secret === undefined) continue;
    for (const entry of (await openSecret(secret, ctx.keys)).values()) {
      const value = entry.value?.reveal();
      if (value !== undefined && value.length >= MIN_MASKED) values.push(value);
    }
  }
  return values;
}

/** Every string in `value` with the secrets' values replaced by [redacted] (as the gateway does to a hosted server's errors). */
function redactDeep(value: unknown, secrets: readonly string[]): unknown {
  if (typeof value === 'string') return withoutSecrets(value, secrets);
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, secrets));
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [withoutSecrets(k, secrets), redactDeep(v, secrets)]));
  return value;
}

/** Aborted when the page goes away: a call nobody waits for is not held open. */
function pageGone(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableEnded) controller.abort();
  });
  return controller.signal;
}

async function withClient<T>(ctx: ApiContext, name: string, res: ServerResponse, use: (client: Client, signal: AbortSignal, url: string) => Promise<T>): Promise<T> {
  const url = endpointOf(ctx, name);
  const signal = pageGone(res);
  const { client, transport } = await connect(ctx, url, signal);
  try {
    return await use(client, signal, url);
  } finally {
    // A 2025 session ends here (DELETE); a 2026-07-28 client holds none.
    if (transport instanceof StreamableHTTPClientTransport && transport.sessionId !== undefined) await transport.terminateSession().catch(() => undefined);
    await client.close().catch(() => undefined);
  }
}

/** GET /api/v1/mcpservers/{name}/tools: what a client at the endpoint is offered, input schemas included. */
export async function listTools(ctx: ApiContext, _req: IncomingMessage, res: ServerResponse, [name]: string[]): Promise<void> {
  const answer = await withClient(ctx, name!, res, async (client, signal, url) => {
    try {
      const { tools } = await client.listTools(undefined, { signal, timeout: CALL_TIMEOUT_MS });
      return { tools: tools.map((t) => ({ name: t.name, ...(t.title ? { title: t.title } : {}), ...(t.description ? { description: t.description } : {}), inputSchema: t.inputSchema })) };
    } catch (err) {
      throw err instanceof ProtocolError ? new HttpError(502, 'ToolsListFailed', `mcpserver/${name} did not list its tools: ${err.message}`) : unreachable(url, err);
    }
  });
  const secrets = await boundValues(ctx, name!);
  sendJson(res, 200, secrets.length > 0 ? redactDeep(answer satisfies ToolsAnswer, secrets) : answer);
}

/**
 * POST /api/v1/mcpservers/{name}/call: one tools/call. The server's answer
 * comes back as it is, an error result (isError) included; a JSON-RPC error
 * from it (an unknown tool, invalid arguments) is an answer too, under
 * `error`, so the page can show it beside the form. Only not reaching the
 * endpoint is an HTTP error.
 */
export async function callTool(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, [name]: string[]): Promise<void> {
  const body = await readBodyAs(req, CallToolBody);
  const started = performance.now();
  const answer = await withClient(ctx, name!, res, async (client, signal, url): Promise<CallToolAnswer> => {
    const took = () => Math.round(performance.now() - started);
    try {
      const result = await client.callTool({ name: body.tool, arguments: body.arguments ?? {} }, { signal, timeout: CALL_TIMEOUT_MS });
      return { tool: body.tool, ms: took(), result: { content: result.content, ...(result.structuredContent !== undefined && result.structuredContent !== null ? { structuredContent: result.structuredContent } : {}), isError: result.isError === true } };
    } catch (err) {
      if (err instanceof ProtocolError) return { tool: body.tool, ms: took(), error: { code: err.code, message: err.message } };
      throw unreachable(url, err);
    }
  });
  // A tool may print what it was given (an environment, a header): no secret value reaches the page, as in every other answer.
  const secrets = await boundValues(ctx, name!);
  sendJson(res, 200, secrets.length > 0 ? redactDeep(answer, secrets) : answer);
}
