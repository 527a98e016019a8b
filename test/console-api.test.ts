import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { ConsoleAuth, LOGIN_CODE_MS, readConsoleRecord, SESSION_MS } from '../src/console/auth.js';
import { KeyStore } from '../src/crypto/keys.js';
import { runCli } from './helpers/cli.js';
import { startConsole, readEvents, type ConsoleClient } from './helpers/console.js';
import { filesUnder } from './helpers/tmp.js';
import { gitRepositoryYaml, testRepo } from './helpers/git.js';
import { harness, secretYaml, tinyServer, TINY_SERVER } from './helpers/controller.js';
import { within } from './helpers/wait.js';
import { needsGit } from './helpers/tools.js';

const git = needsGit();

const deniedKeyring = {
  get: async () => {
    throw new Error("Couldn't access platform storage: AccessDenied");
  },
  set: async () => {
    throw new Error("Couldn't access platform storage: AccessDenied");
  },
  delete: async () => false,
};

function modeOf(path: string): string {
  return (statSync(path).mode & 0o777).toString(8);
}

function codeOf(link: string): string {
  return new URL(link).hash.replace(/^#login=/, '');
}

/** A watch stream opened with `token`, once its first bytes arrive: `ended` settles when the server ends it. */
function openWatch(port: number, token: string): Promise<{ ended: Promise<void>; isOpen(): boolean; close(): void }> {
  return new Promise((resolve, reject) => {
    let open = true;
    const req = httpRequest({ host: '127.0.0.1', port, path: '/api/v1/watch', headers: { Host: `127.0.0.1:${port}`, Authorization: `Bearer ${token}` } }, (res) => {
      const ended = new Promise<void>((done) => res.once('close', () => ((open = false), done())));
      res.once('data', () => resolve({ ended, isOpen: () => open, close: () => req.destroy() }));
    });
    req.on('error', (err) => (open ? reject(err) : undefined));
    req.end();
  });
}

/** What the page does with the code in its address: a same-origin POST for a session token. */
function exchange(c: ConsoleClient, code: string, headers: Record<string, string> = {}) {
  return c.request('POST', '/login', { auth: false, body: { code }, headers: { Origin: `http://127.0.0.1:${c.port}`, ...headers } });
}

describe('console API', () => {
  it('returns exactly the objects get -o json prints', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    await h.write('s.yaml', secretYaml('github', { token: 'x' }));
    await h.write('b.yaml', tinyServer('b', h, { env: '    - name: T\n      valueFrom:\n        secretKeyRef: { name: missing, key: k }\n' }));
    const c = await startConsole(h);
    await h.waitFor('a Running and b Stuck', async () => (await h.status('a'))?.phase === 'Running' && (await h.status('b'))?.phase === 'Stuck' && (await h.status('a'))?.conditions.find((x) => x.type === 'Ready')?.status === 'True');
    await h.controller!.idle();
    for (const [type, cli] of [['mcpservers', 'mcpservers'], ['secrets', 'secrets']] as const) {
      const api = (await c.request('GET', `/api/v1/${type}`)).json();
      const printed = JSON.parse((await runCli(['get', cli, '-o', 'json'], { env: h.env })).stdout);
      expect(api).toEqual(printed);
    }
    const one = (await c.request('GET', '/api/v1/mcpservers/b')).json();
    expect(one).toEqual(JSON.parse((await runCli(['get', 'mcpserver', 'b', '-o', 'json'], { env: h.env })).stdout));
    expect((await c.request('GET', '/api/v1/mcpservers/nope')).status).toBe(404);
  });

  it('streams ADDED, a BOOKMARK, then MODIFIED and DELETED as the directory changes', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    const c = await startConsole(h);
    await h.waitFor('a Running', async () => (await h.status('a'))?.phase === 'Running');
    const initial = await readEvents(c.port, c.server.apiToken, '/api/v1/watch', (e) => e.some((x) => x.type === 'BOOKMARK'));
    expect(initial.events.map((e) => [e.type, e.object.metadata.name])).toEqual([['ADDED', 'a'], ['BOOKMARK', undefined]]);
    const open = signal((e) => e.some((x) => x.type === 'BOOKMARK'));
    const watching = readEvents(c.port, c.server.apiToken, '/api/v1/watch', (e) => e.some((x) => x.type === 'DELETED' && x.object.metadata.name === 'a'), 15_000, undefined, open.hear);
    await within('the watch open (its BOOKMARK)', open.seen);
    await h.write('a.yaml', tinyServer('a', h, { extra: '  suspend: true\n' }));
    await h.waitFor('a Suspended', async () => (await h.status('a'))?.phase === 'Suspended');
    await runCli(['delete', 'mcpserver', 'a'], { env: h.env });
    const { events } = await watching;
    const phases = events.filter((e) => e.type === 'MODIFIED').map((e) => e.object.status?.phase);
    expect(phases).toContain('Suspended');
    expect(events.at(-1)?.type).toBe('DELETED');
  });

  it('serves a server\'s logs: the last lines, and with follow=true what the next run writes, marked as a new run', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    const c = await startConsole(h);
    const first = await h.waitFor('a running', async () => (await h.status('a'))?.pid);
    const lines = await h.waitFor('a logged', async () => {
      const r = (await c.request('GET', '/api/v1/mcpservers/a/logs')).json<{ lines: string[] }>();
      return r.lines.length > 0 && r.lines;
    });
    expect(lines).toContain(`tiny-server a pid ${first} up`);
    // Its first bytes (a retry: line) are written once the offset it follows from is taken.
    const open = signal(() => true);
    const follow = readEvents(c.port, c.server.apiToken, '/api/v1/mcpservers/a/logs?follow=true', (events) => JSON.stringify(events).includes('up') && events.length >= 2, 15_000, undefined, open.hear);
    await within('the log stream open (its first bytes)', open.seen);
    await c.request('POST', '/api/v1/mcpservers/a/restart', { body: {} });
    const next = await h.waitFor('a restarted', async () => {
      const pid = (await h.status('a'))?.pid;
      return pid !== undefined && pid !== first && pid;
    });
    const { raw } = await follow;
    expect(raw).toContain('event: restarted');
    expect(raw).toContain(`tiny-server a pid ${next} up`);
    expect(raw).not.toContain(`pid ${first} up`); // what was there before the stream opened is not sent again
  });

  it('refuses other hosts, requests without a session, cross-site changes, wrong types and big bodies; sends no CORS headers', async () => {
    const h = await harness();
    const c = await startConsole(h);
    const hostile = await c.request('GET', '/api/v1/mcpservers', { headers: { Host: `evil.example:${c.port}` } });
    expect(hostile.status).toBe(403);
    expect((await c.request('GET', '/', { headers: { Host: `127.0.0.1.nip.io:${c.port}` }, auth: false })).status).toBe(403);
    expect((await c.request('GET', '/api/v1/mcpservers', { headers: { Host: `127.0.0.1:${c.port + 1}` } })).status).toBe(403);
    for (const host of [`127.0.0.1:${c.port}`, `localhost:${c.port}`, `[::1]:${c.port}`]) {
      expect((await c.request('GET', '/api/v1/mcpservers', { headers: { Host: host } })).status).toBe(200);
    }
    // The same loopback check as the MCP endpoints: a page elsewhere is refused even for a read.
    expect((await c.request('GET', '/api/v1/mcpservers', { headers: { Origin: 'http://evil.example' } })).status).toBe(403);
    expect((await c.request('GET', '/api/v1/mcpservers', { headers: { Origin: 'null' } })).status).toBe(403);
    expect((await c.request('GET', '/api/v1/mcpservers', { headers: { Origin: `http://localhost:${c.port}` } })).status).toBe(200);
    expect((await c.request('GET', '/api/v1/mcpservers', { auth: false })).status).toBe(401);
    expect((await c.request('GET', '/api/v1/watch', { auth: false })).status).toBe(401);
    expect((await c.request('GET', '/api/v1/mcpservers', { headers: { Authorization: 'Bearer wrong' } })).status).toBe(401);

    const body = { name: 'github', key: 'token', value: 'v' };
    expect((await c.request('POST', '/api/v1/secrets', { body, headers: { 'Sec-Fetch-Site': 'same-site' } })).status).toBe(403);
    expect((await c.request('POST', '/api/v1/secrets', { body, headers: { 'Sec-Fetch-Site': 'cross-site' } })).status).toBe(403);
    expect((await c.request('POST', '/api/v1/secrets', { body, headers: { Origin: 'http://evil.example' } })).status).toBe(403);
    expect((await c.request('POST', '/api/v1/secrets', { rawBody: 'name=github&key=token&value=v', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } })).status).toBe(415);
    expect((await c.request('POST', '/api/v1/secrets', { rawBody: 'x', headers: { 'Content-Type': 'text/plain' } })).status).toBe(415);
    const big = await c.request('POST', '/api/v1/secrets', { body: { ...body, value: 'x'.repeat(70 * 1024) } });
    expect(big.status).toBe(413);
    const preflight = await c.request('OPTIONS', '/api/v1/secrets', { headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' } });
    expect(preflight.status).toBe(405);
    expect(Object.keys(preflight.headers).filter((k) => k.startsWith('access-control'))).toEqual([]);
    // None of these wrote anything.
    expect(await readdir(h.dir)).toEqual([]);

    const ok = await c.request('GET', '/api/v1/secrets');
    expect(ok.headers['content-security-policy']).toContain("default-src 'self'");
    expect(ok.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(ok.headers['x-content-type-options']).toBe('nosniff');
    expect(ok.headers['cache-control']).toBe('no-store');
    expect(Object.keys(ok.headers).filter((k) => k.startsWith('access-control'))).toEqual([]);
    const page = await c.request('GET', '/', { auth: false });
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.body).not.toMatch(/https?:\/\//); // nothing from a CDN
  });

  it('signs in with a one-time code from the link fragment, for a session token sent as a header; a cookie authorizes nothing', async () => {
    const h = await harness();
    const c = await startConsole(h);
    const record = await readConsoleRecord(h.stateDir);
    expect(record?.port).toBe(c.port);
    expect(modeOf(join(h.stateDir, 'console.json'))).toBe('600');
    const link = await c.server.loginLink();
    // The code rides in the fragment, which a browser never sends to any server.
    expect(link).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${c.port}/#login=[\\w-]{32}$`));
    const code = codeOf(link);
    // A page on another port cannot trade it (and trying does not spend it).
    expect((await exchange(c, code, { Origin: `http://127.0.0.1:${c.port + 1}` })).status).toBe(403);
    const login = await exchange(c, code);
    expect(login.status, login.body).toBe(200);
    expect(login.headers['set-cookie']).toBeUndefined();
    const token = login.json<{ token: string }>().token;
    expect((await c.request('GET', '/api/v1/mcpservers', { auth: false, headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
    // The token as a cookie (what any other port on 127.0.0.1 would receive) opens nothing.
    for (const cookie of [`apiary_session=${token}`, `session=${token}`]) {
      const stolen = await c.request('GET', '/api/v1/mcpservers', { auth: false, headers: { Cookie: cookie } });
      expect(stolen.status).toBe(401);
      expect(stolen.json()['reason']).toBe('Unauthorized');
    }
    // One character changed (to one it is not: a token ending in x stays a valid token with x put back).
    const altered = `${token.slice(0, -1)}${token.endsWith('x') ? 'y' : 'x'}`;
    expect((await c.request('GET', '/api/v1/mcpservers', { auth: false, headers: { Authorization: `Bearer ${altered}` } })).status).toBe(401);
    // Spent: the same code signs nobody in again.
    const again = await exchange(c, code);
    expect(again.status).toBe(401);
    expect(again.json()['reason']).toBe('LoginExpired');
    expect(again.json()['hints']).toContain('apiary ui');
    // No raw code or token is kept: the state holds their hashes only, owner-only.
    const stateText = (await Promise.all((await filesUnder(h.stateDir)).map((f) => readFile(f, 'utf8')))).join('\n');
    expect(stateText).not.toContain(token);
    expect(stateText).not.toContain(code);
    expect(modeOf(join(h.stateDir, 'console-sessions.json'))).toBe('600');
  });

  it('lets nobody lock the console with a junk cookie', async () => {
    const h = await harness();
    const c = await startConsole(h);
    const junk = { Cookie: 'apiary_session=junk; apiary_session=1.2.3; other=x' };
    const login = await exchange(c, codeOf(await c.server.loginLink()), junk);
    expect(login.status, login.body).toBe(200);
    const token = login.json<{ token: string }>().token;
    expect((await c.request('GET', '/api/v1/mcpservers', { auth: false, headers: { ...junk, Authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await c.request('GET', '/api/v1/mcpservers', { headers: junk })).status).toBe(200);
  });

  it('keeps a sign-out across a controller restart, and a live session too', async () => {
    const h = await harness();
    const c = await startConsole(h);
    const out = (await exchange(c, codeOf(await c.server.loginLink()))).json<{ token: string }>().token;
    const kept = (await exchange(c, codeOf(await c.server.loginLink()))).json<{ token: string }>().token;
    const bearer = (token: string) => ({ auth: false, headers: { Authorization: `Bearer ${token}` } });
    const signedOut = await c.request('POST', '/logout', { ...bearer(out), body: {} });
    expect(signedOut.status).toBe(200);
    expect((await c.request('GET', '/api/v1/console', bearer(out))).status).toBe(401);
    await c.server.stop();
    const next = await startConsole(h);
    expect((await next.request('GET', '/api/v1/console', bearer(out))).status).toBe(401);
    expect((await next.request('GET', '/api/v1/console', bearer(kept))).status).toBe(200);
  });

  it('a sign-out ends the streams its session opened, and no other', async () => {
    const h = await harness();
    const c = await startConsole(h);
    const out = (await exchange(c, codeOf(await c.server.loginLink()))).json<{ token: string }>().token;
    const kept = (await exchange(c, codeOf(await c.server.loginLink()))).json<{ token: string }>().token;
    const outStream = await openWatch(c.port, out);
    const keptStream = await openWatch(c.port, kept);
    expect((await c.request('POST', '/logout', { auth: false, headers: { Authorization: `Bearer ${out}` }, body: {} })).status).toBe(200);
    await outStream.ended;
    expect(keptStream.isOpen()).toBe(true);
    keptStream.close();
  });

  it('apiary ui prints a fresh link each time, each good once', async () => {
    const h = await harness();
    const c = await startConsole(h);
    const links: string[] = [];
    for (let i = 0; i < 2; i++) {
      const ui = await runCli(['ui', '--no-open'], { env: h.env });
      expect(ui.code, ui.stderr).toBe(0);
      expect(ui.stdout).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${c.port}/#login=[\\w-]{32}\\n$`));
      links.push(ui.stdout.trim());
    }
    expect(links[0]).not.toBe(links[1]);
    expect((await exchange(c, codeOf(links[0]!))).status).toBe(200);
    expect((await exchange(c, codeOf(links[0]!))).status).toBe(401);
    expect((await exchange(c, codeOf(links[1]!))).status).toBe(200);
    expect((await runCli(['ui', '--api-token'], { env: h.env })).stdout).toBe(`${c.server.apiToken}\n`);
  });

  it('a login code lasts LOGIN_CODE_MS and a session SESSION_MS', async () => {
    const h = await harness();
    let now = Date.now();
    await mkdir(h.stateDir, { recursive: true, mode: 0o700 });
    const auth = new ConsoleAuth(h.stateDir, () => now);
    await auth.publish('http://127.0.0.1:1', 1);
    const late = codeOf(await auth.loginLink());
    now += LOGIN_CODE_MS + 1;
    expect(await auth.login(late)).toBeUndefined();
    const session = await auth.login(codeOf(await auth.loginLink()));
    expect(session).toBeDefined();
    expect(auth.allows(session)).toBe(true);
    now += SESSION_MS + 1;
    expect(auth.allows(session)).toBe(false);
    expect(await readdir(join(h.stateDir, 'console-logins'))).toEqual([]);
  });

  it('writes through the same code as the CLI: secrets sealed, servers suspended, installs planned with clear names; never a value out', async () => {
    const canary = 'CANARY-5f1c9e-value';
    const h = await harness();
    await h.write('shared.yaml', secretYaml('github-token', { OTHER: 'x' }));
    const c = await startConsole(h);
    const created = await c.request('POST', '/api/v1/secrets', { body: { name: 'api', key: 'API_KEY', value: `${canary}-1` } });
    expect(created.status, created.body).toBe(201);
    expect((await c.request('POST', '/api/v1/secrets', { body: { name: 'api', key: 'API_KEY', value: 'y' } })).status).toBe(409);
    expect((await runCli(['secret', 'get', 'api', 'API_KEY'], { env: h.env })).stdout).toBe(`${canary}-1\n`);

    const request = {
      name: 'gh',
      command: 'node',
      args: [TINY_SERVER],
      env: [{ name: 'LOG_LEVEL', value: 'debug' }],
      secrets: [{ variable: 'GITHUB_TOKEN' }, { variable: 'API_KEY', secret: 'api', key: 'API_KEY' }],
    };
    const plan = (await c.request('POST', '/api/v1/install/plan', { body: request })).json<{ yaml: string; command: string; newSecrets: { secret: string; key: string }[] }>();
    // github-token is taken (it holds another key): the new secret is scoped to the server, not "github-token-2".
    expect(plan.newSecrets).toEqual([{ variable: 'GITHUB_TOKEN', secret: 'gh-github-token', key: 'GITHUB_TOKEN' }]);
    expect(plan.command).toBe(`apiary add gh --env LOG_LEVEL=debug --secret GITHUB_TOKEN=gh-github-token/GITHUB_TOKEN --secret API_KEY=api/API_KEY -- node ${TINY_SERVER}`);
    expect(plan.yaml).toContain('name: gh-github-token');
    const missingValue = await c.request('POST', '/api/v1/install', { body: request });
    expect(missingValue.status).toBe(400);
    expect(missingValue.json()['message']).toBe('no value given for GITHUB_TOKEN; nothing was written');
    const installed = await c.request('POST', '/api/v1/install', { body: { ...request, values: { GITHUB_TOKEN: `${canary}-2` } } });
    expect(installed.status, installed.body).toBe(201);
    expect((await c.request('POST', '/api/v1/install', { body: { ...request, values: { GITHUB_TOKEN: 'z' } } })).status).toBe(400); // gh exists now
    expect((await runCli(['validate'], { env: h.env })).code).toBe(0);
    expect((await runCli(['secret', 'get', 'gh-github-token', 'GITHUB_TOKEN'], { env: h.env })).stdout).toBe(`${canary}-2\n`);
    await h.waitFor('gh Running', async () => (await h.status('gh'))?.phase === 'Running');

    const suspended = await c.request('POST', '/api/v1/mcpservers/gh/suspend', { body: {} });
    expect(suspended.status, suspended.body).toBe(200);
    expect(suspended.json()['changed']).toBe(true);
    expect(await readFile(join(h.dir, 'mcpserver-gh.yaml'), 'utf8')).toContain('suspend: true');
    await h.waitFor('gh Suspended', async () => (await h.status('gh'))?.phase === 'Suspended');
    await c.request('POST', '/api/v1/mcpservers/gh/resume', { body: {} });
    await h.waitFor('gh Running again', async () => (await h.status('gh'))?.phase === 'Running');

    const deleted = await c.request('DELETE', '/api/v1/secrets/gh-github-token', { body: {} });
    expect(deleted.status, deleted.body).toBe(200);
    expect(deleted.json()['warning']).toBe('secret "gh-github-token" is used by mcpserver/gh: running servers keep running, but cannot start or restart until the secret is back');
    const detail = (await c.request('GET', '/api/v1/mcpservers/gh/detail')).json<{ bindings: { variable: string; state: string }[]; manifest: { file: string } }>();
    await h.waitFor('binding marked missing', async () => {
      const d = (await c.request('GET', '/api/v1/mcpservers/gh/detail')).json<{ bindings: { variable: string; state: string }[] }>();
      return d.bindings.find((b) => b.variable === 'GITHUB_TOKEN')?.state === 'SecretNotFound';
    });
    expect(detail.manifest.file).toContain('mcpserver-gh.yaml');

    // The canary is in no answer, no event, no log record and no state file (the manifests hold it sealed only).
    const answers: string[] = [];
    for (const path of ['/api/v1/mcpservers', '/api/v1/secrets', '/api/v1/secretsummaries', '/api/v1/console', '/api/v1/mcpservers/gh', '/api/v1/mcpservers/gh/detail', '/api/v1/mcpservers/gh/logs', '/api/v1/secrets/api']) {
      answers.push((await c.request('GET', path)).body);
    }
    answers.push((await readEvents(c.port, c.server.apiToken, '/api/v1/watch', (e) => e.some((x) => x.type === 'BOOKMARK'))).raw);
    answers.push(JSON.stringify(h.logs));
    for (const file of await filesUnder(h.stateDir)) answers.push(await readFile(file, 'utf8'));
    for (const file of await filesUnder(h.dir)) answers.push(await readFile(file, 'utf8'));
    for (const text of answers) expect(text).not.toContain(canary);
  });

  it('shows keyring trouble as a state with the reason and the way out, and refuses to seal', async () => {
    const h = await harness();
    const c = await startConsole(h, new KeyStore({ env: {}, keyring: deniedKeyring }));
    const info = (await c.request('GET', '/api/v1/console')).json<{ key: { state: string; message: string; hints: string[] } }>();
    expect(info.key.state).toBe('unavailable');
    expect(info.key.message).toBe("cannot use the OS keyring: Couldn't access platform storage: AccessDenied");
    expect(info.key.hints.join('\n')).toContain('APIARY_KEY_FILE');
    const refused = await c.request('POST', '/api/v1/secrets', { body: { name: 'a', key: 'k', value: 'v' } });
    expect(refused.status).toBe(503);
    expect(refused.json()['reason']).toBe('KeyUnavailable');
    expect(await readdir(h.dir)).toEqual([]);
  });

  it.skipIf(!git.available)('answers a write to a directory that follows git with 409 GitSourced, not 500', async () => {
    const h = await harness();
    const c = await startConsole(h);
    const repo = await testRepo();
    await h.write('source.yaml', gitRepositoryYaml(repo.url, { interval: '1h' }));
    const writes = [
      await c.request('POST', '/api/v1/secrets', { body: { name: 'github', key: 'token', value: 'v' } }),
      await c.request('POST', '/api/v1/mcpservers/a/suspend', { body: {} }),
      await c.request('POST', '/api/v1/install', { body: { name: 'a', command: 'node', args: [] } }),
    ];
    for (const refused of writes) {
      expect(refused.status, refused.body).toBe(409);
      expect(refused.json()['reason']).toBe('GitSourced');
      expect(refused.json()['message']).toContain('follows git repository');
    }
    expect(await readdir(h.dir)).toEqual(['source.yaml']);
  });
});

/** A promise kept the first time a stream's events satisfy `test`: the stream is open and past its opening. */
function signal(test: (events: { type: string }[]) => boolean): { seen: Promise<void>; hear: (events: { type: string }[]) => void } {
  let resolve: () => void = () => undefined;
  const seen = new Promise<void>((r) => (resolve = r));
  return { seen, hear: (events) => test(events) && resolve() };
}
