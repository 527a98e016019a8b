/** Talking to the console's API: JSON in, JSON out, errors as the API's Status objects. */
// With .js: test/console-page.test.ts runs this file under Node's module rules too.
import { keepSession, sessionHeaders } from './session.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly hints: string[] = [],
  ) {
    super(message);
  }
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  // The session goes as a header; the console reads no cookie, so none is sent.
  const init: RequestInit = { method, credentials: 'omit', headers: { Accept: 'application/json', ...sessionHeaders() } };
  // Every change is a JSON body: the server refuses anything else.
  if (method !== 'GET') {
    init.headers = { ...init.headers, 'Content-Type': 'application/json' };
    init.body = JSON.stringify(body ?? {});
  }
  const res = await fetch(path, init);
  const text = await res.text();
  const data = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (!res.ok) throw new ApiError(res.status, String(data['reason'] ?? res.statusText), String(data['message'] ?? res.statusText), (data['hints'] as string[]) ?? []);
  return data as T;
}

export const api = {
  get: <T>(path: string) => request<T>('GET', path),
  post: <T>(path: string, body?: unknown) => request<T>('POST', path, body),
  put: <T>(path: string, body?: unknown) => request<T>('PUT', path, body),
  del: <T>(path: string, body?: unknown) => request<T>('DELETE', path, body),
};

/** Trades the login link's one-time code for a session; false when the code is spent, expired or unknown. */
export async function signIn(code: string): Promise<boolean> {
  try {
    keepSession((await api.post<{ token: string }>('/login', { code })).token);
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return false;
    throw err;
  }
}
