/**
 * The page's session: a token traded for the one-time code in the login
 * link's fragment, kept in this tab's sessionStorage and sent as
 * `Authorization: Bearer`. sessionStorage belongs to this origin, port
 * included; a cookie would reach every port on 127.0.0.1, so none is used.
 */
const KEY = 'apiary.session';

export function sessionToken(): string | undefined {
  try {
    return sessionStorage.getItem(KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

export function keepSession(token: string): void {
  sessionStorage.setItem(KEY, token);
}

export function forgetSession(): void {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // Storage turned off: there was nothing kept.
  }
}

/** The header every API call and stream sends. */
export function sessionHeaders(): Record<string, string> {
  const token = sessionToken();
  return token === undefined ? {} : { Authorization: `Bearer ${token}` };
}

/**
 * The code of a `#login=CODE` address, taken out of the address bar at once
 * (so it is in no history entry, bookmark or screenshot) and returned.
 */
export function takeLoginCode(): string | undefined {
  const match = /^#login=([\w-]+)$/.exec(location.hash);
  if (match === null) return undefined;
  history.replaceState(null, '', location.pathname + location.search);
  return match[1];
}
