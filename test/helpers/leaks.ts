/**
 * The secret value the redaction tests give their leaky servers, the marker
 * it must become, and what a leak of it looks like in an answer.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

export const LEAKED = 'ghp_R3dact10nCanary+/9Zq~x y';
export const MARK = '[redacted: secret github/token]';

/** The SDK v2 client at `url` with apiary's token, pinned to `version` (2025-11-25: the 2025 era). */
export async function versionedClient(url: string, token: string, version: string): Promise<Client> {
  const c = new Client({ name: 'redaction-test', version: '1' }, { versionNegotiation: { mode: version === '2025-11-25' ? 'legacy' : { pin: version } } });
  await c.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return c;
}

/** Every form a leak of LEAKED could take in an answer. */
export function leaks(text: string): string[] {
  const half = Math.floor(LEAKED.length / 2);
  const needles = [LEAKED, encodeURIComponent(LEAKED), Buffer.from(`Bearer ${LEAKED}`).toString('base64'), Buffer.from(LEAKED).toString('base64').slice(0, 12), LEAKED.slice(0, half), LEAKED.slice(half)];
  return needles.filter((n) => text.includes(n));
}
