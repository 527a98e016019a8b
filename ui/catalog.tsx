/**
 * The Catalog: servers from server.json catalogs (bundled, files, an MCP
 * registry), each with what it needs; Install opens a form with every
 * variable the entry declares: required marks, descriptions, defaults,
 * choices, and for secrets a pick-or-type field (an existing secret's key,
 * or a value typed here and sealed into a new secret named after the
 * variable). Nothing is written before the manifests are reviewed.
 */
import { useEffect, useState } from 'preact/hooks';
import { api } from './api';
import { NAME_PATTERN } from './patterns';
import { ErrorNote } from './components';
import { existingKeys, guessSource, PlanView, useReviewThenWrite } from './install';
import { KeyringScreen, useConsoleInfo } from './keyring';
import { navigate } from './router';
import type { CatalogAnswer, CatalogEntryAnswer, CatalogInstallAnswer, CatalogVariableView } from './types';

interface ServerJsonView {
  name: string;
  title?: string;
  version: string;
  description: string;
  websiteUrl?: string;
  repository?: { url: string };
  packages?: { registryType: string; identifier: string; version?: string; transport: { type: string } }[];
  remotes?: { type: string; url: string }[];
}

type Entry = CatalogEntryAnswer<ServerJsonView>;

export function CatalogPage({ search: initial }: { search?: string }) {
  const [search, setSearch] = useState(initial ?? '');
  const [answer, setAnswer] = useState<CatalogAnswer>();
  const [error, setError] = useState<Error>();
  useEffect(() => {
    const timer = setTimeout(() => {
      api.get<CatalogAnswer>(`/api/v1/catalog${search ? `?search=${encodeURIComponent(search)}` : ''}`).then(setAnswer, setError);
    }, 150);
    return () => clearTimeout(timer);
  }, [search]);
  return (
    <section aria-labelledby="catalog-title">
      <h1 id="catalog-title">Catalog</h1>
      <label class="search">
        Search
        <input type="search" value={search} placeholder="memory, github, files..." onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
      </label>
      <ErrorNote error={error} />
      {answer && answer.items.length === 0 && <p class="empty">No catalog entry matches "{search}".</p>}
      <ul class="cards" aria-label="Catalog entries">
        {answer?.items.map((item) => (
          <li key={item.name} data-entry={item.name}>
            <a href={`#/catalog/entry?name=${encodeURIComponent(item.name)}`}>
              <strong>{item.title ?? item.name}</strong>
            </a>
            <span class="muted">
              {item.name} {item.version} · {item.transport} · {item.source === 'bundled' ? 'bundled' : item.source}
            </span>
            <p>{item.description}</p>
          </li>
        ))}
      </ul>
      {answer && answer.warnings.length > 0 && (
        <ul class="problems" aria-label="Catalog warnings">
          {answer.warnings.map((w, i) => (
            <li key={i}>{w}</li>
          ))}
        </ul>
      )}
      {answer && answer.problems.length > 0 && (
        <details class="problems">
          <summary>{answer.problems.length} catalog {answer.problems.length === 1 ? 'entry was' : 'entries were'} skipped</summary>
          <ul>
            {answer.problems.map((p, i) => (
              <li key={i}>
                {p.where}: {p.field}: {p.message}
              </li>
            ))}
          </ul>
        </details>
      )}
    </section>
  );
}

function useEntry(name: string, version?: string): { entry?: Entry; error?: Error } {
  const [entry, setEntry] = useState<Entry>();
  const [error, setError] = useState<Error>();
  useEffect(() => {
    api.get<Entry>(`/api/v1/catalog/entry?name=${encodeURIComponent(name)}${version ? `&version=${encodeURIComponent(version)}` : ''}`).then(setEntry, setError);
  }, [name, version]);
  return { ...(entry ? { entry } : {}), ...(error ? { error } : {}) };
}

function variableDefault(v: CatalogVariableView): string {
  return v.fixed !== undefined ? `${v.fixed} (fixed)` : v.default ?? (v.choices ? v.choices.join(' | ') : '');
}

export function CatalogEntryPage({ name, version }: { name: string; version?: string }) {
  const { entry, error } = useEntry(name, version);
  if (error) return <ErrorNote error={error} />;
  if (!entry) return null;
  const { server } = entry;
  return (
    <section aria-labelledby="entry-title">
      <p><a href="#/catalog">Catalog</a></p>
      <h1 id="entry-title">{server.title ?? server.name}</h1>
      <p>{server.description}</p>
      <dl class="facts">
        <dt>Name</dt><dd>{server.name}</dd>
        <dt>Version</dt><dd>{server.version}</dd>
        {server.packages?.map((p, i) => (
          <>
            <dt key={`p${i}`}>Package</dt>
            <dd>{p.registryType} {p.identifier}{p.version ? `@${p.version}` : ''} ({p.transport.type})</dd>
          </>
        ))}
        {server.remotes?.map((r, i) => (
          <>
            <dt key={`r${i}`}>Remote</dt>
            <dd>{r.type} {r.url}</dd>
          </>
        ))}
        {entry.runs && (<><dt>Runs</dt><dd><code>{entry.runs}</code></dd></>)}
        {server.websiteUrl && (<><dt>Website</dt><dd>{server.websiteUrl}</dd></>)}
        <dt>Source</dt><dd>{entry.source === 'bundled' ? 'bundled with apiary' : entry.source}</dd>
        <dt>Tools</dt><dd>listed on the server's page once it is installed and Ready</dd>
      </dl>
      <h2>Variables</h2>
      {entry.variables.length === 0 ? <p class="empty">None: it installs without questions.</p> : (
        <table>
          <thead><tr><th>Name</th><th>Required</th><th>Secret</th><th>Default or choices</th><th>Description</th></tr></thead>
          <tbody>
            {entry.variables.map((v) => (
              <tr key={v.name}>
                <td><code>{v.name}</code></td>
                <td>{v.required ? 'yes' : 'no'}</td>
                <td>{v.secret ? 'yes' : 'no'}</td>
                <td>{variableDefault(v)}</td>
                <td>{v.description ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {entry.installable === true ? (
        <div class="buttons">
          <button type="button" class="primary" onClick={() => navigate(`#/catalog/install?name=${encodeURIComponent(server.name)}&version=${encodeURIComponent(server.version)}`)}>Install</button>
        </div>
      ) : (
        <p class="error">apiary cannot install this entry: {entry.installable}</p>
      )}
    </section>
  );
}

export function CatalogInstallPage({ name, version }: { name: string; version?: string }) {
  const info = useConsoleInfo();
  const { entry, error: loadError } = useEntry(name, version);
  const [serverName, setServerName] = useState<string>();
  const [plain, setPlain] = useState<Record<string, string>>({});
  const [sources, setSources] = useState<Record<string, string>>({});
  const [typed, setTyped] = useState<Record<string, string>>({});
  const flow = useReviewThenWrite<CatalogInstallAnswer>('/api/v1/catalog/install/plan', '/api/v1/catalog/install');
  const { plan, error, busy, changed } = flow;
  if (loadError) return <ErrorNote error={loadError} />;
  if (!entry) return null;
  const vars = entry.variables.filter((v) => v.fixed === undefined);
  const sourceOf = (v: CatalogVariableView): string => sources[v.name] ?? guessSource(v.name);
  if (info?.key.state === 'unavailable' && vars.some((v) => v.secret && sourceOf(v) === 'new')) return <KeyringScreen info={info.key} />;
  const keys = existingKeys();
  const body = () => ({
    entry: entry.server.name,
    version: entry.server.version,
    name: serverName ?? entry.defaultName,
    plain: Object.fromEntries(vars.filter((v) => !v.secret).map((v) => [v.name, plain[v.name] ?? ''])),
    bound: Object.fromEntries(vars.filter((v) => v.secret && sourceOf(v) !== 'new').map((v) => [v.name, sourceOf(v)])),
    secrets: Object.fromEntries(vars.filter((v) => v.secret && sourceOf(v) === 'new').map((v) => [v.name, typed[v.name] ?? ''])),
  });
  const review = (e: Event) => flow.review(e, body());
  const write = () => flow.write(body(), `#/servers/${body().name}`);
  return (
    <section aria-labelledby="catalog-install-title">
      <p><a href={`#/catalog/entry?name=${encodeURIComponent(entry.server.name)}`}>{entry.server.title ?? entry.server.name}</a></p>
      <h1 id="catalog-install-title">Install {entry.server.title ?? entry.server.name} {entry.server.version}</h1>
      <p class="muted">Runs <code>{entry.runs}</code></p>
      <form class="stack install" onSubmit={(e) => void review(e)} onInput={changed}>
        <label>
          Name
          <input name="name" required pattern={NAME_PATTERN} maxLength={63} value={serverName ?? entry.defaultName} onInput={(e) => setServerName((e.target as HTMLInputElement).value)} />
        </label>
        {vars.length > 0 && (
          <fieldset>
            <legend>What it needs</legend>
            {vars.map((v) => (
              <div class="row var" key={v.name} data-variable={v.name}>
                {v.secret ? (
                  <>
                    <label>
                      <span>{v.name}{v.required && <span class="required" aria-label="required"> *</span>}</span>
                      <select aria-label={`${v.name}: value from`} value={sourceOf(v)} onChange={(e) => { setSources({ ...sources, [v.name]: (e.target as HTMLSelectElement).value }); changed(); }}>
                        <option value="new">a new secret (type the value)</option>
                        {keys.map((k) => <option key={k} value={k}>existing: {k}</option>)}
                      </select>
                    </label>
                    {sourceOf(v) === 'new' && (
                      <label>
                        Value (sealed, never shown again)
                        <input type="password" autoComplete="off" aria-label={`${v.name} value`} required={v.required} value={typed[v.name] ?? ''} onInput={(e) => setTyped({ ...typed, [v.name]: (e.target as HTMLInputElement).value })} />
                      </label>
                    )}
                  </>
                ) : v.choices ? (
                  <label>
                    <span>{v.name}{v.required && <span class="required" aria-label="required"> *</span>}</span>
                    <select aria-label={v.name} required={v.required} value={plain[v.name] ?? v.default ?? ''} onChange={(e) => { setPlain({ ...plain, [v.name]: (e.target as HTMLSelectElement).value }); changed(); }}>
                      {!v.default && <option value="">choose...</option>}
                      {v.choices.map((c) => <option key={c} value={c}>{c}</option>)}
                    </select>
                  </label>
                ) : (
                  <label>
                    <span>{v.name}{v.required && <span class="required" aria-label="required"> *</span>}</span>
                    <input aria-label={v.name} required={v.required && v.default === undefined} placeholder={v.default ?? ''} value={plain[v.name] ?? ''} onInput={(e) => setPlain({ ...plain, [v.name]: (e.target as HTMLInputElement).value })} />
                  </label>
                )}
                {v.description && <span class="hint">{v.description}{v.default !== undefined && !v.choices ? ` (default: ${v.default})` : ''}</span>}
              </div>
            ))}
          </fieldset>
        )}
        <ErrorNote error={error} />
        <div class="buttons">
          <button type="submit" class={plan ? '' : 'primary'}>Review</button>
        </div>
      </form>
      {plan && <PlanView plan={plan} busy={busy} onInstall={() => void write()} />}
    </section>
  );
}
