import { createServer, request as httpRequest, type Server } from 'node:http';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { routeApi, type ApiContext } from '../src/console/api.js';
import type { Feed } from '../src/console/feed.js';
import { LastKnownTools } from '../src/console/last-tools.js';
import { AuditVerifier } from '../src/console/audit-api.js';
import { PendingLogins } from '../src/console/connect-api.js';
import { sendError } from '../src/console/http.js';
import { KeyStore } from '../src/crypto/keys.js';
import { directoryLoadCount } from '../src/manifests/loader.js';
import { createLogger } from '../src/util/logger.js';
import { TINY_SERVER } from './helpers/controller.js';
import { workspace } from './helpers/tmp.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

/** The console's API routes alone, in this process and with no controller beside them, so every directory read counted is the route's. */
async function api(): Promise<{ dir: string; send(method: string, path: string, body: unknown): Promise<{ status: number; body: string; loads: number }> }> {
  const ws = await workspace();
  await mkdir(ws.dir, { recursive: true });
  const ctx: ApiContext = {
    dir: ws.dir,
    stateDir: ws.stateDir,
    keys: new KeyStore({ env: { APIARY_KEY_FILE: ws.keyFile } }),
    feed: {} as Feed, // no write route reads the controller's view
    version: 'test',
    mcpView: () => undefined,
    lastTools: new LastKnownTools(),
    catalog: {},
    auditVerifier: new AuditVerifier(),
    logins: new PendingLogins(createLogger(() => undefined)),
  };
  const server = createServer((req, res) => {
    routeApi(ctx, req, res, new URL(req.url ?? '/', 'http://x').pathname).catch((err: unknown) => sendError(res, err));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    dir: ws.dir,
    async send(method, path, body) {
      const before = directoryLoadCount();
      const text = JSON.stringify(body);
      const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)) } }, (res) => {
          let data = '';
          res.on('data', (d: Buffer) => (data += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
        });
        req.on('error', reject);
        req.end(text);
      });
      return { ...reply, loads: directoryLoadCount() - before };
    },
  };
}

describe('a console write', () => {
  it('reads the manifest directory once, under the lock', async () => {
    const c = await api();
    await writeFile(join(c.dir, 'server-a.yaml'), `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: a\nspec:\n  command: node\n  args: [${JSON.stringify(TINY_SERVER)}]\n  env:\n    - name: TOKEN\n      valueFrom:\n        secretKeyRef: { name: api, key: TOKEN }\n`);
    const install = { name: 'gh', command: 'node', args: [TINY_SERVER], secrets: [{ variable: 'GITHUB_TOKEN' }, { variable: 'API_KEY', secret: 'api', key: 'TOKEN' }] };
    const writes: [string, string, unknown, number][] = [
      ['POST', '/api/v1/secrets', { name: 'api', key: 'TOKEN', value: 'one' }, 201],
      ['PUT', '/api/v1/secrets/api/keys/TOKEN', { value: 'two' }, 200],
      ['POST', '/api/v1/install', { ...install, values: { GITHUB_TOKEN: 'three' } }, 201],
      ['POST', '/api/v1/mcpservers/gh/suspend', {}, 200],
      ['POST', '/api/v1/mcpservers/gh/resume', {}, 200],
      ['DELETE', '/api/v1/mcpservers/gh', {}, 200],
      ['DELETE', '/api/v1/secrets/api', {}, 200],
    ];
    const reads: string[] = [];
    for (const [method, path, body, status] of writes) {
      const reply = await c.send(method, path, body);
      expect(reply.status, `${method} ${path}: ${reply.body}`).toBe(status);
      reads.push(`${method} ${path}: ${reply.loads}`);
    }
    expect(reads).toEqual(writes.map(([method, path]) => `${method} ${path}: 1`));
  });

  it('still answers what it found under the lock: a key that is there is a conflict, one that is not is not found', async () => {
    const c = await api();
    expect((await c.send('POST', '/api/v1/secrets', { name: 'api', key: 'TOKEN', value: 'one' })).status).toBe(201);
    const again = await c.send('POST', '/api/v1/secrets', { name: 'api', key: 'TOKEN', value: 'two' });
    expect([again.status, again.loads]).toEqual([409, 1]);
    const missing = await c.send('PUT', '/api/v1/secrets/api/keys/OTHER', { value: 'x' });
    expect([missing.status, missing.loads]).toEqual([404, 1]);
    const gone = await c.send('DELETE', '/api/v1/mcpservers/nope', {});
    expect([gone.status, gone.loads]).toEqual([404, 1]);
  });
});

describe('writeInstall under one hold of the lock', () => {
  it('puts two keys of one new secret in one document, and reads the directory once', async () => {
    const { planInstall, writeInstall } = await import('../src/manifests/install.js');
    const { loadDirectory } = await import('../src/manifests/loader.js');
    const { SecretValue } = await import('../src/crypto/secret-value.js');
    const ws = await workspace();
    await mkdir(ws.dir, { recursive: true });
    const plan = planInstall({ name: 'two', command: 'node', secrets: [{ variable: 'A', create: { secret: 'shared', key: 'A' } }, { variable: 'B', create: { secret: 'shared', key: 'B' } }] }, []);
    const before = directoryLoadCount();
    await writeInstall(ws.dir, plan, new Map([['A', new SecretValue('a')], ['B', new SecretValue('b')]]), new KeyStore({ env: { APIARY_KEY_FILE: ws.keyFile } }));
    expect(directoryLoadCount() - before).toBe(1);
    const loaded = await loadDirectory(ws.dir);
    expect(loaded.errors).toEqual([]);
    const secrets = loaded.resources.filter((r) => r.kind === 'Secret');
    expect(secrets.map((s) => s.name)).toEqual(['shared']);
    expect(Object.keys((secrets[0]!.manifest as { encryptedData?: Record<string, string> }).encryptedData ?? {}).sort()).toEqual(['A', 'B']);
  });
});
