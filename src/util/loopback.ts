/**
 * DNS rebinding protection, one rule for every port apiary serves on
 * loopback (each server's MCP endpoint, the aggregate, the console): a
 * request is answered only when its Host names a loopback address and its
 * Origin, when a browser sends one, is a loopback page. What a port adds on
 * top (the console's same-origin rule for writes) stays with that port.
 */

const LOOPBACK_HOSTNAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

/** The headers the check reads (an IncomingMessage has them). */
export interface HostHeaders {
  headers: { host?: string | undefined; origin?: string | undefined };
}

/**
 * Why a request is refused for its Host or Origin, if it is. With `port`,
 * the Host must also name that port (the console knows its own; an MCP
 * endpoint is reached through forwarded ports too, so it checks the name only).
 */
export function loopbackRefusal(req: HostHeaders, port?: number): string | undefined {
  const host = req.headers.host ?? '';
  const parsed = /^(\[[^\]]*\]|[^:[\]]*)(?::(\d+))?$/.exec(host);
  const named = parsed !== null && LOOPBACK_HOSTNAMES.has(parsed[1]!);
  if (!named || (port !== undefined && parsed[2] !== String(port))) {
    return `Host "${host}" is not allowed: apiary answers only to 127.0.0.1, localhost and [::1]${port !== undefined ? ` on port ${port}` : ''}`;
  }
  const origin = req.headers.origin;
  if (origin === undefined) return undefined;
  return isLoopbackOrigin(origin) ? undefined : `Origin "${origin}" is not allowed`;
}

/** A page served from loopback ('null', a sandboxed or file: page, is none). */
function isLoopbackOrigin(origin: string): boolean {
  if (origin === 'null') return false;
  try {
    return LOOPBACK_HOSTNAMES.has(new URL(origin).hostname);
  } catch {
    return false;
  }
}
