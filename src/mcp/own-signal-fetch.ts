/**
 * The fetch apiary gives the MCP SDK's client transports. A transport hands
 * many requests of a session the session's one AbortSignal (the HTTP+SSE
 * transport every POST, the Streamable HTTP one every message it sends
 * without a request signal of the SDK's own: all that `apiary proxy`
 * forwards, notifications, answers), and undici adds an abort listener to a
 * request's signal that it takes off only when the request is garbage
 * collected. So a long session (an HTTP+SSE server's liveness pings for as
 * long as it runs, `apiary proxy` for a client's whole day) piled listeners on
 * that one signal until the next full collection, with a
 * MaxListenersExceededWarning from 1500 on. Here each request has a signal of
 * its own that follows the session's, linked for as long as the exchange
 * lasts: until the fetch fails, or its body is read to the end or given up.
 * (AbortSignal.any would link without a listener, but keeps something per
 * request in the session's signal until a collection too.)
 */

/** Statuses whose response has no body: a Response with one cannot be made again. */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

export async function fetchWithOwnSignal(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const shared = init?.signal;
  if (shared === undefined || shared === null || shared.aborted) return fetch(input, init);
  const own = new AbortController();
  const follow = (): void => own.abort(shared.reason);
  shared.addEventListener('abort', follow, { once: true });
  const unlink = (): void => shared.removeEventListener('abort', follow);
  let response: Response;
  try {
    response = await fetch(input, { ...init, signal: own.signal });
  } catch (err) {
    unlink();
    throw err;
  }
  return untilRead(response, unlink);
}

/** The response, calling `done` once its body has been read to the end, failed or been cancelled. */
function untilRead(response: Response, done: () => void): Response {
  if (response.body === null || NULL_BODY.has(response.status) || response.status < 200) {
    done();
    return response;
  }
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  response.body.pipeTo(writable).then(done, done);
  return new Response(readable, { status: response.status, statusText: response.statusText, headers: response.headers });
}
