import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import type { Io } from '../src/cli/io.js';
import { tempDir } from './helpers/tmp.js';

const DIR = 'test/fixtures/manifests/access';
const FILE = `${DIR}/policies.yaml`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The CLI in this process, its output captured; a temp state directory so no real one is touched. */
async function apiary(args: readonly string[], dir = DIR): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: Io = { out: (t) => (stdout += `${t}\n`), err: (t) => (stderr += `${t}\n`), color: false, isTTY: false, status: () => undefined };
  const stateDir = await tempDir();
  const code = await main(['--dir', dir, '--state-dir', stateDir, ...args], io, { ...process.env, NO_COLOR: '1' });
  return { code, stdout: stdout.trimEnd(), stderr: stderr.trimEnd() };
}

describe('apiary policy check', () => {
  it('allowed: names the rule, its policy, file and line; exit 0', async () => {
    const r = await apiary(['policy', 'check', '--user', 'alice', '--group', 'dev', 'mini', 'echo']);
    expect(r.stdout).toBe(`allowed: alice (groups dev) may call tool echo on mini\n  by rule 0 of accesspolicy/devs (${FILE}:12)`);
    expect(r.code).toBe(0);
    // The fixture declares no servers: a typo in SERVER would be silent otherwise.
    expect(r.stderr).toBe(`note: ${DIR} declares no MCPServer "mini"`);
  });

  it('denied by no rule: the default, with the mode that makes it; exit 1', async () => {
    const r = await apiary(['policy', 'check', '--user', 'bob', '--group', 'ops', '--group', 'oncall', 'mini', 'echo']);
    expect(r.stdout).toBe('denied: bob (groups ops, oncall) may not call tool echo on mini\n  no rule allows it: default deny (auth mode oidc)');
    expect(r.code).toBe(1);
  });

  it('denied by a Deny rule, even where another allows', async () => {
    const r = await apiary(['policy', 'check', '--user', 'carol', 'github', 'delete_repo']);
    expect(r.stdout).toBe(`denied: carol may not call tool delete_repo on github\n  by rule 0 of accesspolicy/no-deletes (${FILE}:28)`);
    expect(r.code).toBe(1);
  });

  it('the local token is a subject of its own; prompts and resources with --kind', async () => {
    const token = await apiary(['policy', 'check', '--token', 'local', 'github', 'delete_repo']);
    expect(token.stdout).toBe(`allowed: the local token may call tool delete_repo on github\n  by rule 0 of accesspolicy/local-token (${FILE}:40)`);
    const prompt = await apiary(['policy', 'check', '--user', 'alice', '--group', 'dev', '--kind', 'prompt', 'github', 'review']);
    expect(prompt.stdout).toBe(`allowed: alice (groups dev) may get prompt review on github\n  by rule 1 of accesspolicy/devs (${FILE}:15)`);
    const resource = await apiary(['policy', 'check', '--user', 'alice', '--group', 'dev', '--kind', 'resource', 'github', 'file:///README.md']);
    expect([resource.code, resource.stdout.split('\n')[0]]).toEqual([1, 'denied: alice (groups dev) may not read resource file:///README.md on github']);
  });

  it('-o json carries the decision for scripts', async () => {
    const r = await apiary(['policy', 'check', '--user', 'alice', '--group', 'dev', 'mini', 'echo', '-o', 'json']);
    expect(JSON.parse(r.stdout)).toMatchObject({
      allowed: true,
      effect: 'Allow',
      reason: 'rule',
      rule: { policy: 'devs', file: FILE, line: 12, index: 0 },
      mode: 'oidc',
      subject: { user: 'alice', groups: ['dev'], authenticated: true },
      request: { server: 'mini', kind: 'tool', name: 'echo' },
    });
  });

  it('a directory without policies in token mode allows everything, as before, and says why', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'mini.yaml'), 'apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: mini\nspec:\n  command: node\n');
    const r = await apiary(['policy', 'check', '--token', 'local', 'mini', 'anything'], dir);
    expect(r.stdout).toBe('allowed: the local token may call tool anything on mini\n  no AccessPolicy in the directory: in auth mode token everything is allowed, as without a Gateway');
    expect([r.code, r.stderr]).toEqual([0, '']);
    const user = await apiary(['policy', 'check', '--user', 'alice', 'mini', 'anything'], dir);
    expect(user.stderr).toBe("note: auth mode is token: no caller is a user until the Gateway's spec.auth.mode is oidc");
  });

  it('an invalid policy stops the check, naming file:line:col (a decision without it could be wrong)', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'team'));
    await writeFile(join(dir, 'team', 'p.yaml'), 'apiVersion: apiary.dev/v1alpha1\nkind: AccessPolicy\nmetadata:\n  name: p\nspec:\n  subjects: [{ group: dev }]\n  rules:\n    - servers: ["mini"]\n      effect: allow\n');
    const r = await apiary(['policy', 'check', '--user', 'alice', 'mini', 'echo'], dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`the access settings in ${dir} are invalid; no decision until they are fixed:`);
    expect(r.stderr).toContain('team/p.yaml:9:15: spec.rules[0].effect: must be one of Allow, Deny; got "allow"');
  });

  it.each([
    [['mini', 'echo'], 'who is asking? give --user USER [--group GROUP]... or --token local'],
    [['--token', 'remote', 'mini', 'echo'], '--token takes "local"'],
    [['--user', 'a', '--token', 'local', 'mini', 'echo'], 'give --user or --token local, not both'],
    [['--token', 'local', '--group', 'dev', 'mini', 'echo'], '--group goes with --user'],
    [['--user', 'a', '--kind', 'tools', 'mini', 'echo'], '--kind takes tool, prompt, resource; got "tools"'],
  ])('usage errors exit 2: %j', async (args, message) => {
    const r = await apiary(['policy', 'check', ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });
});

describe('get and describe the access kinds', () => {
  it('get gateways, get accesspolicies: plain tables like the other kinds', async () => {
    const gw = await apiary(['get', 'gateways']);
    expect(gw.stdout.split('\n')).toEqual(['NAME      READY   AUTH   ISSUER                  AUDIT   MESSAGE', 'default   -       oidc   http://127.0.0.1:9400   on']);
    const wide = await apiary(['get', 'gw', '-o', 'wide']);
    expect(wide.stdout).toContain('subject 120/60s, 1 tool limit(s)');
    const policies = await apiary(['get', 'accesspolicies']);
    expect(policies.stdout.split('\n')).toEqual([
      'NAME          READY   SUBJECTS                RULES     DECLARED',
      `devs          -       group dev, user carol   2 Allow   ${FILE}:3`,
      `local-token   -       token local             1 Allow   ${FILE}:32`,
      `no-deletes    -       authenticated           1 Deny    ${FILE}:20`,
    ]);
    const all = await apiary(['get']);
    expect(all.stdout).toMatch(/default\s+-\s+oidc/);
    expect(all.stdout).toContain('no-deletes');
  });

  it('describe accesspolicy: subjects and each rule with its file:line', async () => {
    const r = await apiary(['describe', 'policy', 'devs']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Kind:             AccessPolicy');
    expect(r.stdout).toContain('Subjects:         group dev, user carol');
    expect(r.stdout).not.toContain('manifest changed since the controller last saw it');
    expect(r.stdout).toContain([
      `  #   AT                                                EFFECT   SERVERS   TOOLS             PROMPTS   RESOURCES`,
      `  0   ${FILE}:12   Allow    mini      echo, add         -         -`,
      `  1   ${FILE}:15   Allow    github    search_*, get_*   review    -`,
    ].join('\n'));
    const all = await apiary(['describe', 'policy', 'local-token']);
    expect(all.stdout).toContain(`0   ${FILE}:40   Allow    *         *       *         *`);
  });

  it('describe gateway: the auth, audit, telemetry and limits as written', async () => {
    const r = await apiary(['describe', 'gateway', 'default']);
    expect(r.stdout).toContain('Auth mode:        oidc');
    expect(r.stdout).toContain('Issuer:           http://127.0.0.1:9400');
    expect(r.stdout).toContain('Groups claim:     groups');
    expect(r.stdout).toContain('Audit:            on, 3 kept');
    expect(r.stdout).toContain('  github/create_*: 5/60s');
  });

  it('credentials written into the issuer, JWKS or OTLP URL: validate warns at each, get (table, json, yaml) and describe show them as ***', async () => {
    const dir = await tempDir();
    await writeFile(
      join(dir, 'gateway.yaml'),
      'apiVersion: apiary.dev/v1alpha1\nkind: Gateway\nmetadata:\n  name: default\nspec:\n  auth:\n    mode: oidc\n    oidc:\n      issuer: https://me:issuer-pass-1@issuer.example.com\n      audience: apiary\n      jwksURL: https://me:jwks-pass-2@issuer.example.com/jwks\n  telemetry:\n    otlp:\n      endpoint: http://otel:otlp-pass-3@127.0.0.1:4318\n',
    );
    const validate = await apiary(['validate'], dir);
    expect(validate.code).toBe(0);
    for (const [where, field] of [['9:15', 'spec.auth.oidc.issuer'], ['11:16', 'spec.auth.oidc.jwksURL'], ['14:17', 'spec.telemetry.otlp.endpoint']]) {
      expect(validate.stderr).toContain(`gateway.yaml:${where}: ${field}: credentials in the URL are readable by anyone who reads this file`);
    }
    const shown = [await apiary(['get', 'gateways', '-o', 'wide'], dir), await apiary(['get', 'gateway', '-o', 'json'], dir), await apiary(['get', 'gateway', '-o', 'yaml'], dir), await apiary(['describe', 'gateway'], dir)];
    for (const r of shown) {
      expect(r.stdout).toContain('https://***@issuer.example.com');
      expect(`${r.stdout}${r.stderr}`).not.toMatch(/issuer-pass-1|jwks-pass-2|otlp-pass-3/);
    }
    expect(shown[1]!.stdout).toContain('http://***@127.0.0.1:4318');
    expect(shown[3]!.stdout).toContain('https://***@issuer.example.com/jwks');
  });
});
