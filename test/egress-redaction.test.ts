/**
 * No secret leaves in a response: a stdio server given a secret returns it
 * plain, base64 (inside a longer blob), URL-encoded, split across two content
 * items, in an embedded resource and in structured content, and prints it on
 * stdout, and in a progress notification. The SDK v2 client, pinned to each revision, at the server's own
 * endpoint and at the aggregate, never sees the value; the server gets a
 * Warning event naming the secret and key (never the value), and its log
 * holds the marker instead of the value.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { harness, nodeServer, secretYaml, type Harness } from './helpers/controller.js';
import { expectRedactedAt, LEAKED as VALUE, leaks, MARK, versionedClient as client } from './helpers/leaks.js';

const LEAKY = fileURLToPath(new URL('./fixtures/servers/leaky-server.mjs', import.meta.url));
const FORMS = ['plain', 'base64', 'url', 'split', 'embedded', 'structured'];

async function ready(h: Harness, name: string): Promise<string> {
  return h.waitFor(`${name} Ready`, async () => {
    const s = await h.status(name);
    return findCondition(s?.conditions, 'Ready')?.status === 'True' && s?.url ? s.url : undefined;
  }, 20_000);
}

describe('no secret leaves in a response', () => {
  it('a secret a server returns in any of its forms reaches no client, in both revisions, at its endpoint and the aggregate', async () => {
    const h = await harness();
    await h.write('s.yaml', secretYaml('github', { token: VALUE }));
    await h.write('leaky.yaml', nodeServer('leaky', [LEAKY], '  env:\n    - name: LEAKED_VALUE\n      valueFrom: { secretKeyRef: { name: github, key: token } }\n'));
    const controller = await h.start();
    const url = await ready(h, 'leaky');
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    for (const version of ['2026-07-28', '2025-11-25']) {
      for (const [at, tool] of [[url, 'leak'], [controller.aggregateUrl!, 'leaky__leak']] as const) {
        const c = await client(at, token, version);
        expect(c.getNegotiatedProtocolVersion()).toBe(version);
        await expectRedactedAt(c, tool, version, FORMS);
        await c.close();
      }
    }
    const events = await h.waitFor('the SecretRedacted event', async () => {
      const server = await h.server('leaky');
      const found = (server?.events ?? []).filter((e) => e.reason === 'SecretRedacted');
      return found.length > 0 ? found : undefined;
    });
    // At most once a minute per server and key, however many answers held it.
    expect(events).toHaveLength(1);
    expect(events[0]!.type).toBe('Warning');
    expect(events[0]!.message).toContain('secret "github" key "token"');
    expect(leaks(JSON.stringify(events))).toEqual([]);
  });

  it("the value a server prints on stdout reaches its log file as the marker", async () => {
    const h = await harness();
    await h.write('s.yaml', secretYaml('github', { token: VALUE }));
    await h.write('leaky.yaml', nodeServer('leaky', [LEAKY], '  env:\n    - name: LEAKED_VALUE\n      valueFrom: { secretKeyRef: { name: github, key: token } }\n'));
    await h.start();
    const url = await ready(h, 'leaky');
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    const c = await client(url, token, '2026-07-28');
    await c.callTool({ name: 'leak', arguments: { form: 'noise' } });
    await c.close();
    const log = await h.waitFor('the noise line in the log', async () => {
      const text = await readFile(new StateLayout(h.stateDir).logFile('leaky'), 'utf8').catch(() => '');
      return text.includes('debug: using') ? text : undefined;
    });
    expect(log).toContain(`debug: using ${MARK}`);
    expect(leaks(log)).toEqual([]);
  });
});
