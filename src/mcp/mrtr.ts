/**
 * MRTR in: a 2026-07-28 server asks for input mid-call by answering
 * `tools/call`, `prompts/get` or `resources/read` with
 * `resultType: "input_required"` and expects the same request again, on a
 * new id, with `inputResponses` (the bare results, by key) and its
 * `requestState` echoed byte for byte. A 2025 client knows only
 * server-to-client requests, so apiary asks it each `inputRequests` entry as
 * one, collects the answers and retries for it. These are the pieces of that
 * loop that do not depend on where the server is (stdio behind the bridge,
 * HTTP behind the proxy).
 */
import { isInputRequired } from './era.js';
import { ErrorCodes, errorResponse, type JsonRpcResponse } from './jsonrpc.js';

/** Rounds apiary retries for a client before giving up: the SDK's default (`inputRequired.maxRounds`). */
export const MAX_INPUT_ROUNDS = 8;

/** The requests a server may embed in `inputRequests`. */
const INPUT_METHODS = new Set(['elicitation/create', 'sampling/createMessage', 'roots/list']);

/** One entry of `inputRequests`: what the client is asked, under the key its answer goes back with. */
export interface InputAsk {
  key: string;
  method: string;
  params: Record<string, unknown>;
}

/** One round the server asked for: its questions and the state to echo. */
export interface InputRound {
  asks: InputAsk[];
  requestState?: string;
}

/**
 * What an `input_required` result asks of a client that declared
 * `capabilities` at initialize: the questions to put to it, or why apiary
 * cannot (a malformed result, or a capability the client lacks: the spec
 * forbids asking for one the request does not declare, and a 2025 client
 * cannot answer it).
 */
export function inputRound(server: string, result: unknown, capabilities: Record<string, unknown>): InputRound | { error: string } {
  const { inputRequests, requestState } = (result ?? {}) as { inputRequests?: unknown; requestState?: unknown };
  if (requestState !== undefined && typeof requestState !== 'string') return { error: `MCP server "${server}" asked for input with a requestState that is not a string` };
  if (inputRequests !== undefined && !isObject(inputRequests)) return { error: `MCP server "${server}" asked for input with inputRequests that is not an object` };
  if (inputRequests === undefined && requestState === undefined) return { error: `MCP server "${server}" asked for input with neither inputRequests nor requestState` };
  const asks: InputAsk[] = [];
  const undeclared: string[] = [];
  for (const [key, entry] of Object.entries(inputRequests ?? {})) {
    const method = isObject(entry) && typeof entry['method'] === 'string' ? entry['method'] : undefined;
    if (method === undefined || !INPUT_METHODS.has(method)) return { error: `MCP server "${server}" asked for input "${key}" with ${method ?? 'no method'}, which is not an input request (elicitation/create, sampling/createMessage, roots/list)` };
    const capability = capabilityFor(method)!;
    if (capabilities[capability] === undefined) undeclared.push(`${method} (the ${capability} capability)`);
    const params = isObject(entry) && isObject(entry['params']) ? entry['params'] : {};
    asks.push({ key, method, params });
  }
  if (undeclared.length > 0) {
    return { error: `MCP server "${server}" asked this client for ${[...new Set(undeclared)].join(', ')}, which it did not declare at initialize; the server was not asked again` };
  }
  return { asks, ...(requestState !== undefined ? { requestState } : {}) };
}

/** The request's params for the next round: the original ones, the answers by key, and the server's state as it gave it. */
export function retryParams(params: Record<string, unknown> | undefined, answers: Record<string, unknown>, requestState: string | undefined): Record<string, unknown> {
  const { inputResponses: _old, requestState: _oldState, ...original } = params ?? {};
  return { ...original, inputResponses: answers, ...(requestState !== undefined ? { requestState } : {}) };
}

/** The error a client gets when the server still asks after MAX_INPUT_ROUNDS rounds. */
export function tooManyRounds(server: string): string {
  return `MCP server "${server}" still asked for input after ${MAX_INPUT_ROUNDS} rounds; apiary stopped retrying the request`;
}

/** The error a client gets when it answered one of the server's questions with an error: the call ends (the server holds nothing to cancel). */
export function refusedAnswer(server: string, method: string, answer: JsonRpcResponse): string {
  return `the client answered MCP server "${server}"'s ${method} with an error (${answer.error?.message ?? 'no result'}); the call ends there`;
}

/** How one request's rounds reach the server and the client. */
export interface InputLoop {
  /** The server's name, for messages. */
  server: string;
  /** What the client declared at initialize. */
  capabilities: Record<string, unknown>;
  /** The request to the server (again), with these params. */
  send(params: Record<string, unknown>): Promise<JsonRpcResponse>;
  /** One question put to the client as a server-to-client request; its answer. */
  ask(ask: InputAsk): Promise<JsonRpcResponse>;
  /** Aborted when the client cancels the request or goes away: the loop stops and answers nothing. */
  signal: AbortSignal;
}

/**
 * Sends a request and, while the server answers `input_required`, asks the
 * client its questions and sends the request again with the answers: the
 * server's final answer, a clear error (too many rounds, a question the
 * client cannot or would not answer), or undefined once `signal` stopped it.
 */
export async function withInputAnswered(params: Record<string, unknown>, loop: InputLoop): Promise<JsonRpcResponse | undefined> {
  let answer = await loop.send(params);
  for (let round = 1; isInputRequired(answer); round++) {
    if (loop.signal.aborted) return undefined;
    const asked = round > MAX_INPUT_ROUNDS ? { error: tooManyRounds(loop.server) } : inputRound(loop.server, answer.result, loop.capabilities);
    if ('error' in asked) return errorResponse(answer.id, ErrorCodes.InternalError, asked.error);
    const answers = await answersTo(asked.asks, loop);
    if (loop.signal.aborted) return undefined;
    if ('refused' in answers) return errorResponse(answer.id, answers.refused.answer.error?.code ?? ErrorCodes.InternalError, refusedAnswer(loop.server, answers.refused.ask.method, answers.refused.answer));
    answer = await loop.send(retryParams(params, answers.results, asked.requestState));
  }
  return answer;
}

/** Every question's answer by key, or the first answered with an error (the rest no longer matter). */
function answersTo(asks: readonly InputAsk[], loop: InputLoop): Promise<{ results: Record<string, unknown> } | { refused: { ask: InputAsk; answer: JsonRpcResponse } }> {
  return new Promise((settle) => {
    const results: Record<string, unknown> = {};
    let left = asks.length;
    // The call's signal outlives the round: its listener goes with the round, or eight rounds leave eight behind.
    const stopped = (): void => resolve({ results });
    const resolve = (outcome: { results: Record<string, unknown> } | { refused: { ask: InputAsk; answer: JsonRpcResponse } }): void => {
      loop.signal.removeEventListener('abort', stopped);
      settle(outcome);
    };
    if (left === 0) return resolve({ results });
    loop.signal.addEventListener('abort', stopped, { once: true });
    for (const ask of asks) {
      void loop.ask(ask).then((answer) => {
        if (answer.error !== undefined || answer.result === undefined) return resolve({ refused: { ask, answer } });
        results[ask.key] = answer.result;
        if (--left === 0) resolve({ results });
      });
    }
  });
}

/** The client capability a server-to-client request needs (undefined: one MCP ties to none). */
export function capabilityFor(method: string): string | undefined {
  return method.startsWith('sampling/') ? 'sampling' : method.startsWith('elicitation/') ? 'elicitation' : method.startsWith('roots/') ? 'roots' : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
