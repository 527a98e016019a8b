/**
 * The Audit page: who called which tool, prompt or resource through apiary,
 * what was decided and how it ended, newest first, filtered by server, user
 * and time, with a live tail (the records written next, as `apiary audit
 * -f`) and whether the chain verifies (as `apiary audit verify`). Records
 * hold argument names and sizes, never values.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api';
import { ErrorNote } from './components';
import { navigate } from './router';
import { store } from './store';
import { openStream } from './stream';
import type { AuditAnswer, AuditSubject, AuditVerifySummary, StoredAuditRecord } from './types';

type Problem = { message: string; hints?: string[] };

const SINCE_CHOICES: [string, string][] = [['', 'any time'], ['15m', 'last 15 minutes'], ['1h', 'last hour'], ['24h', 'last day'], ['168h', 'last week']];

/** How a subject reads in one word: the user, or the kind in brackets (as `apiary audit` prints it and its --user takes). */
function subjectLabel(s: AuditSubject): string {
  return s.kind === 'user' && s.user !== undefined ? s.user : `(${s.kind})`;
}

function VerifyBadge({ verify }: { verify: AuditVerifySummary }) {
  if (verify.ok) {
    const text = verify.records === 0 ? 'Verified: no records yet' : `Verified: ${verify.records} record${verify.records === 1 ? '' : 's'}`;
    const upTo = verify.last === undefined ? '' : ` (records ${verify.first}..${verify.last}; Refresh to check newer ones)`;
    return <span class="badge ok" data-testid="verify" title={`${verify.unanchored > 0 ? `the last ${verify.unanchored} are not in the head yet` : 'every record chains to the one before, up to the head'}${upTo}`}>{text}</span>;
  }
  const text = verify.seq !== undefined ? `Broken at record ${verify.seq}` : 'Not verified';
  return (
    <span class="badge bad" data-testid="verify" title={verify.message} aria-label={`${text}: ${verify.message}`}>
      {text}
    </span>
  );
}

function outcomeTone(r: StoredAuditRecord): string {
  if (r.outcome === 'ok') return 'ok';
  if (r.outcome === 'tool_error' || r.outcome === 'rate_limited') return 'progress';
  return 'bad';
}

function Row({ r }: { r: StoredAuditRecord }) {
  const args = (r.args ?? []).map((a) => `${a.name} (${a.bytes} B)`).join(', ') + (r.argsOmitted ? `, +${r.argsOmitted}` : '');
  return (
    <tr data-seq={r.seq} class={r.decision === 'deny' ? 'denied' : undefined}>
      <td data-label="Time"><time dateTime={r.time}>{r.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time></td>
      <td data-label="Subject">{subjectLabel(r.subject)}{r.subject.groups && r.subject.groups.length > 0 && <small> {r.subject.groups.join(', ')}</small>}</td>
      <td data-label="Client">{r.client ?? '-'}</td>
      <td data-label="Server">{r.server}</td>
      <td data-label="Method"><code>{r.method}</code></td>
      <td data-label="Name" title={args === '' ? undefined : `arguments: ${args}`}>{r.name ?? '-'}</td>
      <td data-label="Decision"><span class={`badge ${r.decision === 'allow' ? 'ok' : 'bad'}`}>{r.decision}</span></td>
      <td data-label="Rule" class="small-text">{r.rule ?? '-'}</td>
      <td data-label="Outcome"><span class={`badge ${outcomeTone(r)}`}>{r.outcome}{r.code !== undefined ? ` ${r.code}` : ''}</span></td>
      <td data-label="Duration" class="num">{r.durationMs} ms</td>
    </tr>
  );
}

function filterQuery(params: URLSearchParams): string {
  const q = new URLSearchParams();
  for (const key of ['server', 'user', 'since']) {
    const value = params.get(key);
    if (value) q.set(key, value);
  }
  return q.toString();
}

export function AuditPage({ params }: { params: URLSearchParams }) {
  const filters = filterQuery(params);
  const [records, setRecords] = useState<StoredAuditRecord[]>();
  const [next, setNext] = useState<number>();
  const [verify, setVerify] = useState<AuditVerifySummary>();
  const [message, setMessage] = useState<string>();
  const [error, setError] = useState<Problem>();
  const [live, setLive] = useState(false);
  const [user, setUser] = useState(params.get('user') ?? '');
  const newest = useRef(0);

  // The chain is verified apart from the page: on a long log it takes seconds, and the records need not wait for it.
  const checkChain = () => {
    setVerify(undefined);
    api.get<AuditVerifySummary>('/api/v1/audit/verify').then(setVerify, setError);
  };
  const load = () => {
    setError(undefined);
    api.get<AuditAnswer>(`/api/v1/audit?${filters}`).then((a) => {
      setRecords(a.records);
      setNext(a.next);
      setMessage(a.message);
      newest.current = a.records[0]?.seq ?? newest.current;
      if (a.verify !== undefined) setVerify(a.verify);
      else checkChain();
    }, setError);
  };
  useEffect(load, [filters]);
  useEffect(() => setUser(params.get('user') ?? ''), [params.get('user')]);

  // The live tail: each record written after the newest shown is put on top. The badge stays what verify said of the
  // records up to then (Refresh asks again): verifying the whole chain on every record would cost seconds each.
  useEffect(() => {
    if (!live) return undefined;
    const close = openStream(`/api/v1/audit/follow?after=${newest.current}${filters ? `&${filters}` : ''}`, {
      onEvent: (_event, data) => {
        const record = JSON.parse(data) as StoredAuditRecord;
        newest.current = Math.max(newest.current, record.seq);
        setRecords((shown) => [record, ...(shown ?? []).filter((r) => r.seq !== record.seq)]);
        setMessage(undefined);
      },
    });
    return close;
  }, [live, filters]);

  const older = () => {
    if (next === undefined) return;
    api.get<AuditAnswer>(`/api/v1/audit?${filters}${filters ? '&' : ''}before=${next}`).then((a) => {
      setRecords((shown) => [...(shown ?? []), ...a.records]);
      setNext(a.next);
    }, setError);
  };

  const setFilter = (key: string, value: string) => {
    const q = new URLSearchParams(filters);
    if (value) q.set(key, value);
    else q.delete(key);
    navigate(`#/audit${q.toString() ? `?${q.toString()}` : ''}`);
  };

  const servers = store.list('MCPServer').map((o) => o.metadata.name);
  const server = params.get('server') ?? '';
  return (
    <section class="audit">
      <div class="page-head">
        <h1>Audit</h1>
        {verify ? <VerifyBadge verify={verify} /> : <span class="badge idle" data-testid="verify">Verifying...</span>}
      </div>
      {verify && !verify.ok && <p class="error" role="alert" data-testid="verify-message">{verify.message}. Run <code>apiary audit verify</code> for the file and line.</p>}
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          setFilter('user', user.trim());
        }}
      >
        <label>
          Server
          <select name="server" value={server} onChange={(e) => setFilter('server', (e.target as HTMLSelectElement).value)}>
            <option value="">all</option>
            {[...new Set([...servers, ...(server ? [server] : [])])].map((s) => <option key={s} value={s}>{s}</option>)}
            <option value="*">* (the aggregate)</option>
          </select>
        </label>
        <label>
          User
          <input name="user" value={user} placeholder="alice, (token)" autocomplete="off" onInput={(e) => setUser((e.target as HTMLInputElement).value)} onBlur={() => setFilter('user', user.trim())} />
        </label>
        <label>
          Since
          <select name="since" value={params.get('since') ?? ''} onChange={(e) => setFilter('since', (e.target as HTMLSelectElement).value)}>
            {SINCE_CHOICES.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
          </select>
        </label>
        <label>
          <input type="checkbox" name="live" checked={live} onChange={(e) => setLive((e.target as HTMLInputElement).checked)} /> Live
        </label>
        <button type="button" onClick={load}>Refresh</button>
      </form>
      <ErrorNote error={error} />
      {message && <p class="empty" data-testid="no-audit">{message}</p>}
      {records && records.length === 0 && !message && <p class="empty">No records match these filters.</p>}
      {records && records.length > 0 && (
        <div class="table-wrap">
          <table class="audit-log">
            <thead>
              <tr><th>Time</th><th>Subject</th><th>Client</th><th>Server</th><th>Method</th><th>Name</th><th>Decision</th><th>Rule</th><th>Outcome</th><th>Duration</th></tr>
            </thead>
            <tbody>
              {records.map((r) => <Row key={r.seq} r={r} />)}
            </tbody>
          </table>
        </div>
      )}
      {next !== undefined && <p><button type="button" onClick={older}>Older records</button></p>}
    </section>
  );
}
