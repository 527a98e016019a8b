/** Hash routes: #/ (servers), #/servers/NAME, #/secrets?add=NAME&key=KEY, #/install, #/clients, #/catalog, #/catalog/entry?name=N, #/catalog/install?name=N&version=V, #/access?user=U&group=G (or token=local), #/audit?server=S&user=U&since=D. */
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  page: 'servers' | 'server' | 'secrets' | 'install' | 'clients' | 'catalog' | 'catalog-entry' | 'catalog-install' | 'access' | 'audit';
  name?: string;
  params: URLSearchParams;
}

export function parseRoute(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#/, '').split('?');
  const params = new URLSearchParams(query);
  const parts = path.split('/').filter(Boolean);
  if (parts[0] === 'servers' && parts[1]) return { page: 'server', name: decodeURIComponent(parts[1]), params };
  if (parts[0] === 'secrets') return { page: 'secrets', params };
  if (parts[0] === 'install') return { page: 'install', params };
  if (parts[0] === 'clients') return { page: 'clients', params };
  if (parts[0] === 'access') return { page: 'access', params };
  if (parts[0] === 'audit') return { page: 'audit', params };
  if (parts[0] === 'catalog') return { page: parts[1] === 'entry' ? 'catalog-entry' : parts[1] === 'install' ? 'catalog-install' : 'catalog', params };
  return { page: 'servers', params };
}

export function navigate(hash: string): void {
  location.hash = hash;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
