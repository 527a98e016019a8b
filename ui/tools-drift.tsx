/**
 * A server whose tools differ from tools.lock.yaml (ToolsDrifted=True):
 * which tools, the text diff of each (what `apiary tools diff NAME`
 * prints), and Approve for all or one (what `apiary tools approve NAME
 * [TOOL]` does). The list follows the condition: an approval rewrites the
 * lock, the controller judges the server again, and the feed's new
 * condition takes the approved tool off the list.
 */
import { useEffect, useState } from 'preact/hooks';
import { api } from './api';
import { condition, DiffView, ErrorNote } from './components';
import type { ApiObject, ToolsApproveAnswer, ToolsDriftAnswer } from './types';

const CHANGE: Record<string, string> = { changed: 'changed', added: 'new', removed: 'no longer listed' };

/** On the Servers page: a drifted server's row says so, and leads to the diff. */
export function DriftNote({ server }: { server: ApiObject }) {
  const name = server.metadata.name;
  if (condition(server, 'ToolsDrifted')?.status !== 'True') return null;
  return (
    <div class="reason">
      <a href={`#/servers/${name}`} class="badge progress" data-testid="drift-note" title={condition(server, 'ToolsDrifted')?.message}>tools drifted: review</a>
    </div>
  );
}

export function ToolsDrift({ server }: { server: ApiObject }) {
  const name = server.metadata.name;
  const drifted = condition(server, 'ToolsDrifted');
  const [drift, setDrift] = useState<ToolsDriftAnswer>();
  const [error, setError] = useState<{ message: string; hints?: string[] }>();
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string>();
  const judged = `${drifted?.status}|${drifted?.message}`;
  useEffect(() => {
    if (drifted?.status !== 'True') {
      setDrift(undefined);
      return;
    }
    api.get<ToolsDriftAnswer>(`/api/v1/mcpservers/${name}/tools-drift`).then(
      (d) => {
        setDrift(d);
        setError(undefined);
      },
      setError,
    );
  }, [name, judged]);
  if (drifted?.status !== 'True') return done ? <p role="status" class="muted" data-testid="approved">{done}</p> : null;
  const approve = async (tool?: string) => {
    setBusy(true);
    setError(undefined);
    try {
      const r = await api.post<ToolsApproveAnswer>(`/api/v1/mcpservers/${name}/tools-approve`, tool !== undefined ? { tool } : {});
      setDone(`Approved ${tool !== undefined ? `tool ${tool}` : 'every tool'} in ${r.file}${r.backup !== undefined ? ` (the previous file kept as ${r.backup})` : ''}.`);
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };
  const refused = drift?.approveRefused;
  return (
    <section class="tools-drift" aria-labelledby="drift-title" data-testid="tools-drift">
      <div class="head-row">
        <h2 id="drift-title">Tools drifted</h2>
        {drift !== undefined && drift.tools.length > 0 && refused === undefined && (
          <button type="button" class="primary" disabled={busy} onClick={() => void approve()} aria-label={`Approve every tool of ${name}`}>Approve all</button>
        )}
      </div>
      <p class="warn-text">{drifted.message}</p>
      <p class="muted">What the server lists now against its entry in tools.lock.yaml. Approving writes the lock (the previous file is kept beside it); clients see an approved tool at once.</p>
      {refused !== undefined && <p class="muted" data-testid="approve-refused">{refused}</p>}
      {done !== undefined && <p role="status" class="muted" data-testid="approved">{done}</p>}
      <ErrorNote error={error} />
      <ul class="drifted" data-testid="drifted-tools">
        {(drift?.tools ?? []).map((t) => (
          <li key={t.name} data-tool={t.name}>
            <div class="head-row">
              <code>{t.name}</code> <span class="badge progress">{CHANGE[t.change] ?? t.change}</span>
              {refused === undefined && (
                <button type="button" class="small" disabled={busy} onClick={() => void approve(t.name)} aria-label={`Approve ${t.name}`}>Approve</button>
              )}
            </div>
            <DiffView text={t.patch} testid={`diff-${t.name}`} />
          </li>
        ))}
      </ul>
    </section>
  );
}
