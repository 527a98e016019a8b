/**
 * A server's Environment: every variable it is given, in the order of its
 * manifest. Plain ones with their values (they are in the manifest already);
 * secret ones by reference only (secret and key) and whether that reference
 * holds here, never a value, which never comes to the page.
 */
import type { Binding, EnvVar, ServerSpec } from './types';

/** The Secrets page with the Add dialog open for what is missing. */
export function addSecretLink(secret: string, key?: string): string {
  return `#/secrets?add=${encodeURIComponent(secret)}${key ? `&key=${encodeURIComponent(key)}` : ''}`;
}

function BindingState({ binding }: { binding: Binding | undefined }) {
  if (binding === undefined) return <span class="muted">...</span>;
  if (binding.state === 'ok') return <>✓ present</>;
  return (
    <>
      <strong class="bad-text">✗ {binding.message}</strong>{' '}
      {binding.state !== 'SecretDecryptFailed' && <a href={addSecretLink(binding.secret, binding.key)}>Add it</a>}
    </>
  );
}

function VariableRow({ variable, binding }: { variable: EnvVar; binding: Binding | undefined }) {
  const ref = variable.valueFrom?.secretKeyRef;
  if (ref === undefined) {
    return (
      <tr data-variable={variable.name}>
        <td><code>{variable.name}</code></td>
        <td><code>{variable.value ?? ''}</code></td>
        <td class="muted">plain</td>
      </tr>
    );
  }
  return (
    <tr data-variable={variable.name} class={binding === undefined || binding.state === 'ok' ? '' : 'missing'}>
      <td><code>{variable.name}</code></td>
      <td>secret <a href="#/secrets">{ref.name}</a>, key <code>{ref.key}</code>{ref.optional ? ' (optional)' : ''}</td>
      <td><BindingState binding={binding} /></td>
    </tr>
  );
}

export function Environment({ spec, bindings }: { spec: ServerSpec | undefined; bindings: Binding[] | undefined }) {
  const env = spec?.env ?? [];
  const envFrom = spec?.envFrom ?? [];
  if (env.length === 0 && envFrom.length === 0) return <p class="muted">No variables: the server gets only apiary's basic environment.</p>;
  const bound = (b: Binding) => b.from === 'env';
  return (
    <div class="table-wrap">
      <table data-testid="environment">
        <thead><tr><th scope="col">Variable</th><th scope="col">Value</th><th scope="col">State</th></tr></thead>
        <tbody>
          {env.map((v) => <VariableRow key={v.name} variable={v} binding={bindings?.find((b) => bound(b) && b.variable === v.name)} />)}
          {envFrom.map((from) => (
            <tr key={`from-${from.secretRef.name}`} data-variable={`envFrom:${from.secretRef.name}`}>
              <td><code>{from.prefix ? `${from.prefix}*` : '(every key)'}</code></td>
              <td>every key of secret <a href="#/secrets">{from.secretRef.name}</a>{from.secretRef.optional ? ' (optional)' : ''}</td>
              <td><BindingState binding={bindings?.find((b) => !bound(b) && b.secret === from.secretRef.name)} /></td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
