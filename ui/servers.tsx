/** The Servers page (one row per server, live) and a server's detail view. */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api } from './api';
import { age, condition, Confirm, CopyButton, ErrorNote, PhaseBadge } from './components';
import { LoginActions } from './connect';
import { addSecretLink, Environment } from './environment';
import { restartEffect } from './restart';
import { navigate } from './router';
import { TryTool } from './try-tool';
import { DriftNote, ToolsDrift } from './tools-drift';
import { store } from './store';
import { openStream } from './stream';
import type { ApiObject, ClientFileAnswer, LogLines, ServerDetail, ServerSpec } from './types';

/** The secret references of a server that nothing declares (or that lack the key): what a Stuck server waits for. */
export function missingSecrets(server: ApiObject): { secret: string; key?: string; variable?: string }[] {
  const spec = server.spec as ServerSpec | undefined;
  const missing: { secret: string; key?: string; variable?: string }[] = [];
  for (const e of spec?.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    if (!ref || ref.optional) continue;
    const secret = store.get('Secret', ref.name);
    const keys = (secret?.spec as { keys?: Record<string, string> } | undefined)?.keys ?? {};
    if (!secret || !(ref.key in keys)) missing.push({ secret: ref.name, key: ref.key, variable: e.name });
  }
  for (const e of spec?.envFrom ?? []) {
    if (!e.secretRef.optional && !store.get('Secret', e.secretRef.name)) missing.push({ secret: e.secretRef.name });
  }
  return missing;
}

type Action = { kind: 'restart' | 'suspend' | 'delete'; name: string };

function ActionDialog({ action, onClose }: { action: Action; onClose: () => void }) {
  const { kind, name } = action;
  const server = store.get('MCPServer', name);
  const missing = server ? missingSecrets(server) : [];
  const needs = missing.map((m) => `${m.secret}${m.key ? `/${m.key}` : ''}`);
  const restart = server ? restartEffect(server, needs) : undefined;
  const text = {
    restart: { title: `Restart ${name}?`, body: restart?.text ?? 'The server is stopped and started again with the same manifest.', button: 'Restart' },
    suspend: { title: `Suspend ${name}?`, body: 'The server is stopped and stays listed (spec.suspend: true is written to its manifest). Resume starts it again.', button: 'Suspend' },
    delete: { title: `Delete ${name}?`, body: 'Its manifest is removed from the directory and the server is stopped. Secrets it uses stay.', button: 'Delete' },
  }[kind];
  return (
    <Confirm
      title={text.title}
      body={
        <>
          <p data-testid="action-effect" class={kind === 'restart' && restart?.acts === false ? 'warn-text' : ''}>{text.body}</p>
          {missing.length > 0 && kind === 'suspend' && (
            <p class="warn-text">
              It needs {needs.join(', ')}, which {missing.length === 1 ? 'is' : 'are'} missing: once stopped, it cannot start again (it turns Stuck) until the secret is back.
            </p>
          )}
        </>
      }
      action={text.button}
      danger={kind !== 'restart'}
      onClose={onClose}
      onConfirm={async () => {
        if (kind === 'delete') await api.del(`/api/v1/mcpservers/${name}`);
        else await api.post(`/api/v1/mcpservers/${name}/${kind}`);
        if (kind === 'delete') navigate('#/');
      }}
    />
  );
}

function ServerActions({ server, onAction }: { server: ApiObject; onAction: (a: Action) => void }) {
  const name = server.metadata.name;
  const suspended = (server.spec as ServerSpec | undefined)?.suspend === true;
  const [error, setError] = useState<string>();
  // Following git: the manifests are the repository's; a change is a commit, so only restart is offered.
  if (store.list('GitRepository').length > 0) {
    return (
      <span class="actions">
        <LoginActions server={server} />
        <button type="button" class="small" onClick={() => onAction({ kind: 'restart', name })} aria-label={`Restart ${name}`}>Restart</button>
        <span class="muted" title="This directory follows a git repository: suspend or delete it with a commit there.">changes: by commit</span>
      </span>
    );
  }
  return (
    <span class="actions">
      <LoginActions server={server} />
      <button type="button" class="small" onClick={() => onAction({ kind: 'restart', name })} aria-label={`Restart ${name}`}>Restart</button>
      {suspended ? (
        <button type="button" class="small" aria-label={`Resume ${name}`} onClick={() => api.post(`/api/v1/mcpservers/${name}/resume`).catch((e: Error) => setError(e.message))}>Resume</button>
      ) : (
        <button type="button" class="small" onClick={() => onAction({ kind: 'suspend', name })} aria-label={`Suspend ${name}`}>Suspend</button>
      )}
      <button type="button" class="small danger" onClick={() => onAction({ kind: 'delete', name })} aria-label={`Delete ${name}`}>Delete</button>
      {error && <span class="error" role="alert">{error}</span>}
    </span>
  );
}

function Reason({ server }: { server: ApiObject }) {
  const missing = missingSecrets(server);
  const unresolved = condition(server, 'SecretsResolved')?.status === 'False';
  if (missing.length === 0 || !unresolved) return null;
  const running = server.status?.phase === 'Running';
  return (
    <div class="reason">
      {running && <span class="warn-text">a secret it uses is gone: it keeps running but cannot restart. </span>}
      {missing.map((m) => (
        <a key={`${m.secret}/${m.key}`} href={addSecretLink(m.secret, m.key)} class="add-secret-link">
          Add secret {m.secret}{m.key ? `/${m.key}` : ''}
        </a>
      ))}
    </div>
  );
}

const ServerRow = ({ server, now, onAction }: { server: ApiObject; now: number; onAction: (a: Action) => void }) => {
  const name = server.metadata.name;
  const ready = condition(server, 'Ready')?.status ?? 'Unknown';
  const url = server.status?.url;
  return (
    <tr data-server={name}>
      <td>
        <a href={`#/servers/${name}`}>{name}</a>
      </td>
      <td>
        <PhaseBadge object={server} />
        <Reason server={server} />
        <DriftNote server={server} />
      </td>
      <td>{ready}</td>
      <td>{server.status?.restartCount ?? 0}</td>
      <td>{age(server.metadata.creationTimestamp, now)}</td>
      <td class="url">
        {url ? (
          <>
            <code>{url}</code> <CopyButton text={url} label={`Copy the URL of ${name}`} />
          </>
        ) : (
          '-'
        )}
      </td>
      <td>
        <ServerActions server={server} onAction={onAction} />
      </td>
    </tr>
  );
};

export function ServersPage() {
  const servers = store.list('MCPServer');
  const [action, setAction] = useState<Action>();
  const [filter, setFilter] = useState('');
  const now = Date.now();
  const shown = filter ? servers.filter((s) => s.metadata.name.includes(filter) || (s.status?.phase ?? '').toLowerCase().includes(filter.toLowerCase())) : servers;
  return (
    <section aria-labelledby="servers-title">
      <div class="page-head">
        <h1 id="servers-title">Servers</h1>
        <label class="search">
          <span class="visually-hidden">Filter servers</span>
          <input type="search" placeholder="Filter by name or phase" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} />
        </label>
        {store.list('GitRepository').length === 0 && <a class="button primary" href="#/install">Install a server</a>}
      </div>
      <SourceLine />
      {store.synced && servers.length === 0 ? (
        <p class="empty">No servers yet. <a href="#/install">Install one</a>, or add a manifest to the directory.</p>
      ) : (
        <div class="table-wrap">
          <table class="servers" data-testid="servers-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Phase</th>
                <th scope="col">Ready</th>
                <th scope="col">Restarts</th>
                <th scope="col">Age</th>
                <th scope="col">Endpoint</th>
                <th scope="col"><span class="visually-hidden">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {shown.map((s) => (
                <ServerRow key={s.metadata.name} server={s} now={now} onAction={setAction} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {action && <ActionDialog action={action} onClose={() => setAction(undefined)} />}
      {servers.length > 0 && <ClientFiles />}
    </section>
  );
}

const CLIENT_NAMES: Record<string, string> = { claude: 'Claude Code', cursor: 'Cursor', vscode: 'VS Code' };

/** As `client config --write/--remove`: every Ready server into (or out of) a client's own configuration file. */
/** Following git: which repository, which revision runs, and whether the last fetch went well. */
function SourceLine() {
  const source = store.list('GitRepository')[0];
  if (source === undefined) return null;
  const spec = source.spec as { url?: string } | undefined;
  const ready = source.status?.conditions?.find((c) => c.type === 'Ready');
  return (
    <p class={ready?.status === 'False' ? 'source-line warn' : 'source-line'} data-testid="source-line">
      Following <code>{spec?.url ?? '?'}</code> at <code>{source.status?.artifact?.revision ?? 'no revision yet'}</code>
      {ready?.status === 'False' ? <> (not ready: {ready.message})</> : null}. Changes go in as commits to that repository.
    </p>
  );
}

function ClientFiles() {
  const [result, setResult] = useState<string>();
  const [error, setError] = useState<Error>();
  const run = async (kind: string, action: 'write' | 'remove') => {
    setError(undefined);
    try {
      const r = await api.post<ClientFileAnswer>(`/api/v1/clients/${kind}/${action}`);
      const parts = [...r.added.map((n) => `added ${n}`), ...r.updated.map((n) => `updated ${n}`), ...r.removed.map((n) => `removed ${n}`)];
      setResult(`${r.file}: ${parts.length > 0 ? parts.join(', ') : 'no change'}${r.skipped.length > 0 ? `; ${r.skipped.join('; ')}` : ''}`);
    } catch (err) {
      setError(err as Error);
    }
  };
  return (
    <section class="clients" aria-labelledby="clients-title">
      <h2 id="clients-title">Clients</h2>
      <p class="muted">Every Ready server, written into the client's own configuration file (the previous file is kept beside it), or taken out again.</p>
      <div class="buttons">
        {Object.entries(CLIENT_NAMES).map(([kind, label]) => (
          <span key={kind} class="client-buttons">
            <button type="button" onClick={() => void run(kind, 'write')}>Add to {label}</button>
            <button type="button" class="small" onClick={() => void run(kind, 'remove')}>Remove from {label}</button>
          </span>
        ))}
      </div>
      {result && <p role="status" data-testid="client-result">{result}</p>}
      <ErrorNote error={error} />
    </section>
  );
}

function Logs({ name }: { name: string }) {
  const [lines, setLines] = useState<string[]>([]);
  const [previous, setPrevious] = useState(false);
  const [follow, setFollow] = useState(true);
  const [search, setSearch] = useState('');
  const [error, setError] = useState<string>();
  const box = useRef<HTMLPreElement>(null);
  useEffect(() => {
    let close: (() => void) | undefined;
    setError(undefined);
    api.get<LogLines>(`/api/v1/mcpservers/${name}/logs?tail=1000${previous ? '&previous=true' : ''}`).then(
      (r) => {
        setLines(r.lines);
        if (r.message) setError(r.message);
      },
      (e: Error) => {
        setLines([]);
        setError(e.message);
      },
    );
    if (follow && !previous) {
      let partial = '';
      close = openStream(`/api/v1/mcpservers/${name}/logs?follow=true`, {
        onEvent: (event, data) => {
          if (event === 'restarted') {
            setLines((old) => [...old, '--- the server started again ---']);
            return;
          }
          const text = partial + (JSON.parse(data) as { text: string }).text;
          const parts = text.split('\n');
          partial = parts.pop() ?? '';
          setError(undefined);
          setLines((old) => [...old, ...parts].slice(-5000));
        },
      });
    }
    return () => close?.();
  }, [name, previous, follow]);
  useEffect(() => {
    if (follow && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines, follow]);
  const shown = search ? lines.filter((l) => l.toLowerCase().includes(search.toLowerCase())) : lines;
  return (
    <section aria-labelledby="logs-title">
      <h2 id="logs-title">Logs</h2>
      <div class="toolbar">
        <label>
          <input type="checkbox" checked={follow} disabled={previous} onChange={(e) => setFollow((e.target as HTMLInputElement).checked)} /> Follow
        </label>
        <label>
          <input type="checkbox" checked={previous} onChange={(e) => setPrevious((e.target as HTMLInputElement).checked)} /> Previous run
        </label>
        <label>
          <span class="visually-hidden">Search the logs</span>
          <input type="search" placeholder="Search" value={search} onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
        </label>
      </div>
      {error ? <p class="muted">{error}</p> : <pre class="logs" ref={box} tabIndex={0} aria-label={`Logs of ${name}`}>{shown.join('\n')}</pre>}
    </section>
  );
}

export function ServerDetailPage({ name }: { name: string }) {
  const server = store.get('MCPServer', name);
  const [detail, setDetail] = useState<ServerDetail>();
  const [error, setError] = useState<{ message: string }>();
  const [warningsOnly, setWarningsOnly] = useState(false);
  const [action, setAction] = useState<Action>();
  const [client, setClient] = useState('claude');
  const [picked, setPicked] = useState<string>();
  const version = useMemo(() => JSON.stringify(server ?? null) + JSON.stringify(store.list('Secret')), [store.version]);
  useEffect(() => {
    api.get<ServerDetail>(`/api/v1/mcpservers/${name}/detail`).then(setDetail, setError);
  }, [name, version]);
  if (!server && store.synced) return <p>mcpserver/{name} not found. <a href="#/">Back to the servers</a></p>;
  if (!server) return null;
  const events = (detail?.events ?? []).filter((e) => !warningsOnly || e.type === 'Warning');
  const spec = server.spec as ServerSpec | undefined;
  const ready = condition(server, 'Ready')?.status === 'True';
  return (
    <section aria-labelledby="detail-title">
      <div class="page-head">
        <h1 id="detail-title">
          <a href="#/">Servers</a> / {name}
        </h1>
        <PhaseBadge object={server} />
        <ServerActions server={server} onAction={setAction} />
      </div>
      <Reason server={server} />
      <ErrorNote error={error} />
      <ToolsDrift server={server} />
      <dl class="facts">
        <dt>Command</dt>
        <dd><code>{[spec?.command, ...(spec?.args ?? [])].join(' ')}</code></dd>
        <dt>Endpoint</dt>
        <dd>{server.status?.url ? <><code>{server.status.url}</code> <CopyButton text={server.status.url} label="Copy the endpoint URL" /></> : '-'}</dd>
        {server.status?.protocolVersion && <><dt>Protocol</dt><dd><code data-testid="protocol">{server.status.protocolVersion}</code></dd></>}
        <dt>Restarts</dt>
        <dd>{server.status?.restartCount ?? 0}</dd>
        <dt>Manifest</dt>
        <dd><code>{detail?.manifest?.file ?? detail?.declaredAt ?? '-'}</code></dd>
        {server.status?.lastAppliedRevision && <><dt>Revision</dt><dd><code data-testid="revision">{server.status.lastAppliedRevision}</code></dd></>}
      </dl>
      {detail && detail.errors.length > 0 && <ErrorNote error={{ message: 'The manifest is invalid', hints: detail.errors }} />}

      <h2>Conditions</h2>
      <div class="table-wrap">
        <table>
          <thead><tr><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Reason</th><th scope="col">Message</th><th scope="col">Since</th></tr></thead>
          <tbody>
            {(server.status?.conditions ?? []).map((c) => (
              <tr key={c.type}><td>{c.type}</td><td>{c.status}</td><td>{c.reason}</td><td>{c.message}</td><td>{age(c.lastTransitionTime)}</td></tr>
            ))}
          </tbody>
        </table>
      </div>

      <h2>Environment</h2>
      <Environment spec={spec} bindings={detail?.bindings} />

      <div class="head-row">
        <h2>Events</h2>
        <label><input type="checkbox" checked={warningsOnly} onChange={(e) => setWarningsOnly((e.target as HTMLInputElement).checked)} /> Warnings only</label>
      </div>
      <ol class="events" data-testid="events">
        {events.length === 0 && <li class="muted">No events.</li>}
        {[...events].reverse().map((e, i) => (
          <li key={i} class={e.type === 'Warning' ? 'warning' : ''}>
            <span class="when">{age(e.lastTimestamp)} ago</span> <strong>{e.reason}</strong>{e.count > 1 ? ` (x${e.count})` : ''}: {e.message}
          </li>
        ))}
      </ol>

      <h2>Tools</h2>
      {detail?.toolsLastKnownAt !== undefined && detail.tools !== undefined && (
        <p class="warn-text" data-testid="tools-last-known">Last known: what the server listed when it last ran ({age(detail.toolsLastKnownAt)} ago). Nothing runs now to ask.</p>
      )}
      {detail?.tools === undefined ? <p class="muted">Not known yet: the server has not completed its MCP handshake.</p> : detail.tools.length === 0 ? <p class="muted">The server lists no tools.</p> : (
        <ul class={detail.toolsLastKnownAt !== undefined ? 'tools last-known' : 'tools'} data-testid="tools">
          {detail.tools.map((t) => (
            <li key={t.name} class={t.filtered ? 'muted' : ''}>
              <code>{t.name}</code>
              {t.filtered ? ' (filtered out by spec.tools: clients do not see it)' : ''}
              {t.description ? ` - ${t.description.split('\n')[0]}` : ''}
              {!t.filtered && ready && (
                <>
                  {' '}
                  <button type="button" class="small" aria-label={`Try ${t.name}`} onClick={() => { setPicked(t.name); document.getElementById('try-title')?.scrollIntoView(); }}>Try</button>
                </>
              )}
            </li>
          ))}
        </ul>
      )}

      <h2 id="try-title">Try a tool</h2>
      <TryTool server={name} ready={ready} {...(picked !== undefined ? { pick: picked } : {})} />

      <Logs name={name} />

      <h2>Manifest</h2>
      {detail?.manifest ? (
        <>
          <p class="muted">{detail.manifest.file}</p>
          <pre class="code">{detail.manifest.text}</pre>
        </>
      ) : <p class="muted">Not declared in the directory (being deleted).</p>}

      <h2>Connect a client</h2>
      {detail?.clients ? (
        <>
          <label>
            Client{' '}
            <select value={client} onChange={(e) => setClient((e.target as HTMLSelectElement).value)}>
              <option value="claude">Claude Code (.mcp.json)</option>
              <option value="cursor">Cursor (.cursor/mcp.json)</option>
              <option value="vscode">VS Code (.vscode/mcp.json)</option>
            </select>
          </label>
          <pre class="code">{JSON.stringify(detail.clients[client], null, 2)}</pre>
          <CopyButton text={JSON.stringify(detail.clients[client], null, 2)} label="Copy the client configuration" />
        </>
      ) : <p class="muted">No endpoint yet.</p>}
      {action && <ActionDialog action={action} onClose={() => setAction(undefined)} />}
    </section>
  );
}
