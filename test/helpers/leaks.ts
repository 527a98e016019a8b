/**
 * The secret value the redaction tests give their leaky servers, the marker
 * it must become, and what a leak of it looks like in an answer.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { expect } from 'vitest';

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

/**
 * At one client of a leaky server (its tool `tool`, at its endpoint or as the aggregate names it): each of `forms` comes
 * back with the marker and no form of the value; so does the progress notification, where the server streams one; and
 * for the endpoint's own `leak`, the resource and the prompt.
 */
export async function expectRedactedAt(c: Client, tool: string, version: string, forms: readonly string[], progress = true): Promise<void> {
  for (const form of forms) {
    const text = JSON.stringify(await c.callTool({ name: tool, arguments: { form } }));
    expect(leaks(text), `${form} at ${tool} (${version})`).toEqual([]);
    expect(text, `${form} at ${tool} (${version})`).toContain(MARK);
  }
  if (progress) {
    const heard: string[] = [];
    await c.callTool({ name: tool, arguments: { form: 'progress' } }, { onprogress: (p) => heard.push(p.message ?? '') });
    expect(heard, `progress at ${tool} (${version})`).toEqual([`loading with ${MARK}`]);
  }
  if (tool === 'leak') {
    const read = JSON.stringify(await c.readResource({ uri: 'env://value' }));
    const prompt = JSON.stringify(await c.getPrompt({ name: 'leak' }));
    expect([...leaks(read), ...leaks(prompt)], `resource and prompt (${version})`).toEqual([]);
    expect(read).toContain(MARK);
    expect(prompt).toContain(MARK);
  }
}
