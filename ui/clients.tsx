/**
 * The Clients page: each known MCP client found on this machine, whether it
 * is registered (apiary keeps it in sync) and connected / stale / not
 * configured, and Add / Remove, each after a preview of the change to the
 * client's file (a diff, tokens redacted) that the person confirms.
 */
import { useEffect, useState } from 'preact/hooks';
import { api } from './api';
import { Dialog, DiffView, ErrorNote } from './components';
import { store } from './store';

interface ClientStatus {
  client: string;
  title: string;
  file: string;
  found: boolean;
  registered: boolean;
  aggregate: boolean;
  state: 'connected' | 'stale' | 'not configured' | 'unreadable' | 'unknown';
  detail?: string;
}

interface Preview {
  client: string;
  file: string;
  diff: string;
  skipped: { name: string; why: string }[];
}

const TONE: Record<ClientStatus['state'], string> = { connected: 'ok', stale: 'progress', 'not configured': 'idle', unreadable: 'bad', unknown: 'idle' };

function PreviewDialog({ status, action, onClose }: { status: ClientStatus; action: 'add' | 'remove'; onClose: (changed: boolean) => void }) {
  const [aggregate, setAggregate] = useState(status.aggregate);
  const [preview, setPreview] = useState<Preview>();
  const [error, setError] = useState<{ message: string; hints?: string[] }>();
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    setPreview(undefined);
    setError(undefined);
    api.get<Preview>(`/api/v1/clients/${status.client}/preview?action=${action}${aggregate ? '&aggregate=true' : ''}`).then(setPreview, setError);
  }, [aggregate]);
  const apply = async () => {
    setBusy(true);
    try {
      if (action === 'add') await api.post(`/api/v1/clients/${status.client}/add`, aggregate ? { aggregate: true } : {});
      else await api.post(`/api/v1/clients/${status.client}/remove`, {});
      onClose(true);
    } catch (err) {
      setError(err as Error);
      setBusy(false);
    }
  };
  return (
    <Dialog title={`${action === 'add' ? 'Add' : 'Remove'} ${status.title}`} onClose={() => onClose(false)}>
      <div class="stack">
        <p class="muted small-text">{preview?.file ?? status.file}</p>
        {action === 'add' && (
          <label>
            <input type="checkbox" checked={aggregate} onChange={(e) => setAggregate((e.target as HTMLInputElement).checked)} /> One entry for every server (apiary's aggregate endpoint): nothing to rewrite when servers change
          </label>
        )}
        {preview !== undefined && (preview.diff === '' ? <p data-testid="client-diff">No change to the file.</p> : <DiffView text={preview.diff} testid="client-diff" />)}
        {preview?.skipped.map((s) => (
          <p class="warn-text" key={s.name}>{s.why}</p>
        ))}
        {action === 'add' && <p class="small-text muted">Once added, apiary rewrites these entries whenever servers are installed, deleted or renamed.</p>}
        <ErrorNote error={error} />
        <div class="buttons">
          <button type="button" onClick={() => onClose(false)}>Cancel</button>
          <button type="button" class={action === 'add' ? 'primary' : 'danger'} disabled={busy || preview === undefined} onClick={() => void apply()}>
            {action === 'add' ? 'Write and keep in sync' : 'Take apiary out'}
          </button>
        </div>
      </div>
    </Dialog>
  );
}

export function ClientsPage() {
  const [items, setItems] = useState<ClientStatus[]>();
  const [error, setError] = useState<{ message: string; hints?: string[] }>();
  const [open, setOpen] = useState<{ status: ClientStatus; action: 'add' | 'remove' }>();
  const [all, setAll] = useState(false);
  const load = () => api.get<{ items: ClientStatus[] }>(`/api/v1/clients${all ? '?all=true' : ''}`).then((r) => setItems(r.items), setError);
  // Servers coming and going change what connected means: read again when the store moves.
  useEffect(() => {
    void load();
    return store.subscribe(() => void load());
  }, [all]);
  return (
    <section aria-labelledby="clients-title">
      <div class="page-head">
        <h1 id="clients-title">Clients</h1>
        <label class="search">
          <input type="checkbox" checked={all} onChange={(e) => setAll((e.target as HTMLInputElement).checked)} /> Show clients not found here
        </label>
      </div>
      <p class="muted">MCP clients apiary can connect to its servers. An added client is kept in sync: its entries follow the servers apiary runs.</p>
      <ErrorNote error={error} />
      {items !== undefined && items.length === 0 && <p class="empty">No known MCP client was found on this machine.</p>}
      {items !== undefined && items.length > 0 && (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Client</th>
                <th>State</th>
                <th>Kept in sync</th>
                <th>File</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {items.map((s) => (
                <tr key={`${s.client} ${s.file}`} data-client={s.client}>
                  <td>{s.title}</td>
                  <td>
                    <span class={`badge ${TONE[s.state]}`}>{s.state}</span>
                    {s.detail !== undefined && <div class="reason small-text">{s.detail}</div>}
                  </td>
                  <td>{s.registered ? (s.aggregate ? 'yes (aggregate)' : 'yes') : 'no'}</td>
                  <td class="small-text">{s.file}</td>
                  <td>
                    <span class="actions">
                      <button type="button" class="small" onClick={() => setOpen({ status: s, action: 'add' })} disabled={s.state === 'unreadable'}>
                        {s.registered ? 'Update' : 'Add'}
                      </button>
                      {(s.registered || s.state !== 'not configured') && (
                        <button type="button" class="small danger" onClick={() => setOpen({ status: s, action: 'remove' })}>
                          Remove
                        </button>
                      )}
                    </span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {open !== undefined && (
        <PreviewDialog
          status={open.status}
          action={open.action}
          onClose={(changed) => {
            setOpen(undefined);
            if (changed) void load();
          }}
        />
      )}
    </section>
  );
}
