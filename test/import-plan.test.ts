import { describe, expect, it } from 'vitest';
import { expandArgs } from '../src/api/expansion.js';
import { escapeReferences, planImport, plainlyNotCredential, resolveClientReferences, serverNameFor, type ClientEntry } from '../src/clients/import-plan.js';
import { readClientEntries } from '../src/clients/import-read.js';

const stdio = (name: string, args: string[], env: Record<string, string> = {}): ClientEntry => ({ name, kind: 'stdio', command: 'npx', args, env, ignored: [] });

describe('import: what is a credential', () => {
  it.each([
    ['LOG_LEVEL', 'debug', true],
    ['DATA_DIR', '/var/data', true],
    ['ROOT', './here', true],
    ['PORT', '8080', true],
    ['READ_ONLY', 'true', true],
    ['BASE_URL', 'https://api.example.com/v1', true],
    ['DATABASE_URL', 'postgres://user:pw@db/app', false],
    ['GITHUB_TOKEN', 'debug', false],
    ['API_KEY', '/not/really/a/path', false],
    ['REGION', 'eu-west-1', false],
    ['SLACK_TEAM_ID', 'T0123', false],
    ['PATH', '/usr/bin', true],
    ['GITLAB_PAT', 'abc', false],
  ])('%s=%s plain: %s', (name, value, plain) => {
    expect(plainlyNotCredential(name, value)).toBe(plain);
  });
});

describe('import: args', () => {
  it('seals the value after a credential flag, of --flag=value, and a well-known token anywhere; leaves the rest', () => {
    const plan = planImport('claude', [stdio('gh', ['-y', 'server', '--api-key', 'K1', '--token=K2', '--mode', 'fast', 'ghp_abc', '--password', '--verbose', '-k', 'x'])], new Set());
    const server = plan.servers[0]!;
    expect(server.request.args).toEqual(['-y', 'server', '--api-key', '$(GH_API_KEY)', '--token=$(GH_TOKEN)', '--mode', 'fast', '$(GH_ARG_7)', '--password', '--verbose', '-k', 'x']);
    expect(Object.fromEntries(server.values)).toEqual({ GH_API_KEY: 'K1', GH_TOKEN: 'K2', GH_ARG_7: 'ghp_abc' });
    expect(server.placed.filter((p) => p.from.startsWith('args')).map((p) => p.from)).toEqual(['args[3]', 'args[4]', 'args[7]']);
  });

  it('an argument holding the value an env variable already holds refers to that variable: one secret, not two', () => {
    const plan = planImport('cursor', [stdio('gh', ['--token', 'same'], { GITHUB_TOKEN: 'same' })], new Set());
    const server = plan.servers[0]!;
    expect(server.request.args).toEqual(['--token', '$(GITHUB_TOKEN)']);
    expect([...server.values.keys()]).toEqual(['GITHUB_TOKEN']);
  });

  it('a literal $( in what the client had is escaped, so apiary passes it as it was', () => {
    const args = ['echo $(HOME)', 'cost $$5', '$x'];
    const plan = planImport('claude', [stdio('e', args, { NOTE: 'see $(HOME)' })], new Set(), { plain: ['NOTE'] });
    const request = plan.servers[0]!.request;
    expect(expandArgs(request.args!, new Map([['HOME', '/root']]))).toEqual(args);
    expect(request.env).toEqual([{ name: 'NOTE', value: escapeReferences('see $(HOME)') }]);
  });
});

describe('import: names and options', () => {
  it('names a server after its entry, reports a clash unless --rename, honours --only, --plain and --seal-all', () => {
    expect(serverNameFor('My_Server 2')).toBe('my-server-2');
    expect(serverNameFor('???')).toBeUndefined();
    const entries = [stdio('GitHub', [], { LOG_LEVEL: 'info', TOKEN: 't' }), stdio('notes', [])];
    const clash = planImport('claude', entries, new Set(['github']));
    expect(clash.servers.map((s) => s.name)).toEqual(['notes']);
    expect(clash.skipped).toEqual([{ entry: 'GitHub', why: 'mcpserver/github already exists; skipped (--rename imports it under another name)' }]);
    expect(planImport('claude', entries, new Set(['github']), { rename: true }).servers.map((s) => s.name)).toEqual(['github-claude', 'notes']);
    expect(planImport('claude', entries, new Set(), { only: ['notes'] }).servers.map((s) => s.entry)).toEqual(['notes']);
    const plain = planImport('claude', entries, new Set(), { plain: ['TOKEN'] }).servers[0]!;
    expect(plain.request.env).toEqual([{ name: 'LOG_LEVEL', value: 'info' }, { name: 'TOKEN', value: 't' }]);
    const all = planImport('claude', entries, new Set(), { sealAll: true }).servers[0]!;
    expect([...all.values.keys()]).toEqual(['LOG_LEVEL', 'TOKEN']);
  });

  it('a header keeps its scheme in the manifest and seals the credential alone; Accept stays plain', () => {
    const plan = planImport('vscode', [{ name: 'hosted', kind: 'remote', url: 'https://h.example/mcp', transport: 'streamable-http', headers: { Authorization: 'Bearer abc', Accept: 'application/json', 'X-Team': 'blue' }, ignored: [] }], new Set());
    const server = plan.servers[0]!;
    expect(server.request.remote?.headers).toEqual([
      { name: 'Authorization', value: 'Bearer $(HOSTED_AUTHORIZATION)' },
      { name: 'Accept', value: 'application/json' },
      { name: 'X-Team', value: '$(HOSTED_X_TEAM)' },
    ]);
    expect(Object.fromEntries(server.values)).toEqual({ HOSTED_AUTHORIZATION: 'abc', HOSTED_X_TEAM: 'blue' });
  });
});

describe('import: reading client files', () => {
  it('reads each shape, says why an entry cannot be read, and names what is not carried over', () => {
    const text = `{
      // a comment
      "mcpServers": {
        "a": { "command": "node", "args": ["x", 1], "env": { "N": 2 }, "cwd": "/w", "alwaysAllow": [] },
        "b": { "serverUrl": "https://h.example/sse/" },
        "c": { "type": "http", "url": "https://h.example/mcp", "headers": { "K": "v" } },
        "d": { "url": "ftp://nope" },
        "e": {},
      },
    }`;
    const read = readClientEntries(text, 'f.json', ['mcpServers']);
    expect(read.entries).toEqual([
      { name: 'a', kind: 'stdio', command: 'node', args: ['x', '1'], env: { N: '2' }, cwd: '/w', ignored: ['alwaysAllow'] },
      { name: 'b', kind: 'remote', url: 'https://h.example/sse/', transport: 'sse', headers: {}, ignored: [] },
      { name: 'c', kind: 'remote', url: 'https://h.example/mcp', transport: 'streamable-http', headers: { K: 'v' }, ignored: [] },
    ]);
    expect(read.problems).toEqual([
      { entry: 'd', why: 'url "ftp://nope" is not an http:// or https:// URL' },
      { entry: 'e', why: 'neither a command nor a url' },
    ]);
    expect(() => readClientEntries('{ "mcpServers": ', 'f.json', ['mcpServers'])).toThrow(/f\.json is not a JSON object apiary can read \(a syntax error at offset \d+\); nothing was imported/);
  });
});

describe("import: the client's own ${...} references", () => {
  it('are expanded from the environment the import runs in, as the client would; what is not set here is bound to a secret to be set by hand', () => {
    const environment = { GH: 'from-env', HOME: '/home/me' };
    expect(resolveClientReferences('${GH}', { environment })).toEqual({ value: 'from-env', unresolved: [] });
    expect(resolveClientReferences('${env:GH}-${NOPE:-dflt}', { environment })).toEqual({ value: 'from-env-dflt', unresolved: [] });
    expect(resolveClientReferences('${workspaceFolder}/x', { workspace: '/p' })).toEqual({ value: '/p/x', unresolved: [] });
    expect(resolveClientReferences('${input:token} ${MISSING}', { environment })).toEqual({ value: '${input:token} ${MISSING}', unresolved: ['${input:token}', '${MISSING}'] });

    const plan = planImport('claude', [stdio('gh', ['--token', '${GH}', '--dir', '${HOME}/x', '--key', '${input:key}'], { GITHUB_TOKEN: '${GH}', LOG: '${NOPE:-info}', ASKED: '${input:asked}' })], new Set(), { environment });
    const server = plan.servers[0]!;
    expect(Object.fromEntries(server.values)).toEqual({ GITHUB_TOKEN: 'from-env' });
    expect(server.request.args).toEqual(['--token', '$(GITHUB_TOKEN)', '--dir', '/home/me/x', '--key', '$(GH_KEY)']);
    expect(server.request.env).toEqual([{ name: 'LOG', value: 'info' }]);
    expect(server.request.secrets).toEqual([
      { variable: 'GITHUB_TOKEN', create: { key: 'GITHUB_TOKEN' } },
      { variable: 'ASKED', unresolved: { secret: 'asked', key: 'ASKED' } },
      { variable: 'GH_KEY', unresolved: { secret: 'gh-key', key: 'GH_KEY' } },
    ]);
  });
});

describe('import: a server switched off in the client', () => {
  it('is read as disabled and imported suspended', () => {
    const read = readClientEntries('{ "mcpServers": { "off": { "command": "node", "disabled": true }, "on": { "command": "node", "disabled": false } } }', 'f.json', ['mcpServers']);
    expect(read.entries.map((e) => [e.name, e.disabled, e.ignored])).toEqual([
      ['off', true, []],
      ['on', undefined, []],
    ]);
    const plan = planImport('windsurf', read.entries, new Set());
    expect(plan.servers.map((s) => [s.name, s.request.suspend, s.disabled])).toEqual([
      ['off', true, true],
      ['on', undefined, undefined],
    ]);
    expect(plan.servers[0]!.notes).toContain('switched off in the client: imported suspended (spec.suspend: true; apiary resume starts it)');
  });
});

describe("import: a hosted server's URL", () => {
  it('has the password of its user info and its credential query parameters sealed, as written, so $(VAR) gives back the same URL', () => {
    const url = 'https://u:p%40ss@h.example/mcp?api_key=sk-1%2B2&region=eu&x=ghp_abc&flag#frag';
    const plan = planImport('cursor', [{ name: 'h', kind: 'remote', url, transport: 'streamable-http', headers: {}, ignored: [] }], new Set());
    const server = plan.servers[0]!;
    expect(server.request.remote?.url).toBe('https://u:$(H_URL_PASSWORD)@h.example/mcp?api_key=$(H_API_KEY)&region=eu&x=$(H_X)&flag#frag');
    expect(Object.fromEntries(server.values)).toEqual({ H_URL_PASSWORD: 'p%40ss', H_API_KEY: 'sk-1%2B2', H_X: 'ghp_abc' });
    expect(expandArgs([server.request.remote!.url], new Map(server.values))).toEqual([url]);
    expect(planImport('cursor', [{ name: 'h', kind: 'remote', url: 'https://h.example/mcp?v=1', transport: 'streamable-http', headers: {}, ignored: [] }], new Set()).servers[0]!.request.remote?.url).toBe('https://h.example/mcp?v=1');
  });
});
