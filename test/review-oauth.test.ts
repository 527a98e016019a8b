/**
 * Defects found in the security review of apiary as the OAuth client of
 * hosted servers (issue 27), behind a real controller and the real sealed
 * token store: a login's tokens go only to the resource they were asked for.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { KeyStore } from '../src/crypto/keys.js';
import { SecretValue } from '../src/crypto/secret-value.js';
import { StateLayout } from '../src/state/layout.js';
import { OAuthTokenStore } from '../src/state/oauth-tokens.js';
import { harness } from './helpers/controller.js';

const CANARY = 'CANARY-ACCESS-TOKEN-4f1c';

/** A server that keeps every Authorization header it is sent and answers 401 (as a server that does not know the token would). */
async function recorder(): Promise<{ url: string; seen: string[]; server: Server }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    if (req.headers.authorization !== undefined) seen.push(req.headers.authorization);
    req.resume();
    res.writeHead(401, { 'Content-Type': 'application/json' }).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, seen, server };
}

describe('security review: a hosted server login', () => {
  let other: Awaited<ReturnType<typeof recorder>>;
  beforeAll(async () => {
    other = await recorder();
  });
  afterAll(() => {
    other?.server.close();
  });

  it("never sends a login's token to a URL the manifest names now but the tokens were not asked for: the server needs a login again", async () => {
    const h = await harness();
    // The tokens `apiary connect hosted` left when spec.remote.url named the server the login was for.
    const store = new OAuthTokenStore(new StateLayout(h.stateDir), async () => (await new KeyStore({ env: { APIARY_KEY_FILE: h.keyFile } }).getOrCreate()).key);
    const now = Date.now();
    await store.saveGrant('hosted', {
      issuer: 'https://login.example.com',
      resource: 'https://mcp.example.com/mcp',
      clientId: 'apiary-client',
      accessToken: new SecretValue(CANARY),
      expiresAt: now + 3_600_000,
      issuedAt: now,
      tokenType: 'Bearer',
    });
    // The manifest now names another server (an edit, a pull of the manifests' repository).
    await h.write('hosted.yaml', `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: hosted\nspec:\n  remote:\n    url: ${other.url}\n    auth:\n      type: oauth\n`);
    await h.start();
    const stuck = await h.waitFor('hosted Stuck for a login', async () => {
      const s = await h.status('hosted');
      return s?.phase === 'Stuck' ? s : undefined;
    }, 20_000);
    expect(other.seen.filter((a) => a.includes(CANARY))).toEqual([]);
    const ready = findCondition(stuck.conditions, 'Ready');
    expect(ready?.reason).toBe('AuthorizationRequired');
    expect(ready?.message).toContain('its tokens were asked for another URL than spec.remote.url names now');
    expect(JSON.stringify(stuck)).not.toContain(CANARY);
    await h.controller!.stop();
  }, 40_000);
});
