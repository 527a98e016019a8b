/** What the console knows of itself (the controller, the key), and the screen for a key that cannot be used. */
import { useEffect, useState } from 'preact/hooks';
import { api } from './api';
import type { ConsoleInfo, KeyInfo } from './types';

let shared: Promise<ConsoleInfo> | undefined;

export function loadConsoleInfo(fresh = false): Promise<ConsoleInfo> {
  if (fresh || shared === undefined) shared = api.get<ConsoleInfo>('/api/v1/console');
  shared.catch(() => (shared = undefined));
  return shared;
}

export function useConsoleInfo(): ConsoleInfo | undefined {
  const [info, setInfo] = useState<ConsoleInfo>();
  useEffect(() => {
    loadConsoleInfo(true).then(setInfo, () => undefined);
  }, []);
  return info;
}

/** Keyring trouble: the reason as the keyring gave it, and the ways out, not a generic error. */
export function KeyringScreen({ info }: { info: KeyInfo }) {
  const [checking, setChecking] = useState(false);
  return (
    <section class="keyring" aria-labelledby="keyring-title" role="alert">
      <h1 id="keyring-title">The master key cannot be used</h1>
      <p>
        apiary seals secret values with a key kept in the {info.backend === 'file' ? 'key file' : 'OS keyring'} ({info.where}). The controller cannot reach it, so
        secrets cannot be added, updated or opened here, and servers that need sealed values cannot start.
      </p>
      <h2>Why</h2>
      <pre>{info.message}</pre>
      <h2>The way out</h2>
      <pre>{(info.hints ?? []).join('\n')}</pre>
      <p>
        Once it is fixed (an unlocked keyring, a key file only you can read), check again. A new <code>APIARY_KEY_FILE</code> takes a controller
        restarted with it set.
      </p>
      <button
        type="button"
        class="primary"
        disabled={checking}
        onClick={() => {
          setChecking(true);
          loadConsoleInfo(true).then(() => location.reload(), () => setChecking(false));
        }}
      >
        Check again
      </button>
    </section>
  );
}
