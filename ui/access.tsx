/**
 * The Access page: how apiary's endpoints authenticate (the Gateway), each
 * AccessPolicy with its subjects and rules (file:line, where to edit), and
 * the effective access of one caller: per server, each tool it listed and
 * whether this caller may call it, by which rule. The decisions are the
 * controller's evaluator's, the one `apiary policy check` asks.
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api } from './api';
import { ErrorNote } from './components';
import { navigate } from './router';
import { store } from './store';
import type { AccessAnswer, AccessPoliciesAnswer, AccessSubject, GatewayAnswer, ItemAccess, PolicyRuleView, PolicyView, ServerAccess } from './types';

type Problem = { message: string; hints?: string[] };

const EXAMPLE_GATEWAY = `apiVersion: apiary.dev/v1alpha1
kind: Gateway
metadata:
  name: default
spec:
  auth:
    mode: oidc
    oidc:
      issuer: https://id.example.com
      audience: apiary`;

function subjectText(s: AccessSubject): string {
  if (s.user !== undefined) return `user ${s.user}`;
  if (s.group !== undefined) return `group ${s.group}`;
  return s.token !== undefined ? `token ${s.token}` : 'authenticated';
}

/** The Ready condition the controller wrote for the Gateway, if it wrote one. */
function gatewayReady(status: unknown): { status: string; reason?: string; message?: string } | undefined {
  const conditions = (status as { conditions?: { type: string; status: string; reason?: string; message?: string }[] } | undefined)?.conditions;
  return conditions?.find((c) => c.type === 'Ready');
}

function GatewayPanel({ gateway }: { gateway: GatewayAnswer }) {
  if (!gateway.present) {
    return (
      <div class="callout" data-testid="no-gateway">
        <h2>No Gateway</h2>
        <p>{gateway.message}</p>
        <pre class="code">{EXAMPLE_GATEWAY}</pre>
      </div>
    );
  }
  const ready = gatewayReady(gateway.status);
  const p = gateway.provider;
  return (
    <div data-testid="gateway">
      <dl class="facts">
        <dt>Auth mode</dt>
        <dd>
          <span class={`badge ${gateway.mode === 'none' ? 'bad' : 'ok'}`} data-testid="auth-mode">{gateway.mode}</span>
          {gateway.mode === 'token' && <span class="muted"> the bearer token in the state directory, as without a Gateway</span>}
          {gateway.mode === 'none' && <span class="bad-text"> no authentication: anyone who reaches the ports may call</span>}
        </dd>
        {p && (
          <>
            <dt>Provider</dt>
            <dd><code data-testid="issuer">{p.issuer}</code></dd>
            <dt>Audience</dt>
            <dd><code>{p.audience}</code></dd>
            <dt>Claims</dt>
            <dd>user from <code>{p.usernameClaim}</code>, groups from <code>{p.groupsClaim}</code></dd>
            {p.requiredScopes && p.requiredScopes.length > 0 && (
              <>
                <dt>Required scopes</dt>
                <dd>{p.requiredScopes.join(' ')}</dd>
              </>
            )}
          </>
        )}
        {gateway.file && (
          <>
            <dt>Declared</dt>
            <dd><code>{gateway.file}:{gateway.line}</code></dd>
          </>
        )}
        {ready && (
          <>
            <dt>Status</dt>
            <dd>
              <span class={`badge ${ready.status === 'True' ? 'ok' : 'bad'}`}>{ready.status === 'True' ? 'Ready' : ready.reason ?? 'Not ready'}</span> {ready.message}
            </dd>
          </>
        )}
      </dl>
      {gateway.errors.map((e) => <p class="error" key={e}>{e}</p>)}
    </div>
  );
}

function ruleCovers(rule: PolicyRuleView): string {
  const parts = [
    ...(rule.tools ? [`tools ${rule.tools.join(', ')}`] : []),
    ...(rule.prompts ? [`prompts ${rule.prompts.join(', ')}`] : []),
    ...(rule.resources ? [`resources ${rule.resources.join(', ')}`] : []),
  ];
  return parts.length === 0 ? 'everything' : parts.join('; ');
}

function PolicyCard({ policy }: { policy: PolicyView }) {
  return (
    <li data-policy={policy.name}>
      <div class="head-row">
        <strong>{policy.name}</strong>
        <code class="muted small-text">{policy.file}:{policy.line}</code>
      </div>
      {policy.errors.length > 0 ? (
        policy.errors.map((e) => <p class="error" key={e}>{e}</p>)
      ) : (
        <>
          <p>
            {policy.subjects.map((s) => (
              <span class="chip" key={subjectText(s)}>{subjectText(s)}</span>
            ))}
          </p>
          <ul class="rules">
            {policy.rules.map((rule) => (
              <li key={rule.at}>
                <span class={`badge ${rule.effect === 'Allow' ? 'ok' : 'bad'}`}>{rule.effect}</span> on {rule.servers.join(', ')}: {ruleCovers(rule)} <code class="muted small-text">{rule.at}</code>
              </li>
            ))}
          </ul>
        </>
      )}
    </li>
  );
}

/** Why, in words: the rule, or the default that applied. */
function why(item: ItemAccess, mode: string): string {
  if (item.rule !== undefined) return `by ${item.rule}`;
  if (item.reason === 'no-policies') return `no AccessPolicy: everything is allowed in mode ${mode}`;
  return 'no rule allows it (default deny)';
}

function ServerTable({ access, mode }: { access: ServerAccess; mode: string }) {
  return (
    <div class="server-access" data-server-access={access.server}>
      <h3>
        {access.server} <span class="muted small-text">{access.toolsKnown ? `${access.allowed} allowed, ${access.denied} denied` : 'tools not known'}</span>
      </h3>
      {!access.toolsKnown && <p class="muted">The server has not listed its tools since the controller started (it is not running): its decisions show once it has.</p>}
      {access.toolsLastKnownAt && <p class="muted small-text">Tools as last listed at {access.toolsLastKnownAt}.</p>}
      {access.items.length > 0 && (
        <div class="table-wrap">
          <table class="decisions">
            <thead>
              <tr><th>Tool</th><th>Decision</th><th>Why</th></tr>
            </thead>
            <tbody>
              {access.items.map((item) => (
                <tr key={item.name} data-tool={item.name} class={item.effect === 'Deny' ? 'denied' : undefined}>
                  <td><code>{item.name}</code></td>
                  <td>
                    <span class={`badge ${item.hiddenBySpec ? 'idle' : item.effect === 'Allow' ? 'ok' : 'bad'}`} data-testid="decision">
                      {item.hiddenBySpec ? 'hidden' : item.effect === 'Allow' ? 'Allowed' : 'Denied'}
                    </span>
                  </td>
                  <td data-testid="why">{item.hiddenBySpec ? 'kept from every client by spec.tools' : why(item, mode)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

/** The caller in the address (#/access?user=alice&group=dev), as the form edits it. */
interface CallerForm {
  user: string;
  groups: string;
  token: boolean;
}

function formOf(params: URLSearchParams): CallerForm {
  return { user: params.get('user') ?? '', groups: params.getAll('group').join(', '), token: params.get('token') === 'local' };
}

function queryOf(form: CallerForm): string {
  if (form.token) return 'token=local';
  const q = new URLSearchParams();
  if (form.user.trim() !== '') q.set('user', form.user.trim());
  for (const g of form.groups.split(',').map((x) => x.trim()).filter(Boolean)) q.append('group', g);
  return q.toString();
}

function Matrix({ answer, current }: { answer: AccessAnswer; current: string }) {
  const { subjects, servers, cells } = answer.matrix;
  if (subjects.length === 0) return null;
  return (
    <>
      <h2>Who may use what</h2>
      <p class="muted small-text">Each caller the policies name, per server: the tools it may call of those the server listed (a user row is that user alone, in no group; a group row any member of it). Pick a row to see why.</p>
      <div class="table-wrap">
        <table class="matrix" data-testid="matrix">
          <thead>
            <tr>
              <th>Caller</th>
              {servers.map((s) => <th key={s}>{s}</th>)}
            </tr>
          </thead>
          <tbody>
            {subjects.map((row, i) => (
              <tr key={row.query} data-subject={row.query} aria-current={row.query === current ? 'true' : undefined}>
                <td><a href={`#/access?${row.query}`}>{row.label}</a></td>
                {servers.map((server, j) => {
                  const cell = cells[i]?.[j];
                  if (!cell?.known) return <td key={server} class="muted" title="the server has not listed its tools since the controller started">?</td>;
                  const total = cell.allowed + cell.denied;
                  const tone = cell.allowed === 0 ? 'bad' : cell.denied === 0 ? 'ok' : 'progress';
                  return (
                    <td key={server}>
                      <span class={`badge ${tone}`}>{cell.allowed === total ? 'all' : cell.allowed === 0 ? 'none' : `${cell.allowed} of ${total}`}</span>
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

function EffectiveAccess({ params, mode }: { params: URLSearchParams; mode: string }) {
  const asked = queryOf(formOf(params));
  const [form, setForm] = useState<CallerForm>(() => formOf(params));
  const [answer, setAnswer] = useState<AccessAnswer>();
  const [error, setError] = useState<Problem>();
  useEffect(() => setForm(formOf(params)), [asked]);
  // Read again when what decides changes: the policies, the Gateway, the servers and how many tools each lists.
  const deciding = useMemo(() => accessInputs(), [store.version]);
  useEffect(() => {
    setError(undefined);
    // With nobody picked, the matrix still shows: asked for the local token, which every directory can name.
    api.get<AccessAnswer>(`/api/v1/access?${asked || 'token=local'}`).then(setAnswer, (err: Problem) => {
      setAnswer(undefined);
      setError(err);
    });
  }, [asked, deciding]);
  const show = (e: Event) => {
    e.preventDefault();
    navigate(`#/access?${queryOf(form)}`);
  };
  return (
    <>
      <h2>Effective access</h2>
      <form class="row caller" onSubmit={show} data-testid="caller-form">
        <label>
          User
          <input name="user" value={form.user} disabled={form.token} placeholder="alice" autocomplete="off" onInput={(e) => setForm({ ...form, user: (e.target as HTMLInputElement).value })} />
        </label>
        <label>
          Groups
          <input name="groups" value={form.groups} disabled={form.token} placeholder="dev, ops" autocomplete="off" onInput={(e) => setForm({ ...form, groups: (e.target as HTMLInputElement).value })} />
        </label>
        <label>
          <input type="checkbox" name="token" checked={form.token} onChange={(e) => setForm({ ...form, token: (e.target as HTMLInputElement).checked })} /> the local token
        </label>
        <button type="submit" class="primary">Show</button>
      </form>
      <ErrorNote error={error} />
      {answer && asked !== '' && (
        <div data-testid="effective">
          <p>
            What <strong data-testid="caller">{answer.label}</strong> may call{mode === 'oidc' ? '' : ` (auth mode ${mode})`}:
          </p>
          {answer.notes.map((n) => <p class="warn-text small-text" key={n}>{n}</p>)}
          {answer.servers.length === 0 && <p class="empty">No servers are declared.</p>}
          {answer.servers.map((s) => <ServerTable key={s.server} access={s} mode={answer.mode} />)}
        </div>
      )}
      {answer && asked === '' && <p class="muted">Pick a caller: a user and their groups, or the local token; or a row below.</p>}
      {answer && <Matrix answer={answer} current={asked} />}
    </>
  );
}

/** What an effective-access answer depends on, as the store knows it: not every status write (a restart count) asks again. */
function accessInputs(): string {
  const kinds = [...store.objects.entries()].filter(([key]) => key.startsWith('Gateway/') || key.startsWith('AccessPolicy/'));
  const servers = store.list('MCPServer').map((o) => [o.metadata.name, o.status?.phase, o.status?.tools]);
  return JSON.stringify([kinds, servers]);
}

export function AccessPage({ params }: { params: URLSearchParams }) {
  const [gateway, setGateway] = useState<GatewayAnswer>();
  const [policies, setPolicies] = useState<AccessPoliciesAnswer>();
  const [error, setError] = useState<Problem>();
  // The access kinds as the store last heard them: a change to either reads both again.
  const kinds = useMemo(() => JSON.stringify([...store.objects.entries()].filter(([key]) => key.startsWith('Gateway/') || key.startsWith('AccessPolicy/'))), [store.version]);
  useEffect(() => {
    api.get<GatewayAnswer>('/api/v1/gateway').then(setGateway, setError);
    api.get<AccessPoliciesAnswer>('/api/v1/accesspolicies').then(setPolicies, setError);
  }, [kinds]);
  const warnings = [...new Set([...(gateway?.warnings ?? []), ...(policies?.warnings ?? [])])];
  return (
    <section class="access">
      <div class="page-head">
        <h1>Access</h1>
      </div>
      <ErrorNote error={error} />
      {gateway && <GatewayPanel gateway={gateway} />}
      {warnings.map((w) => <p class="warn-text" key={w}>{w}</p>)}
      <h2>Policies</h2>
      {policies && policies.items.length === 0 && (
        <p class="empty" data-testid="no-policies">
          No AccessPolicy. {policies.mode === 'oidc' ? 'In mode oidc nothing is allowed until a policy allows it: write one (kind: AccessPolicy) naming users or groups and the servers and tools they may use.' : 'Every caller with the token may use everything, as without a Gateway.'}
        </p>
      )}
      {policies && policies.items.length > 0 && (
        <ul class="cards policies">
          {policies.items.map((p) => <PolicyCard key={p.name} policy={p} />)}
        </ul>
      )}
      {gateway && <EffectiveAccess params={params} mode={gateway.mode} />}
    </section>
  );
}
