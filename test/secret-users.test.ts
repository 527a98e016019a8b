/**
 * `get secrets` USED BY: right as soon as a server starts (or stops)
 * referencing a secret, not at the next resync; and secrets that servers
 * want but no manifest declares are listed as Missing, with how to create them.
 */
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SecretStatus } from '../src/api/status.js';
import { runCli } from './helpers/cli.js';
import { harness, secretYaml, tinyServer } from './helpers/controller.js';
import { workspace } from './helpers/tmp.js';
import { writeFile, mkdir } from 'node:fs/promises';

const uses = (secret: string, key: string, variable = 'TOKEN', optional = false): string =>
  `    - name: ${variable}\n      valueFrom:\n        secretKeyRef: { name: ${secret}, key: ${key}${optional ? ', optional: true' : ''} }\n`;

describe('a secret\'s users', () => {
  it('are in its status once the server that starts using it is reconciled, not at the next resync', async () => {
    const h = await harness();
    await h.write('secret.yaml', secretYaml('shared', { token: 'canary-users-1' }));
    await h.start(); // resync every 60 s: only an event brings the change sooner
    const secretStatus = async (): Promise<SecretStatus | undefined> => (await h.view()).objects.find((o) => o.key === 'Secret/shared')?.object.status as SecretStatus | undefined;
    await h.waitFor('the secret reconciled', async () => (await secretStatus())?.usedBy);
    expect((await secretStatus())!.usedBy).toEqual([]);

    await h.write('server.yaml', tinyServer('alpha', h, { env: uses('shared', 'token') }));
    await h.waitFor('alpha reconciled', () => h.status('alpha'));
    await h.controller!.idle();
    expect((await secretStatus())!.usedBy).toEqual(['alpha']);

    // And it stops being a user as soon as its manifest goes.
    await unlink(join(h.dir, 'server.yaml'));
    await h.waitFor('alpha removed', async () => (await h.status('alpha')) === undefined);
    await h.controller!.idle();
    expect((await secretStatus())!.usedBy).toEqual([]);
  }, 60_000);
});

describe('get secrets', () => {
  it('lists secrets that servers want but nobody declares as Missing, and `get secret NAME` says who wants it and how to create it', async () => {
    const ws = await workspace();
    await mkdir(ws.dir, { recursive: true });
    await writeFile(join(ws.dir, 'servers.yaml'), [
      tinyServer('alpha', { reports: ws.root }, { env: uses('github', 'token', 'GITHUB_TOKEN') }),
      tinyServer('beta', { reports: ws.root }, { env: uses('github', 'token', 'GITHUB_TOKEN') + uses('extras', 'key', 'EXTRA', true) + uses('declared', 'k', 'DECLARED') }),
    ].join('---\n'));
    await writeFile(join(ws.dir, 'secret.yaml'), secretYaml('declared', { k: 'v' }));

    const list = await runCli(['get', 'secrets'], { env: ws.env });
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout.trimEnd().split('\n').map((l) => l.replace(/\s+/g, ' '))).toEqual([
      'NAME KEYS STATE USED BY AGE',
      'declared 1 Unknown beta <none>',
      'extras 1 Missing (optional) beta <none>',
      'github 1 Missing alpha,beta <none>',
    ]);

    const wide = await runCli(['get', 'secrets', '-o', 'wide'], { env: ws.env });
    expect(wide.stdout).toContain('not declared in any manifest; wanted by mcpserver/alpha (env GITHUB_TOKEN), mcpserver/beta (env GITHUB_TOKEN); create it with: apiary secret set github token');

    const one = await runCli(['get', 'secret', 'github'], { env: ws.env });
    expect(one.code).toBe(1);
    expect(one.stderr).toContain('secret/github not found: not declared in any manifest; wanted by mcpserver/alpha (env GITHUB_TOKEN), mcpserver/beta (env GITHUB_TOKEN); create it with: apiary secret set github token');

    // -o json lists declared objects only, as kubectl's List does.
    const json = JSON.parse((await runCli(['get', 'secrets', '-o', 'json'], { env: ws.env })).stdout) as { items: { metadata: { name: string } }[] };
    expect(json.items.map((i) => i.metadata.name)).toEqual(['declared']);
  }, 60_000);
});
