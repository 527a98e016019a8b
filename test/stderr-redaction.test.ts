/**
 * A stdio server's stderr reaches its log redacted: the secret value it
 * prints as it starts (before the handshake), on a call, and as its last
 * words (no newline, then it exits) is in the log as the marker, never as
 * the value, and the last words are not lost with the exit.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { harness, nodeServer, secretYaml, type Harness } from './helpers/controller.js';

const LEAKY = fileURLToPath(new URL('./fixtures/servers/leaky-server.mjs', import.meta.url));
const VALUE = 'ghp_St0derrCanary+/9Zq~x y';
const MARK = '[redacted: secret github/token]';

async function ready(h: Harness, name: string): Promise<string> {
  return h.waitFor(`${name} Ready`, async () => {
    const s = await h.status(name);
    return findCondition(s?.conditions, 'Ready')?.status === 'True' && s?.url ? s.url : undefined;
  }, 20_000);
}

async function call(url: string, token: string, form: string): Promise<void> {
  const c = new Client({ name: 'stderr-test', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await c.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  // stderr-exit: the server exits while answering; the call fails, and that is not what is tested.
  await c.callTool({ name: 'leak', arguments: { form } }).catch(() => undefined);
  await c.close().catch(() => undefined);
}

const logs = async (layout: StateLayout, name: string): Promise<string> =>
  (await Promise.all([layout.previousLogFile(name), layout.logFile(name)].map((f) => readFile(f, 'utf8').catch(() => '')))).join('');

describe("a server's stderr", () => {
  it('reaches its log with the secret value replaced by the marker, its last words kept when it exits', async () => {
    const h = await harness();
    await h.write('s.yaml', secretYaml('github', { token: VALUE }));
    await h.write('leaky.yaml', nodeServer('leaky', [LEAKY], '  env:\n    - name: LEAK_AT_START\n      value: "1"\n    - name: LEAKED_VALUE\n      valueFrom: { secretKeyRef: { name: github, key: token } }\n'));
    await h.start();
    const layout = new StateLayout(h.stateDir);
    const url = await ready(h, 'leaky');
    const token = (await readEndpointToken(layout))!;
    await call(url, token, 'stderr');
    await h.waitFor('the stderr line in the log', async () => ((await logs(layout, 'leaky')).includes('expires soon') ? true : undefined));
    await call(url, token, 'stderr-exit');
    const log = await h.waitFor('the last words in the log', async () => {
      const text = await logs(layout, 'leaky');
      return text.includes('fatal: rejected') ? text : undefined;
    });
    expect(log).toContain(`starting with ${MARK}\n`);
    expect(log).toContain(`warning: the token ${MARK} expires soon\n`);
    expect(log).toContain(`fatal: rejected ${MARK}`);
    expect(log).not.toContain(VALUE);
    expect(log).not.toContain(VALUE.slice(0, 10));
    // The exit is reported once its last words are in the file: the status quotes them.
    const last = await h.waitFor('the exit in status', async () => (await h.status('leaky'))?.lastTermination);
    expect(last.message).toBe(`fatal: rejected ${MARK}`);
  });
});
