/** The console's shell: sign-in check, navigation, the live store, the disconnected banner. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { AccessPage } from './access';
import { api, ApiError, signIn } from './api';
import { AuditPage } from './audit';
import { CatalogEntryPage, CatalogInstallPage, CatalogPage } from './catalog';
import { ClientsPage } from './clients';
import { InstallPage } from './install';
import { loadConsoleInfo } from './keyring';
import { useRoute } from './router';
import { SecretsPage } from './secrets';
import { ServerDetailPage, ServersPage } from './servers';
import { forgetSession, takeLoginCode } from './session';
import { store } from './store';
import type { ConsoleInfo } from './types';

function useStore(): number {
  const [version, setVersion] = useState(store.version);
  useEffect(() => store.subscribe(() => setVersion(store.version)), []);
  return version;
}

/** Out of the address bar before anything else runs. */
const loginCode = takeLoginCode();
// A new link opened in a tab already at this page changes only the fragment, which loads nothing: load it.
addEventListener('hashchange', () => {
  if (location.hash.startsWith('#login=')) location.reload();
});

type AuthState = 'checking' | 'in' | 'out' | 'expired';

/** Trades the link's code (if the address had one) for a session, then asks whether the session is good. */
async function startSession(): Promise<{ state: AuthState; info?: ConsoleInfo }> {
  const spent = loginCode !== undefined && !(await signIn(loginCode).catch(() => false));
  try {
    return { state: 'in', info: await loadConsoleInfo() };
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return { state: spent ? 'expired' : 'out' };
    return { state: 'in' };
  }
}

function SignIn({ expired }: { expired: boolean }) {
  return (
    <main class="signin">
      <h1>apiary console</h1>
      {expired && <p class="error">That login link was already used or has expired. Each link signs in once, within a few minutes.</p>}
      <p>Sign in with the link the controller prints. For a new one, run:</p>
      <pre>apiary ui</pre>
    </main>
  );
}

function App() {
  const route = useRoute();
  useStore();
  const [info, setInfo] = useState<ConsoleInfo>();
  const [auth, setAuth] = useState<AuthState>('checking');
  useEffect(() => {
    void startSession().then(({ state, info }) => {
      setInfo(info);
      setAuth(state);
      if (state === 'in') store.start();
    });
  }, []);
  if (auth === 'out' || auth === 'expired') return <SignIn expired={auth === 'expired'} />;
  if (auth === 'checking') return null;
  const nav = (page: string, href: string, label: string) => (
    <a href={href} aria-current={route.page === page || (page === 'servers' && route.page === 'server') || (page === 'catalog' && route.page.startsWith('catalog')) ? 'page' : undefined}>{label}</a>
  );
  return (
    <>
      <header>
        <span class="brand" aria-hidden="true">⬡</span>
        <span class="title">apiary</span>
        <nav aria-label="Main">
          {nav('servers', '#/', 'Servers')}
          {nav('secrets', '#/secrets', 'Secrets')}
          {nav('catalog', '#/catalog', 'Catalog')}
          {nav('install', '#/install', 'Install')}
          {nav('clients', '#/clients', 'Clients')}
          {nav('access', '#/access', 'Access')}
          {nav('audit', '#/audit', 'Audit')}
        </nav>
        <span class="where" title={info?.stateDir}>{info?.dir}</span>
        <button
          type="button"
          class="small"
          onClick={() => {
            void api.post('/logout').finally(() => {
              forgetSession();
              location.reload();
            });
          }}
        >
          Sign out
        </button>
      </header>
      {!store.connected && store.synced && (
        <div class="banner" role="status" data-testid="disconnected">Disconnected from the controller: reconnecting... (what you see may be out of date)</div>
      )}
      {info?.key.state === 'unavailable' && route.page === 'servers' && (
        <div class="banner bad" role="alert">The master key cannot be used: {info.key.message} <a href="#/secrets">What to do</a></div>
      )}
      <main>
        {route.page === 'servers' && <ServersPage />}
        {route.page === 'server' && route.name && <ServerDetailPage name={route.name} />}
        {route.page === 'secrets' && <SecretsPage {...(route.params.get('add') !== null ? { add: route.params.get('add')! } : {})} {...(route.params.get('key') ? { addKey: route.params.get('key')! } : {})} />}
        {route.page === 'install' && <InstallPage />}
        {route.page === 'clients' && <ClientsPage />}
        {route.page === 'access' && <AccessPage params={route.params} />}
        {route.page === 'audit' && <AuditPage params={route.params} />}
        {route.page === 'catalog' && <CatalogPage {...(route.params.get('search') ? { search: route.params.get('search')! } : {})} />}
        {route.page === 'catalog-entry' && <CatalogEntryPage name={route.params.get('name') ?? ''} {...(route.params.get('version') ? { version: route.params.get('version')! } : {})} />}
        {route.page === 'catalog-install' && <CatalogInstallPage name={route.params.get('name') ?? ''} {...(route.params.get('version') ? { version: route.params.get('version')! } : {})} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
