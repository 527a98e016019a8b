/**
 * The Secrets page: each secret's keys, form, whether it opens here and who
 * uses it; add, update (a new value; the field starts empty, values never come
 * to the page) and delete with a warning that names the servers affected.
 */
import { useEffect, useState } from 'preact/hooks';
import { api } from './api';
import { Confirm, Dialog, ErrorNote } from './components';
import { KeyringScreen, useConsoleInfo } from './keyring';
import { KEY_PATTERN, NAME_PATTERN } from './patterns';
import { store } from './store';
import type { SecretSummaries, SecretSummary, SecretUse } from './types';

type Summaries = SecretSummaries;

/** Held in plain text (stringData or data) in its manifest, for some key at least. */
function isPlain(s: SecretSummary): boolean {
  return s.form.split('+').includes('plain');
}

function usesText(uses: readonly Pick<SecretUse, 'server' | 'variable'>[]): string {
  return uses.map((u) => `${u.server}${u.variable ? ` (${u.variable})` : ''}`).join(', ');
}

/**
 * Add a secret, add a key to one (`fixedName`), or update a key's value. What
 * the dialog is about cannot be edited in it: updating changes a value, never
 * which secret or key it belongs to, and a key added to github stays in github.
 */
export function SecretForm({ mode, name: initialName, keyName: initialKey, fixedName, onClose }: { mode: 'add' | 'update'; name?: string; keyName?: string; fixedName?: boolean; onClose: () => void }) {
  const [name, setName] = useState(initialName ?? '');
  const [key, setKey] = useState(initialKey ?? '');
  const [value, setValue] = useState('');
  const [error, setError] = useState<{ message: string; hints?: string[] }>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      if (mode === 'add') await api.post('/api/v1/secrets', { name, key, value });
      else await api.put(`/api/v1/secrets/${name}/keys/${encodeURIComponent(key)}`, { value });
      setValue('');
      onClose();
    } catch (err) {
      setError(err as Error);
      setBusy(false);
    }
  };
  const nameFixed = mode === 'update' || fixedName === true;
  return (
    <Dialog title={mode === 'update' ? `Update ${name}/${key}` : nameFixed ? `Add a key to ${name}` : 'Add secret'} onClose={onClose}>
      <form onSubmit={(e) => void submit(e)} class="stack">
        <div class="field">
          <label for="secret-name">Name</label>
          <input id="secret-name" name="name" required pattern={NAME_PATTERN} maxLength={63} value={name} readOnly={nameFixed} onInput={(e) => setName((e.target as HTMLInputElement).value)} aria-describedby="name-help" />
          <small id="name-help">{nameFixed ? 'The secret this value belongs to.' : 'Lowercase letters, digits and "-".'}</small>
        </div>
        <div class="field">
          <label for="secret-key">Key</label>
          <input id="secret-key" name="key" required pattern={KEY_PATTERN} value={key} readOnly={mode === 'update'} onInput={(e) => setKey((e.target as HTMLInputElement).value)} />
        </div>
        <div class="field">
          <label for="secret-value">{mode === 'add' ? 'Value' : 'New value'}</label>
          <input id="secret-value" name="value" type="password" required autoComplete="off" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} aria-describedby="value-help" />
          <small id="value-help">Sealed with this machine's key and written to the manifest directory; it is never shown again.</small>
        </div>
        <ErrorNote error={error} />
        <div class="buttons">
          <button type="button" onClick={onClose}>Cancel</button>
          <button type="submit" class="primary" disabled={busy}>{mode === 'add' ? 'Add secret' : 'Update value'}</button>
        </div>
      </form>
    </Dialog>
  );
}

export function SecretsPage({ add, addKey }: { add?: string; addKey?: string }) {
  const info = useConsoleInfo();
  const [data, setData] = useState<Summaries>();
  const [error, setError] = useState<{ message: string }>();
  const [form, setForm] = useState<{ mode: 'add' | 'update'; name?: string; key?: string; fixedName?: boolean } | undefined>(add !== undefined ? { mode: 'add', name: add, ...(addKey ? { key: addKey } : {}) } : undefined);
  const [deleting, setDeleting] = useState<SecretSummary>();
  const [sealing, setSealing] = useState<SecretSummary>();
  const secretsVersion = JSON.stringify(store.list('Secret')) + store.list('MCPServer').map((s) => JSON.stringify(s.spec)).join();
  useEffect(() => {
    api.get<Summaries>('/api/v1/secretsummaries').then(setData, setError);
  }, [secretsVersion]);
  useEffect(() => {
    if (add !== undefined) setForm({ mode: 'add', name: add, ...(addKey ? { key: addKey } : {}) });
  }, [add, addKey]);
  if (info?.key.state === 'unavailable') return <KeyringScreen info={info.key} />;
  return (
    <section aria-labelledby="secrets-title">
      <div class="page-head">
        <h1 id="secrets-title">Secrets</h1>
        <button type="button" class="primary" onClick={() => setForm({ mode: 'add' })}>Add secret</button>
      </div>
      <p class="muted">
        Values are sealed with this machine's key ({info?.key.state === 'ok' ? `key ${info.key.id}, ${info.key.where}` : info?.key.state === 'absent' ? 'created when the first value is sealed' : '...'}) and kept in the manifest directory, safe to commit.
      </p>
      <ErrorNote error={error} />
      {data && data.missing.length > 0 && (
        <div class="callout" role="status">
          <h2>Wanted but missing</h2>
          <ul>
            {data.missing.map((m) => (
              <li key={m.name}>
                <strong>{m.name}</strong>, needed by {usesText(m.uses)}{' '}
                <button type="button" class="small primary" onClick={() => setForm({ mode: 'add', name: m.name, ...(m.uses[0]?.key ? { key: m.uses[0].key } : {}) })}>Add {m.name}</button>
              </li>
            ))}
          </ul>
        </div>
      )}
      {data && data.items.length === 0 ? (
        <p class="empty">No secrets yet.</p>
      ) : (
        <div class="table-wrap">
          <table data-testid="secrets-table">
            <thead>
              <tr><th scope="col">Name</th><th scope="col">Keys</th><th scope="col">Form</th><th scope="col">Decrypts here</th><th scope="col">Used by</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr>
            </thead>
            <tbody>
              {(data?.items ?? []).map((s) => (
                <tr key={s.name} data-secret={s.name}>
                  <td>{s.name}<div class="muted small-text">{s.file}</div></td>
                  <td>{s.keys.map((k) => <code key={k} class="chip">{k}</code>)}</td>
                  <td>{s.form}</td>
                  <td title={s.errors.join('\n')}>{s.decrypts === 'yes' ? '✓ yes' : s.decrypts === 'no' ? <span class="bad-text">✗ no</span> : 'n/a (plain)'}</td>
                  <td>{s.uses.length === 0 ? <span class="muted">nobody</span> : usesText(s.uses)}</td>
                  <td>
                    <span class="actions">
                    {s.keys.map((k) => (
                      <button key={k} type="button" class="small" aria-label={`Update ${s.name}/${k}`} onClick={() => setForm({ mode: 'update', name: s.name, key: k })}>Update {s.keys.length > 1 ? k : ''}</button>
                    ))}
                    <button type="button" class="small" aria-label={`Add a key to ${s.name}`} onClick={() => setForm({ mode: 'add', name: s.name, fixedName: true })}>Add key</button>
                    {isPlain(s) && <button type="button" class="small primary" aria-label={`Seal ${s.name}`} title="Its values are in plain text in the manifest: seal them with this machine's key" onClick={() => setSealing(s)}>Seal</button>}
                    <button type="button" class="small danger" aria-label={`Delete ${s.name}`} onClick={() => setDeleting(s)}>Delete</button>
                    </span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {form && <SecretForm mode={form.mode} {...(form.name ? { name: form.name } : {})} {...(form.key ? { keyName: form.key } : {})} fixedName={form.fixedName === true} onClose={() => {
        setForm(undefined);
        if (add !== undefined) history.replaceState(null, '', '#/secrets');
      }} />}
      {sealing && (
        <Confirm
          title={`Seal secret ${sealing.name}?`}
          action="Seal"
          onClose={() => setSealing(undefined)}
          onConfirm={async () => {
            await api.post(`/api/v1/secrets/${sealing.name}/seal`);
          }}
          body={
            <p data-testid="seal-effect">
              Its plain values in <code>{sealing.file}</code> are sealed with this machine's key where they are written, as <code>apiary seal {sealing.file}</code> does: comments and the file's other documents stay, and servers get the same values. The plain text is not kept anywhere.
            </p>
          }
        />
      )}
      {deleting && (
        <Confirm
          title={`Delete secret ${deleting.name}?`}
          danger
          action="Delete"
          onClose={() => setDeleting(undefined)}
          onConfirm={async () => {
            await api.del(`/api/v1/secrets/${deleting.name}`);
          }}
          body={
            deleting.uses.length === 0 ? (
              <p>No server uses it. Its document is removed from <code>{deleting.file}</code>.</p>
            ) : (
              <div data-testid="delete-warning">
                <p>
                  <strong>Used by {usesText(deleting.uses)}.</strong>
                </p>
                <p>Running servers keep running. Once one stops, it cannot start again (it turns Stuck) until a secret named {deleting.name} is back.</p>
              </div>
            )
          }
        />
      )}
    </section>
  );
}
