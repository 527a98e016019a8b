/**
 * Install a server: name, command, arguments and variables. A secret
 * variable binds an existing secret's key (its value never comes to the
 * page) or takes a typed value that becomes a new sealed secret named after
 * the variable. Before anything is written the form shows the manifests and
 * the `apiary add` command that would write the same.
 */
import { useState } from 'preact/hooks';
import { api } from './api';
import { ErrorNote } from './components';
import { KeyringScreen, useConsoleInfo } from './keyring';
import { NAME_PATTERN, VARIABLE_PATTERN } from './patterns';
import { navigate } from './router';
import { store } from './store';
import type { InstallPlanAnswer } from './types';

interface PlainVar {
  name: string;
  value: string;
}

interface SecretVar {
  variable: string;
  /** "new" or "secret/key" of an existing one. */
  source: string;
  value: string;
}

type Plan = InstallPlanAnswer;

export function existingKeys(): string[] {
  return store.list('Secret').flatMap((s) => Object.keys((s.spec as { keys?: Record<string, string> } | undefined)?.keys ?? {}).map((k) => `${s.metadata.name}/${k}`));
}

/** GITHUB_TOKEN -> github-token/GITHUB_TOKEN, if that secret holds that key: the likely binding. */
export function guessSource(variable: string): string {
  const guess = `${variable.toLowerCase().replace(/_/g, '-')}/${variable}`;
  return existingKeys().includes(guess) ? guess : 'new';
}

export function InstallPage() {
  const info = useConsoleInfo();
  const [name, setName] = useState('');
  const [command, setCommand] = useState('');
  const [args, setArgs] = useState('');
  const [transport, setTransport] = useState('stdio');
  const [port, setPort] = useState('');
  const [plain, setPlain] = useState<PlainVar[]>([]);
  const [secrets, setSecrets] = useState<SecretVar[]>([]);
  const flow = useReviewThenWrite<Plan>('/api/v1/install/plan', '/api/v1/install');
  const { plan, error, busy, changed } = flow;
  if (info?.key.state === 'unavailable' && secrets.some((s) => s.source === 'new')) return <KeyringScreen info={info.key} />;

  const body = () => ({
    name,
    command,
    args: args.split('\n').map((a) => a.trim()).filter(Boolean),
    transport: transport === 'stdio' ? undefined : transport,
    port: port === '' ? undefined : Number(port),
    env: plain.filter((p) => p.name),
    secrets: secrets.filter((s) => s.variable).map((s) => (s.source === 'new' ? { variable: s.variable } : { variable: s.variable, secret: s.source.split('/')[0], key: s.source.split('/').slice(1).join('/') })),
  });
  const review = (e: Event) => flow.review(e, body());
  const write = () => flow.write({ ...body(), values: Object.fromEntries(secrets.filter((s) => s.source === 'new').map((s) => [s.variable, s.value])) }, `#/servers/${name}`);
  const keys = existingKeys();
  return (
    <section aria-labelledby="install-title">
      <h1 id="install-title">Install a server</h1>
      <form class="stack install" onSubmit={(e) => void review(e)} onInput={changed}>
        <label>
          Name
          <input name="name" required pattern={NAME_PATTERN} maxLength={63} value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} placeholder="github" />
        </label>
        <label>
          Command
          <input name="command" required value={command} onInput={(e) => setCommand((e.target as HTMLInputElement).value)} placeholder="npx" />
        </label>
        <label>
          Arguments, one per line
          <textarea name="args" rows={3} value={args} onInput={(e) => setArgs((e.target as HTMLTextAreaElement).value)} placeholder={'-y\n@modelcontextprotocol/server-github'} />
        </label>
        <div class="row">
          <label>
            Transport
            <select name="transport" value={transport} onChange={(e) => { setTransport((e.target as HTMLSelectElement).value); changed(); }}>
              <option value="stdio">stdio</option>
              <option value="streamable-http">streamable-http</option>
              <option value="sse">sse</option>
            </select>
          </label>
          {transport !== 'stdio' && (
            <label>
              Port (optional)
              <input name="port" type="number" min={1} max={65535} value={port} onInput={(e) => setPort((e.target as HTMLInputElement).value)} />
            </label>
          )}
        </div>

        <fieldset>
          <legend>Secret variables</legend>
          {secrets.map((s, i) => (
            <div class="row var" key={i}>
              <label>
                Variable
                <input value={s.variable} required pattern={VARIABLE_PATTERN} placeholder="GITHUB_TOKEN" onInput={(e) => {
                  const variable = (e.target as HTMLInputElement).value;
                  setSecrets(secrets.map((x, j) => (j === i ? { ...x, variable, source: x.source === 'new' || x.value === '' ? guessSource(variable) : x.source } : x)));
                }} />
              </label>
              <label>
                Value from
                <select value={s.source} onChange={(e) => { setSecrets(secrets.map((x, j) => (j === i ? { ...x, source: (e.target as HTMLSelectElement).value } : x))); changed(); }}>
                  <option value="new">a new secret (type the value)</option>
                  {keys.map((k) => <option key={k} value={k}>existing: {k}</option>)}
                </select>
              </label>
              {s.source === 'new' && (
                <label>
                  Value
                  <input type="password" autoComplete="off" required value={s.value} onInput={(e) => setSecrets(secrets.map((x, j) => (j === i ? { ...x, value: (e.target as HTMLInputElement).value } : x)))} />
                </label>
              )}
              <button type="button" class="small" aria-label={`Remove variable ${s.variable || i + 1}`} onClick={() => { setSecrets(secrets.filter((_, j) => j !== i)); changed(); }}>Remove</button>
            </div>
          ))}
          <button type="button" onClick={() => setSecrets([...secrets, { variable: '', source: 'new', value: '' }])}>Add a secret variable</button>
        </fieldset>

        <fieldset>
          <legend>Plain variables</legend>
          {plain.map((p, i) => (
            <div class="row var" key={i}>
              <label>
                Variable
                <input value={p.name} required pattern={VARIABLE_PATTERN} onInput={(e) => setPlain(plain.map((x, j) => (j === i ? { ...x, name: (e.target as HTMLInputElement).value } : x)))} />
              </label>
              <label>
                Value
                <input value={p.value} onInput={(e) => setPlain(plain.map((x, j) => (j === i ? { ...x, value: (e.target as HTMLInputElement).value } : x)))} />
              </label>
              <button type="button" class="small" aria-label={`Remove variable ${p.name || i + 1}`} onClick={() => { setPlain(plain.filter((_, j) => j !== i)); changed(); }}>Remove</button>
            </div>
          ))}
          <button type="button" onClick={() => setPlain([...plain, { name: '', value: '' }])}>Add a plain variable</button>
        </fieldset>

        <ErrorNote error={error} />
        <div class="buttons">
          <button type="submit" class={plan ? '' : 'primary'}>Review</button>
        </div>
      </form>
      {plan && <PlanView plan={plan} busy={busy} onInstall={() => void write()} />}
    </section>
  );
}

/** Review (the plan endpoint), then write (the install endpoint) and go to the server: the install forms' flow. */
export function useReviewThenWrite<P>(planPath: string, writePath: string) {
  const [plan, setPlan] = useState<P>();
  const [error, setError] = useState<{ message: string; hints?: string[] }>();
  const [busy, setBusy] = useState(false);
  return {
    plan,
    error,
    busy,
    changed: () => setPlan(undefined),
    review: async (e: Event, body: unknown) => {
      e.preventDefault();
      setError(undefined);
      try {
        setPlan(await api.post<P>(planPath, body));
      } catch (err) {
        setError(err as Error);
      }
    },
    write: async (body: unknown, then: string) => {
      setBusy(true);
      setError(undefined);
      try {
        await api.post(writePath, body);
        navigate(then);
      } catch (err) {
        setError(err as Error);
        setBusy(false);
      }
    },
  };
}

/** What an install will write, reviewed before the Install button writes it. */
export function PlanView({ plan, busy, onInstall }: { plan: Plan; busy: boolean; onInstall: () => void }) {
  return (
    <section class="plan" aria-labelledby="plan-title">
      <h2 id="plan-title">What will be written</h2>
      {plan.newSecrets.length > 0 && (
        <p>
          New sealed {plan.newSecrets.length === 1 ? 'secret' : 'secrets'}: {plan.newSecrets.map((s) => `${s.secret} (key ${s.key}, for ${s.variable})`).join(', ')}
        </p>
      )}
      <pre class="code" data-testid="plan-yaml">{plan.yaml}</pre>
      <p>The same from a terminal:</p>
      <pre class="code" data-testid="plan-command">{plan.command}</pre>
      <div class="buttons">
        <button type="button" class="primary" disabled={busy} onClick={onInstall}>Install</button>
      </div>
    </section>
  );
}
