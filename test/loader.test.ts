import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatManifestError } from '../src/manifests/errors.js';
import { assemble, isManifestFileName, loadDirectory, loadFile } from '../src/manifests/loader.js';
import { parseManifestText } from '../src/manifests/parse.js';

const FIXTURES = new URL('./fixtures/manifests/', import.meta.url).pathname;
const INVALID = join(FIXTURES, 'invalid');

async function errorsFor(name: string): Promise<string[]> {
  const path = join(INVALID, name);
  const result = (await stat(path)).isDirectory()
    ? await loadDirectory(path, name)
    : assemble(await loadFile(path, name), [path]);
  return result.errors.map(formatManifestError);
}

describe('invalid fixtures', async () => {
  const entries = (await readdir(INVALID)).filter((n) => !n.endsWith('.expected')).sort();

  it('has at least 25 cases, each paired with its expected errors', async () => {
    expect(entries.length).toBeGreaterThanOrEqual(25);
    const names = new Set(await readdir(INVALID));
    for (const entry of entries) expect(names.has(`${entry.replace(/\.yaml$/, '')}.expected`), entry).toBe(true);
  });

  it.each(entries)('%s produces exactly its expected errors', async (entry) => {
    const expected = (await readFile(join(INVALID, `${entry.replace(/\.yaml$/, '')}.expected`), 'utf8'))
      .split('\n')
      .filter((l) => l !== '');
    expect(expected.length).toBeGreaterThan(0);
    expect(await errorsFor(entry)).toEqual(expected);
  });
});

describe('valid fixtures', () => {
  it('load without errors, skipping hidden, temp and non-YAML files', async () => {
    const result = await loadDirectory(join(FIXTURES, 'valid'), 'valid');
    expect(result.errors).toEqual([]);
    expect(result.resources.map((r) => `${r.kind}/${r.name}`).sort()).toEqual([
      'MCPServer/github',
      'MCPServer/http-one',
      'MCPServer/sse-one',
      'Secret/github',
      'Secret/shared-keys',
    ]);
    expect(result.files.map((f) => f.slice(f.indexOf('valid/')))).toEqual([
      'valid/full-server.yaml',
      'valid/secrets.yaml',
      'valid/team/http-server.yml',
    ]);
  });

  it('warns about unencrypted secret maps without failing', async () => {
    const result = await loadDirectory(join(FIXTURES, 'valid'), 'valid');
    expect(result.warnings.map(formatManifestError)).toContain(
      'valid/secrets.yaml:15:1: data holds unencrypted values; run "apiary seal valid/secrets.yaml" to encrypt them',
    );
  });

  it('checks spec.tools patterns, for every transport', () => {
    const stdio = 'apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata: { name: a }\nspec:\n  command: node\n  tools:\n    allow: ["get-*"]\n    deny: [get-env]\n';
    const [ok] = parseManifestText(stdio, 'a.yaml', 'a.yaml');
    expect(ok!.errors).toEqual([]);
    expect(ok!.warnings).toEqual([]);
    const [http] = parseManifestText(stdio.replace('  tools:', '  transport: streamable-http\n  tools:'), 'b.yaml', 'b.yaml');
    expect(http!.errors).toEqual([]);
    expect(http!.warnings).toEqual([]); // enforced by apiary's proxy in front of it
    const [bad] = parseManifestText(stdio.replace('"get-*"', '"get *"').replace('[get-env]', '[get-env]\n    only: [x]'), 'c.yaml', 'c.yaml');
    expect(bad!.errors.map(formatManifestError)).toEqual([
      'c.yaml:7:13: spec.tools.allow[0]: must be a tool name or a glob (* and ?), without spaces; got "get *"',
      'c.yaml:9:5: spec.tools.only: unknown field',
    ]);
  });

  it('warns that $(VAR) in args naming no variable is passed as written, at the argument, and only then', () => {
    const text = 'apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata: { name: a }\nspec:\n  command: node\n  args:\n    - server.js\n    - --token=$(GITHUB_TOKEN)\n    - $$(ESCAPED)\n    - costs $5 (USD)\n';
    const [doc] = parseManifestText(text, 'a.yaml', 'a.yaml');
    expect(doc!.errors).toEqual([]);
    expect(doc!.resource).toBeDefined();
    expect(doc!.warnings.map(formatManifestError)).toEqual([
      'a.yaml:8:7: spec.args[1]: "$(GITHUB_TOKEN)" is passed as written: spec.env declares no GITHUB_TOKEN (write $$(GITHUB_TOKEN) for a literal "$(GITHUB_TOKEN)")',
    ]);
  });

  it('keeps the good document beside a bad one', async () => {
    const result = assemble(await loadFile(join(INVALID, '28-multi-doc-one-bad.yaml'), 'x.yaml'), []);
    expect(result.resources.map((r) => r.name)).toEqual(['demo']);
    expect(result.errors).toHaveLength(1);
  });

  it('records where each resource is declared', async () => {
    const result = await loadDirectory(join(FIXTURES, 'valid'), 'valid');
    const sse = result.resources.find((r) => r.name === 'sse-one');
    expect(sse?.source).toMatchObject({ file: 'valid/team/http-server.yml', index: 2, line: 13, col: 1 });
  });
});

describe('file checks', () => {
  it('refuses a file over 1 MiB without reading it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'apiary-big-'));
    await writeFile(join(dir, 'big.yaml'), `# ${'x'.repeat(1024 * 1024)}\n`);
    const result = await loadDirectory(dir, 'd');
    expect(result.errors.map(formatManifestError)).toEqual(['d/big.yaml:1:1: file is 1.0 MiB; manifests over 1 MiB are not read']);
  });

  it('never echoes secret values in errors', async () => {
    const errors = [...(await errorsFor('25-data-not-base64.yaml')), ...(await errorsFor('26-encrypted-bad-format.yaml'))];
    expect(errors.join('\n')).not.toMatch(/hunter2|not base64!/);
  });

  it.each([
    ['server.yaml', true],
    ['server.YML', true],
    ['.server.yaml', false],
    ['server.yaml~', false],
    ['.server.yaml.swp', false],
    ['server.yaml.swp', false],
    ['#server.yaml#', false],
    ['server.yaml.tmp', false],
    ['server.json', false],
  ])('%s is a manifest file: %s', (name, expected) => {
    expect(isManifestFileName(name)).toBe(expected);
  });
});

describe('access fixtures (Gateway and AccessPolicy)', () => {
  it('load without errors; each policy rule knows its own line', async () => {
    const result = await loadDirectory(join(FIXTURES, 'access'), 'access');
    expect(result.errors).toEqual([]);
    // The fixture declares no servers: its Gateway's tool limit for github limits nothing, and validate says so.
    expect(result.warnings.map(formatManifestError)).toEqual(['access/gateway.yaml:18:9: spec.rateLimits.perTool[0].server: "github" matches no MCPServer in the directory, so this limit applies to nothing']);
    expect(result.resources.map((r) => `${r.kind}/${r.name}`)).toEqual(['Gateway/default', 'AccessPolicy/devs', 'AccessPolicy/no-deletes', 'AccessPolicy/local-token']);
    const lines = result.resources.flatMap((r) => (r.kind === 'AccessPolicy' ? [[r.name, r.ruleLines]] : []));
    expect(lines).toEqual([
      ['devs', [12, 15]],
      ['no-deletes', [28]],
      ['local-token', [40]],
    ]);
  });

  it('an oidc block under another mode is a warning, not an error', () => {
    const docs = parseManifestText('apiVersion: apiary.dev/v1alpha1\nkind: Gateway\nmetadata:\n  name: default\nspec:\n  auth:\n    mode: token\n    oidc:\n      issuer: https://id.example.com\n      audience: apiary\n', '/x/gw.yaml', 'gw.yaml');
    expect(docs[0]?.errors).toEqual([]);
    expect(docs[0]?.warnings.map(formatManifestError)).toEqual(['gw.yaml:8:5: spec.auth.oidc: not used while spec.auth.mode is token']);
  });
});

describe('access warnings across documents (validate says them)', () => {
  const policy = (subject: string): string => `apiVersion: apiary.dev/v1alpha1\nkind: AccessPolicy\nmetadata:\n  name: p\nspec:\n  subjects: [${subject}]\n  rules:\n    - servers: ["*"]\n      effect: Allow\n`;
  const gateway = (mode: string): string => `apiVersion: apiary.dev/v1alpha1\nkind: Gateway\nmetadata:\n  name: default\nspec:\n  auth: { mode: ${mode} }\n`;
  const warnings = (...texts: string[]): string[] => assemble(texts.flatMap((t, i) => parseManifestText(t, `/x/${i}.yaml`, `${i}.yaml`)), []).warnings.map(formatManifestError);

  it('policies that name no token in token mode: the bearer token, the only caller, may use nothing', () => {
    expect(warnings(policy('{ group: dev }'))).toEqual(['0.yaml:1:1: AccessPolicy in auth mode token (no Gateway): the bearer token is the only caller and no policy names it (subjects: [{token: local}]), so it may use nothing']);
    expect(warnings(gateway('token'), policy('{ group: dev }'))).toEqual(['1.yaml:1:1: AccessPolicy in auth mode token: the bearer token is the only caller and no policy names it (subjects: [{token: local}]), so it may use nothing']);
    expect(warnings(policy('{ token: local }'))).toEqual([]);
  });

  it('policies under mode none deny everything: said at the first policy', () => {
    expect(warnings(gateway('none'), policy('{ token: local }'))).toEqual(['1.yaml:1:1: AccessPolicy in a directory whose Gateway has auth mode none: callers are anonymous, no subject matches them, so everything is denied; use mode oidc, or remove the policies']);
  });

  it('oidc mode, or no policy at all: nothing to say', () => {
    const oidc = 'apiVersion: apiary.dev/v1alpha1\nkind: Gateway\nmetadata:\n  name: default\nspec:\n  auth:\n    mode: oidc\n    oidc: { issuer: "https://id.example.com", audience: apiary }\n';
    expect(warnings(oidc, policy('{ group: dev }'))).toEqual([]);
    expect(warnings(gateway('none'))).toEqual([]);
  });

  it('oidc mode without any policy: everything is denied, said at the Gateway', () => {
    const oidc = 'apiVersion: apiary.dev/v1alpha1\nkind: Gateway\nmetadata:\n  name: default\nspec:\n  auth:\n    mode: oidc\n    oidc: { issuer: "https://id.example.com", audience: apiary }\n';
    expect(warnings(oidc)).toEqual(['0.yaml:1:1: Gateway in auth mode oidc and no AccessPolicy: every call is denied until a policy allows it']);
  });

  it('a rule naming a server no MCPServer declares: said at the rule (globs and declared servers are not)', () => {
    const server = 'apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: mini\nspec:\n  command: node\n';
    const rules = 'apiVersion: apiary.dev/v1alpha1\nkind: AccessPolicy\nmetadata:\n  name: p\nspec:\n  subjects: [{ token: local }]\n  rules:\n    - servers: ["mini", "git*"]\n      effect: Allow\n    - servers: ["githb"]\n      effect: Deny\n';
    expect(warnings(server, rules)).toEqual(['1.yaml:10:1: AccessPolicy "p" rule 1 names server "githb", which no MCPServer in the directory declares: the rule denies nothing there']);
  });
});
