import { describe, expect, it } from 'vitest';
import { startConsole, type ConsoleClient } from './helpers/console.js';
import { harness } from './helpers/controller.js';

/** A bad body's answer: the status, the reason and the message, which names the field. */
async function answer(c: ConsoleClient, method: string, path: string, body: unknown, auth = true): Promise<[number, unknown, string]> {
  const reply = await c.request(method, path, { body, auth, headers: { Origin: `http://127.0.0.1:${c.port}` } });
  const json = reply.json<{ reason?: string; message?: string }>();
  return [reply.status, json.reason, json.message ?? reply.body];
}

describe('console request bodies', () => {
  it('refuse a wrong type, a missing field or an unknown field with 400 naming the field, before anything is done', async () => {
    const h = await harness();
    const c = await startConsole(h);
    const install = { name: 'x', command: 'node' };
    const cases: [string, string, unknown, RegExp][] = [
      ['POST', '/api/v1/install/plan', { ...install, port: true }, /"port": must be a whole number/],
      ['POST', '/api/v1/install/plan', { ...install, junk: 1 }, /unknown field "junk"/],
      ['POST', '/api/v1/install/plan', { ...install, secrets: [{ variable: 'X', secret: 5 }] }, /"secrets\[0\]\.secret": must be a string/],
      ['POST', '/api/v1/install/plan', { ...install, env: [{ name: 'A', value: 'b', extra: true }] }, /unknown field "env\[0\]\.extra"/],
      ['POST', '/api/v1/install', { ...install, values: 'secret' }, /"values": must be an object/],
      ['POST', '/api/v1/secrets', { name: 'a', key: 'K' }, /"value": is required/],
      ['PUT', '/api/v1/secrets/a/keys/K', { value: 5 }, /"value": must be a string/],
      ['DELETE', '/api/v1/secrets/a', { force: true }, /unknown field "force"/],
      ['POST', '/api/v1/mcpservers/nope/suspend', { force: true }, /unknown field "force"/],
      ['DELETE', '/api/v1/mcpservers/nope', { cascade: 'yes' }, /unknown field "cascade"/],
      ['POST', '/api/v1/catalog/install/plan', { entry: 'server-memory', plain: { X: 5 } }, /"plain\.X": must be a string/],
      ['POST', '/api/v1/catalog/install/plan', { entry: 'server-memory', allowMissing: 'yes' }, /"allowMissing": must be true or false/],
      ['POST', '/api/v1/clients/claude/write', { path: '/etc/passwd' }, /unknown field "path"/],
    ];
    for (const [method, path, body, message] of cases) {
      const [status, reason, text] = await answer(c, method, path, body);
      expect([method, path, status, reason], text).toEqual([method, path, 400, 'BadRequest']);
      expect(text).toMatch(message);
    }
  });

  it('at /login and /logout too: a code that is no string, none, or junk beside it', async () => {
    const h = await harness();
    const c = await startConsole(h);
    expect(await answer(c, 'POST', '/login', { code: 5 }, false)).toEqual([400, 'BadRequest', expect.stringMatching(/"code": must be a string/)]);
    expect(await answer(c, 'POST', '/login', {}, false)).toEqual([400, 'BadRequest', expect.stringMatching(/"code": is required/)]);
    expect(await answer(c, 'POST', '/login', { code: 'abc', admin: true }, false)).toEqual([400, 'BadRequest', expect.stringMatching(/unknown field "admin"/)]);
    expect(await answer(c, 'POST', '/logout', { everywhere: true })).toEqual([400, 'BadRequest', expect.stringMatching(/unknown field "everywhere"/)]);
  });

  it('never echo a value they refuse', async () => {
    const h = await harness();
    const c = await startConsole(h);
    const [status, , text] = await answer(c, 'POST', '/api/v1/install', { name: 'x', command: 'node', values: { TOKEN: 42 }, extra: 'CANARY-body-value' });
    expect(status).toBe(400);
    expect(text).toContain('"values.TOKEN": must be a string');
    expect(text).not.toContain('CANARY');
    expect(text).not.toContain('42');
  });
});
