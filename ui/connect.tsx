/**
 * Connect and Disconnect for a hosted server that logs in with OAuth
 * (spec.remote.auth): the same login as `apiary connect`. The page asks the
 * console to start it, opens the authorization server's page in a new tab,
 * and the server turns Running on the event stream once the login is back.
 */
import { useEffect, useState } from 'preact/hooks';
import { api } from './api';
import { condition } from './components';
import type { ApiObject, ServerSpec } from './types';

export function logsInWithOAuth(server: ApiObject): boolean {
  return (server.spec as ServerSpec | undefined)?.remote?.auth?.type === 'oauth';
}

export function needsLogin(server: ApiObject): boolean {
  return condition(server, 'Ready')?.reason === 'AuthorizationRequired';
}

export function LoginActions({ server }: { server: ApiObject }) {
  const name = server.metadata.name;
  const [waiting, setWaiting] = useState<string>();
  const [error, setError] = useState<string>();
  const stuck = needsLogin(server);
  // While a login waits, the console is asked now and then whether it ended without coming back (refused at the
  // provider, timed out): the row says why instead of waiting forever. A login that came back turns the row Running.
  useEffect(() => {
    if (waiting === undefined || !stuck) return undefined;
    const timer = setInterval(() => {
      api.get<{ waiting: boolean; failed?: string }>(`/api/v1/mcpservers/${name}/connect`).then(
        (s) => {
          if (s.waiting) return;
          setWaiting(undefined);
          if (s.failed !== undefined) setError(`the login did not finish: ${s.failed}`);
        },
        () => undefined,
      );
    }, 2000);
    return () => clearInterval(timer);
  }, [waiting, stuck, name]);
  if (!logsInWithOAuth(server)) return null;
  const connectNow = (): void => {
    setError(undefined);
    // Opened within the click, so no popup blocker refuses it; pointed at the login once the console has started it.
    const tab = window.open('', '_blank');
    api.post<{ authorizationUrl: string }>(`/api/v1/mcpservers/${name}/connect`).then(
      ({ authorizationUrl }) => {
        setWaiting(authorizationUrl);
        if (tab === null) return;
        // The authorization server's page gets no handle on this one.
        tab.opener = null;
        tab.location.href = authorizationUrl;
      },
      (e: Error) => {
        tab?.close();
        setError(e.message);
      },
    );
  };
  const disconnect = (): void => {
    setError(undefined);
    setWaiting(undefined);
    api.post(`/api/v1/mcpservers/${name}/disconnect`).catch((e: Error) => setError(e.message));
  };
  return (
    <span class="login-actions">
      {stuck ? (
        <>
          <button type="button" class="small primary" aria-label={`Connect ${name}`} onClick={connectNow}>Connect</button>
          {waiting !== undefined && (
            <span class="muted" data-testid="login-waiting">
              {' '}waiting for the login in the other tab (<a href={waiting} target="_blank" rel="noopener noreferrer">open it again</a>)
            </span>
          )}
        </>
      ) : (
        <button type="button" class="small" aria-label={`Disconnect ${name}`} title="Forget its tokens (revoked where the authorization server offers it)" onClick={disconnect}>Disconnect</button>
      )}
      {error && <span class="error" role="alert">{error}</span>}
    </span>
  );
}
