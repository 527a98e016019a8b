/**
 * What a newcomer tripped on in the console (issue 25), where the logic is
 * the server's or a pure function of the page's: the forms' patterns beside
 * the server's own checks, what the restart dialog says, and Try a tool's
 * API, which reaches a server through its own endpoint.
 */

const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import type { CallToolAnswer, ToolsAnswer } from '../src/api/console.js';
import { startConsole } from './helpers/console.js';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServerDetail } from '../src/api/console.js';
import { KeyStore } from '../src/crypto/keys.js';
import { openSecret, secretForms } from '../src/crypto/secret-data.js';
import { loadDirectory } from '../src/manifests/loader.js';
import type { SecretResource } from '../src/manifests/resource.js';
import { harness, nodeServer, secretYaml, tinyServer } from './helpers/controller.js';
import { DNS1123_LABEL, SECRET_KEY } from '../src/api/names.js';
import { ENV_NAME } from '../src/manifests/install.js';
import { KEY_PATTERN, NAME_PATTERN, VARIABLE_PATTERN } from '../ui/patterns.js';
import { restartEffect } from '../ui/restart.js';
import { toolArguments, toolFields } from '../ui/tool-form.js';
import type { ApiObject } from '../ui/types.js';

/** As a browser reads a `pattern` attribute: the whole value, compiled with the `v` flag. */
function asBrowser(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`, 'v');
}

describe("the console's form patterns", () => {
  it('compile as a browser compiles them, and say what the server says', () => {
    const samples = ['github', 'a', 'a-b', '-a', 'a-', 'A', 'a_b', 'a.b', 'api.key-2_b', 'GITHUB_TOKEN', '_x', '1x', 'x1', 'a b', '', 'é', 'a--b'];
    for (const [pattern, server] of [[NAME_PATTERN, DNS1123_LABEL], [KEY_PATTERN, SECRET_KEY], [VARIABLE_PATTERN, ENV_NAME]] as const) {
      const browser = asBrowser(pattern);
      for (const sample of samples) expect(browser.test(sample), `${pattern} on "${sample}"`).toBe(server.test(sample));
    }
  });
});

function server(spec: Record<string, unknown>, phase: string, stalled?: string): ApiObject {
  const conditions = stalled ? [{ type: 'Stalled', status: 'True' as const, reason: 'SecretNotFound', message: stalled, lastTransitionTime: '2026-01-01T00:00:00Z' }] : [];
  return { apiVersion: 'apiary.dev/v1alpha1', kind: 'MCPServer', metadata: { name: 's' }, spec: { command: 'node', ...spec }, status: { phase, conditions } } as ApiObject;
}

describe('what the restart dialog says', () => {
  it.each([
    ['a running stdio server rolls: no call is lost', server({}, 'Running'), true, /new process starts beside the running one.*none is lost/],
    ['strategy Recreate: calls fail while it restarts', server({ strategy: { type: 'Recreate' } }, 'Running'), true, /^Recreate \(strategy Recreate\).*calls fail until it is back/],
    ['an HTTP server is recreated', server({ transport: 'streamable-http' }, 'Running'), true, /^Recreate \(an HTTP server is recreated\)/],
    ['RollingUpdate asked of an HTTP server is a recreate', server({ transport: 'sse', strategy: { type: 'RollingUpdate' } }, 'Running'), true, /rolling update is for stdio servers only/],
    ['Stuck: nothing runs until the secret is back', server({}, 'Stuck', 'secret "gh" not found'), false, /^Nothing is running: it is Stuck \(secret "gh" not found\)\. A restart does nothing until gh\/token is back; then it starts by itself\.$/],
    ['running with a secret gone: kept running', server({}, 'Running'), false, /apiary keeps it running/],
    ['suspended: nothing to restart', server({ suspend: true }, 'Suspended'), false, /suspended: nothing runs.*Resume starts it/],
    ['a crash loop: started now', server({}, 'CrashLoopBackOff'), true, /starts it now, without waiting for a back-off/],
    ['hosted: no process here', server({ remote: { url: 'https://example.com/mcp' } }, 'Running'), false, /hosted server runs no process here/],
  ])('%s', (_what, s, acts, text) => {
    const missing = /Stuck|gone/.test(_what) ? ['gh/token'] : [];
    const effect = restartEffect(s, missing);
    expect(effect.text).toMatch(text);
    expect(effect.acts).toBe(acts);
  });
});

describe('Try a tool, through the endpoint', () => {
  it("lists a server's tools with their input schemas and calls one, as a client at its endpoint would", async () => {
    const h = await harness();
    await h.write('everything.yaml', nodeServer('everything', [EVERYTHING, 'stdio'], '  tools:\n    deny: [get-env]\n'));
    await h.write('stuck.yaml', tinyServer('stuck', h, { env: '    - name: T\n      valueFrom:\n        secretKeyRef: { name: missing, key: k }\n' }));
    const c = await startConsole(h);
    await h.waitFor('everything Ready', async () => (await h.status('everything'))?.conditions.find((x) => x.type === 'Ready')?.status === 'True', 30_000);

    const listed = (await c.request('GET', '/api/v1/mcpservers/everything/tools')).json<ToolsAnswer>();
    const echo = listed.tools.find((t) => t.name === 'echo');
    expect(echo?.inputSchema).toMatchObject({ type: 'object', properties: { message: { type: 'string' } }, required: ['message'] });
    // What the endpoint offers: spec.tools applies, as it does for every client.
    expect(listed.tools.map((t) => t.name)).not.toContain('get-env');

    const called = await c.request('POST', '/api/v1/mcpservers/everything/call', { body: { tool: 'echo', arguments: { message: 'hello from the console' } } });
    expect(called.status).toBe(200);
    const answer = called.json<CallToolAnswer>();
    expect(answer.result).toEqual({ content: [{ type: 'text', text: 'Echo: hello from the console' }], isError: false });
    const structured = (await c.request('POST', '/api/v1/mcpservers/everything/call', { body: { tool: 'get-structured-content', arguments: { location: 'Chicago' } } })).json<CallToolAnswer>();
    expect(structured.result?.structuredContent).toEqual({ temperature: 36, conditions: 'Light rain / drizzle', humidity: 82 });

    // The server's own no is an answer beside the form, not a failure of the console.
    const denied = (await c.request('POST', '/api/v1/mcpservers/everything/call', { body: { tool: 'get-env' } })).json<CallToolAnswer>();
    expect(denied.error).toEqual({ code: -32602, message: 'tool "get-env" is not available: the server\'s spec.tools keeps it from clients' });
    const bad = (await c.request('POST', '/api/v1/mcpservers/everything/call', { body: { tool: 'get-sum', arguments: { a: 'one' } } })).json<CallToolAnswer>();
    expect(bad.result?.isError).toBe(true);
    expect(JSON.stringify(bad.result?.content)).toContain('expected number, received string at a');

    // No session is left at the endpoint by any of it.
    expect(h.controller!.mcpView('everything')?.sessions).toBe(0);

    // Not Ready: said so, with the phase.
    await h.waitFor('stuck Stuck', async () => (await h.status('stuck'))?.phase === 'Stuck');
    const notReady = await c.request('POST', '/api/v1/mcpservers/stuck/call', { body: { tool: 'noop' } });
    expect(notReady.status).toBe(409);
    expect(notReady.json()).toMatchObject({ reason: 'NotReady', message: 'mcpserver/stuck is not Ready (Stuck: SecretNotFound): its tools cannot be called now' });
    expect((await c.request('GET', '/api/v1/mcpservers/nope/tools')).status).toBe(404);
  }, 60_000);

  it("never answers with a value of a secret the server is given: a tool that prints its environment gets [redacted] for it", async () => {
    const h = await harness();
    const canary = 'CANARY-try-3b9d-long-enough';
    await h.write('s.yaml', secretYaml('github', { token: canary }));
    await h.write('everything.yaml', nodeServer('everything', [EVERYTHING, 'stdio'], `  env:\n    - name: GITHUB_TOKEN\n      valueFrom:\n        secretKeyRef: { name: github, key: token }\n    - name: PLAIN_SETTING\n      value: plain-and-shown\n`));
    const c = await startConsole(h);
    await h.waitFor('everything Ready', async () => (await h.status('everything'))?.conditions.find((x) => x.type === 'Ready')?.status === 'True', 30_000);
    const reply = await c.request('POST', '/api/v1/mcpservers/everything/call', { body: { tool: 'get-env' } });
    expect(reply.status).toBe(200);
    expect(reply.body).not.toContain(canary);
    expect(reply.body).toContain('plain-and-shown');
    const env = JSON.parse(reply.json<CallToolAnswer>().result!.content.map((b) => (b as { text: string }).text).join('')) as Record<string, string>;
    // The gateway redacts it before the console sees the answer (issue 28): the marker names the secret and key, never the value.
    expect(env['GITHUB_TOKEN']).toBe('[redacted: secret github/token]');
  }, 60_000);

  it('reaches a server on the legacy SSE transport through its /sse endpoint too', async () => {
    const h = await harness();
    await h.write('legacy.yaml', nodeServer('legacy', [EVERYTHING, 'sse'], '  transport: sse\n  tools:\n    allow: [echo]\n'));
    const c = await startConsole(h);
    await h.waitFor('legacy Ready', async () => (await h.status('legacy'))?.conditions.find((x) => x.type === 'Ready')?.status === 'True', 30_000);
    expect((await h.status('legacy'))?.url).toMatch(/\/sse$/);
    expect((await c.request('GET', '/api/v1/mcpservers/legacy/tools')).json<ToolsAnswer>().tools.map((t) => t.name)).toEqual(['echo']);
    const answer = (await c.request('POST', '/api/v1/mcpservers/legacy/call', { body: { tool: 'echo', arguments: { message: 'over sse' } } })).json<CallToolAnswer>();
    expect(answer.result?.content).toEqual([{ type: 'text', text: 'Echo: over sse' }]);
  }, 60_000);

  it('a call is a write: the session token, a JSON body and this origin, as for every change', async () => {
    const h = await harness();
    await h.write('everything.yaml', nodeServer('everything', [EVERYTHING, 'stdio']));
    const c = await startConsole(h);
    await h.waitFor('everything Ready', async () => (await h.status('everything'))?.conditions.find((x) => x.type === 'Ready')?.status === 'True', 30_000);
    const body = { tool: 'echo', arguments: { message: 'x' } };
    expect((await c.request('POST', '/api/v1/mcpservers/everything/call', { body, auth: false })).status).toBe(401);
    expect((await c.request('POST', '/api/v1/mcpservers/everything/call', { body, headers: { Origin: 'http://127.0.0.1:1' } })).status).toBe(403);
    expect((await c.request('POST', '/api/v1/mcpservers/everything/call', { body, headers: { 'Sec-Fetch-Site': 'cross-site' } })).status).toBe(403);
    expect((await c.request('POST', '/api/v1/mcpservers/everything/call', { rawBody: JSON.stringify(body), headers: { 'Content-Type': 'text/plain' } })).status).toBe(415);
    const unknownField = await c.request('POST', '/api/v1/mcpservers/everything/call', { body: { ...body, token: 'x' } });
    expect(unknownField.status).toBe(400);
    expect(unknownField.json<{ message: string }>().message).toContain('unknown field "token"');
  }, 60_000);
});

describe("Try a tool's form, from the input schema", () => {
  const schema = {
    type: 'object',
    properties: {
      message: { type: 'string', description: 'what to say' },
      count: { type: 'integer', default: 3 },
      ratio: { type: 'number' },
      loud: { type: 'boolean' },
      city: { enum: ['New York', 'Chicago'] },
      level: { enum: [1, 2] },
      tags: { type: 'array', items: { type: 'string' } },
      options: { type: 'object' },
      either: { anyOf: [{ type: 'string' }, { type: 'number' }] },
      maybe: { type: ['string', 'null'] },
    },
    required: ['message', 'city'],
  };

  it('gives each property the field its type calls for, anything else as JSON', () => {
    const fields = toolFields(schema);
    expect(fields.map((f) => [f.name, f.kind, f.required, f.initial])).toEqual([
      ['message', 'string', true, ''],
      ['count', 'integer', false, '3'],
      ['ratio', 'number', false, ''],
      ['loud', 'boolean', false, ''],
      ['city', 'enum', true, ''],
      ['level', 'enum', false, ''],
      ['tags', 'json', false, ''],
      ['options', 'json', false, ''],
      ['either', 'json', false, ''],
      ['maybe', 'string', false, ''],
    ]);
    expect(fields[0]!.description).toBe('what to say');
    expect(toolFields({ type: 'object' })).toEqual([]);
    expect(toolFields(undefined)).toEqual([]);
  });

  it('reads the texts back as the arguments, leaving out what is optional and empty', () => {
    const fields = toolFields(schema);
    expect(toolArguments(fields, { message: 'hi', ratio: '0.5', loud: 'false', city: 'Chicago', level: '2', tags: '["a","b"]', options: '{"x":1}', either: '7' })).toEqual({
      ok: true,
      arguments: { message: 'hi', count: 3, ratio: 0.5, loud: false, city: 'Chicago', level: 2, tags: ['a', 'b'], options: { x: 1 }, either: 7 },
    });
    // A required string may be empty; the server says whether that will do.
    expect(toolArguments(fields, { city: 'Chicago', count: '' })).toEqual({ ok: true, arguments: { message: '', city: 'Chicago' } });
    expect(toolArguments(fields, { count: '2.5' })).toEqual({ ok: false, field: 'count', message: 'count is not a whole number' });
    expect(toolArguments(fields, { ratio: 'x' })).toEqual({ ok: false, field: 'ratio', message: 'ratio is not a number' });
    expect(toolArguments(fields, { tags: '[a' })).toMatchObject({ ok: false, field: 'tags', message: expect.stringMatching(/^tags is not valid JSON \(/) });
    expect(toolArguments(fields, { city: 'Paris' })).toEqual({ ok: false, field: 'city', message: 'city is not one of the choices' });
  });
});

describe("a server's last known tools", () => {
  it('stay on its page while it is Stuck, marked as last known, and give way to the live list when it runs again', async () => {
    const h = await harness();
    await h.write('s.yaml', secretYaml('github', { token: 'x' }));
    await h.write('a.yaml', tinyServer('a', h, { env: '    - name: T\n      valueFrom:\n        secretKeyRef: { name: github, key: token }\n' }));
    const c = await startConsole(h);
    const detail = async () => (await c.request('GET', '/api/v1/mcpservers/a/detail')).json<ServerDetail>();
    // Nobody looks at the page while it runs: the console learns the tools from the controller's changes.
    await h.waitFor('a Running with its tools', async () => (await h.status('a'))?.tools === 1);
    await rm(join(h.dir, 's.yaml'));
    await h.waitFor('the secret seen gone', async () => (await h.status('a'))?.conditions.find((x) => x.type === 'SecretsResolved')?.status === 'False');
    await c.request('POST', '/api/v1/mcpservers/a/suspend', { body: {} });
    await h.waitFor('a Suspended', async () => (await h.status('a'))?.phase === 'Suspended');
    await c.request('POST', '/api/v1/mcpservers/a/resume', { body: {} });
    await h.waitFor('a Stuck', async () => (await h.status('a'))?.phase === 'Stuck');
    const stuck = await detail();
    expect(stuck.tools?.map((t) => t.name)).toEqual(['noop']);
    expect(stuck.toolsLastKnownAt).toMatch(/^\d{4}-\d\d-\d\dT/);

    await h.write('s.yaml', secretYaml('github', { token: 'y' }));
    await h.waitFor('a Ready again', async () => (await h.status('a'))?.conditions.find((x) => x.type === 'Ready')?.status === 'True');
    const live = await detail();
    expect(live.tools?.map((t) => t.name)).toEqual(['noop']);
    expect(live.toolsLastKnownAt).toBeUndefined();
  }, 60_000);
});

describe('Seal, for a secret held in plain stringData', () => {
  it("seals that secret's values in place as apiary seal does, keeping its comments and the file's other documents", async () => {
    const h = await harness();
    const canary = 'CANARY-seal-9e1f';
    await h.write('secrets.yaml', `# team secrets
apiVersion: apiary.dev/v1alpha1
kind: Secret
metadata:
  name: github
stringData:
  # the bot's token
  token: ${canary}
---
apiVersion: apiary.dev/v1alpha1
kind: Secret
metadata:
  name: other
stringData:
  key: left-as-it-is
`);
    const c = await startConsole(h);
    const sealed = await c.request('POST', '/api/v1/secrets/github/seal', { body: {} });
    expect(sealed.status).toBe(200);
    expect(sealed.json()).toEqual({ name: 'github', file: 'secrets.yaml', sealed: 1 });
    const text = await readFile(join(h.dir, 'secrets.yaml'), 'utf8');
    expect(text).not.toContain(canary);
    expect(text).toContain("# the bot's token");
    expect(text).toContain('# team secrets');
    expect(text).toContain('key: left-as-it-is');
    const secrets = (await loadDirectory(h.dir)).resources.filter((r): r is SecretResource => r.kind === 'Secret');
    const github = secrets.find((s) => s.name === 'github')!;
    expect(secretForms(github).get('token')).toBe('sealed');
    expect(secretForms(secrets.find((s) => s.name === 'other')!).get('key')).toBe('plain');
    // The same value, opened with this machine's key.
    const opened = await openSecret(github, new KeyStore({ env: { APIARY_KEY_FILE: h.keyFile } }));
    expect(opened.get('token')?.value?.reveal()).toBe(canary);
    // Again: nothing left to seal; an unknown secret is not found.
    expect((await c.request('POST', '/api/v1/secrets/github/seal', { body: {} })).json()).toMatchObject({ sealed: 0 });
    expect((await c.request('POST', '/api/v1/secrets/nope/seal', { body: {} })).status).toBe(404);
    // A write like every other: refused from another origin.
    expect((await c.request('POST', '/api/v1/secrets/other/seal', { body: {}, headers: { Origin: 'http://evil.example' } })).status).toBe(403);
  }, 60_000);
});
