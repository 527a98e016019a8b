/**
 * Catalogs and installs: the bundled entries installed and reached through
 * apiary with the SDK client; required secrets asked for, bound or refused;
 * a folder with broken entries; a registry API served from a local fixture.
 */
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { CatalogAnswer } from '../src/api/console.js';
import { findCondition } from '../src/api/status.js';
import type { ApiContext } from '../src/console/api.js';
import { launchOf } from '../src/catalog/install-plan.js';
import { NODE_IMAGE, PYTHON_IMAGE } from '../src/api/runner-images.js';
import { fieldPath, ServerJson } from '../src/catalog/server-json.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { ROOT, runCli } from './helpers/cli.js';
import { harness, secretYaml } from './helpers/controller.js';
import { workspace } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';
import { needsScript } from './helpers/tools.js';

/** script(1) gives the install questions a pseudo-terminal. */
const script = needsScript();

const FIXTURES = fileURLToPath(new URL('./fixtures/catalog', import.meta.url));
const REGISTRY = fileURLToPath(new URL('./fixtures/registry', import.meta.url));
const WEATHER = ['--catalog', FIXTURES, '--no-bundled'];

async function manifests(dir: string, file: string): Promise<Record<string, unknown>[]> {
  return parseAllDocuments(await readFile(join(dir, file), 'utf8')).map((d) => d.toJSON() as Record<string, unknown>);
}

describe('the bundled catalog', () => {
  it('pins the versions this checkout runs (so each entry below starts from the local packages)', async () => {
    const listed = JSON.parse((await runCli(['catalog', 'list', '-o', 'json'])).stdout) as { servers: { server: { name: string; version: string; packages: { identifier: string; version: string }[] } }[] };
    const local = listed.servers.filter((s) => ['io.github.modelcontextprotocol/server-everything', 'io.github.modelcontextprotocol/server-memory'].includes(s.server.name));
    expect(local).toHaveLength(2);
    for (const { server } of local) {
      const pkg = server.packages[0]!;
      const installed = JSON.parse(await readFile(join(ROOT, 'node_modules', pkg.identifier, 'package.json'), 'utf8')) as { version: string };
      expect(pkg.version, server.name).toBe(installed.version);
    }
  });

  it('holds a dozen widely used servers with their real packages, each variable marked secret or not, each planning the command it runs', async () => {
    type Listed = { servers: { server: { name: string; packages: { registryType: string; environmentVariables?: { name: string; isSecret?: boolean }[] }[]; remotes?: unknown[] } }[]; problems: unknown[] };
    const listed = JSON.parse((await runCli(['catalog', 'list', '-o', 'json'])).stdout) as Listed;
    expect(listed.problems).toEqual([]);
    const secrets = Object.fromEntries(listed.servers.map(({ server }) => [server.name, (server.packages[0]!.environmentVariables ?? []).filter((v) => v.isSecret === true).map((v) => v.name)]));
    expect(secrets).toEqual({
      'io.github.brave/brave-search-mcp-server': ['BRAVE_API_KEY'],
      'io.github.crystaldba/postgres-mcp': ['DATABASE_URI'],
      'io.github.github/github-mcp-server': ['GITHUB_PERSONAL_ACCESS_TOKEN'],
      'io.github.microsoft/playwright-mcp': [],
      'io.github.modelcontextprotocol/server-everything': [],
      'io.github.modelcontextprotocol/server-fetch': [],
      'io.github.modelcontextprotocol/server-filesystem': [],
      'io.github.modelcontextprotocol/server-git': [],
      'io.github.modelcontextprotocol/server-memory': [],
      'io.github.modelcontextprotocol/server-sequential-thinking': [],
      'io.github.modelcontextprotocol/server-slack': ['SLACK_BOT_TOKEN'],
      'io.github.modelcontextprotocol/server-time': [],
    });
    // What each installs as (its required values given or, for secrets, left to a secret it waits for): the runner, the pinned package, no secret in argv.
    const ws = await workspace();
    const runs: Record<string, { args: string[]; command: string; env: string[]; missing: string[]; image?: string }> = {};
    for (const name of ['github', 'postgres', 'filesystem', 'fetch', 'git', 'time', 'slack', 'brave-search', 'playwright', 'sequential-thinking']) {
      const given = name === 'filesystem' ? ['--arg', 'directory=/srv/files'] : name === 'git' ? ['--arg', 'repository=/srv/repo'] : name === 'slack' ? ['--env', 'SLACK_TEAM_ID=T0123'] : [];
      const dry = await runCli(['install', name, '--dry-run', '--allow-missing', '-o', 'json', ...given], { env: ws.env });
      expect(dry.code, `${name}: ${dry.stderr}`).toBe(0);
      const plan = JSON.parse(dry.stdout) as { server: { spec: { command: string; args: string[]; env?: { name: string }[]; image?: string } }; missing: string[] };
      runs[name] = { command: plan.server.spec.command, args: plan.server.spec.args, env: (plan.server.spec.env ?? []).map((e) => e.name), missing: plan.missing, ...(plan.server.spec.image !== undefined ? { image: plan.server.spec.image } : {}) };
    }
    expect(runs).toEqual({
      github: { command: 'docker', args: ['run', '-i', '--rm', '-e', 'GITHUB_PERSONAL_ACCESS_TOKEN', '-e', 'GITHUB_TOOLSETS', '-e', 'GITHUB_HOST', 'ghcr.io/github/github-mcp-server:v1.10.1'], env: ['GITHUB_PERSONAL_ACCESS_TOKEN'], missing: ['GITHUB_PERSONAL_ACCESS_TOKEN'] },
      postgres: { command: 'uvx', args: ['postgres-mcp==0.3.0', '--access-mode=restricted'], env: ['DATABASE_URI'], image: PYTHON_IMAGE, missing: ['DATABASE_URI'] },
      filesystem: { command: 'npx', args: ['-y', '--', '@modelcontextprotocol/server-filesystem@2026.8.31', '/srv/files'], env: [], image: NODE_IMAGE, missing: [] },
      fetch: { command: 'uvx', args: ['mcp-server-fetch==2026.8.18'], env: [], image: PYTHON_IMAGE, missing: [] },
      git: { command: 'uvx', args: ['mcp-server-git==2026.8.18', '--repository=/srv/repo'], env: [], image: PYTHON_IMAGE, missing: [] },
      time: { command: 'uvx', args: ['mcp-server-time==2026.8.18'], env: [], image: PYTHON_IMAGE, missing: [] },
      slack: { command: 'npx', args: ['-y', '--', '@modelcontextprotocol/server-slack@2025.4.25'], env: ['SLACK_TEAM_ID', 'SLACK_BOT_TOKEN'], image: NODE_IMAGE, missing: ['SLACK_BOT_TOKEN'] },
      'brave-search': { command: 'npx', args: ['-y', '--', '@brave/brave-search-mcp-server@2.1.4'], env: ['BRAVE_API_KEY'], image: NODE_IMAGE, missing: ['BRAVE_API_KEY'] },
      playwright: { command: 'npx', args: ['-y', '--', '@playwright/mcp@0.0.86'], env: [], image: NODE_IMAGE, missing: [] },
      'sequential-thinking': { command: 'npx', args: ['-y', '--', '@modelcontextprotocol/server-sequential-thinking@2026.8.31'], env: [], image: NODE_IMAGE, missing: [] },
    });
    // GitHub's hosted endpoint too, its token in the header from the same secret.
    const hosted = JSON.parse((await runCli(['install', 'github', '--remote', '--dry-run', '--allow-missing', '-o', 'json'], { env: ws.env })).stdout) as { server: { spec: { remote: unknown } } };
    expect(hosted.server.spec.remote).toEqual({ url: 'https://api.githubcopilot.com/mcp/', transport: 'streamable-http', headers: [{ name: 'Authorization', value: 'Bearer $(GITHUB_PERSONAL_ACCESS_TOKEN)' }] });
  }, 60_000);

  it('search puts the entry a word names first, then name and title matches, then description matches; an owner counts by its last part', async () => {
    const names = async (...words: string[]): Promise<string[]> => (JSON.parse((await runCli(['catalog', 'search', ...words, '-o', 'json'])).stdout) as { servers: { server: { name: string } }[] }).servers.map((s) => s.server.name);
    // Every name on GitHub holds "git": only the git server and GitHub's are about git, the one named git first.
    expect(await names('git')).toEqual(['io.github.modelcontextprotocol/server-git', 'io.github.github/github-mcp-server']);
    // Brave Search by its title, before the filesystem server, whose description says it searches files.
    expect(await names('search')).toEqual(['io.github.brave/brave-search-mcp-server', 'io.github.modelcontextprotocol/server-filesystem']);
    expect(await names('sequential', 'thinking')).toEqual(['io.github.modelcontextprotocol/server-sequential-thinking']);
    expect(await names('io.github.brave')).toEqual(['io.github.brave/brave-search-mcp-server']);
  });

  it('each entry installs with no questions and is Ready through apiary, its tools reached with the SDK client', async () => {
    // Under the checkout: `npx -y pkg@version` then resolves the version this checkout has installed, offline.
    const h = await harness({ under: join(ROOT, 'test-artifacts', 'catalog') });
    for (const name of ['everything', 'memory']) {
      const result = await runCli(['install', name, '--env', `MEMORY_FILE_PATH=${join(h.reports, 'memory.jsonl')}`].slice(0, name === 'memory' ? 4 : 2), { env: h.env });
      expect(result.stderr).toBe('');
      expect(result.stdout).toMatch(new RegExp(`^mcpserver/${name} created \\(.+\\): io\\.github\\.modelcontextprotocol/server-${name} 2026\\.8\\.31$`, 'm'));
    }
    await h.start();
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    const tools: Record<string, string> = { everything: 'echo', memory: 'read_graph' };
    for (const name of ['everything', 'memory']) {
      const status = await h.waitFor(`${name} Ready`, async () => {
        const s = await h.status(name);
        return findCondition(s?.conditions, 'Ready')?.status === 'True' && s;
      }, 30_000);
      const client = new Client({ name: 'catalog-test', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(status.url!), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
      const listed = (await client.listTools()).tools.map((t) => t.name);
      expect(listed).toContain(tools[name]);
      const result = await client.callTool({ name: tools[name]!, arguments: name === 'everything' ? { message: 'from the catalog' } : {} });
      expect(result.isError ?? false).toBe(false);
      await client.close();
    }
    const [server] = await manifests(h.dir, 'mcpserver-everything.yaml');
    expect(server).toMatchObject({ metadata: { annotations: { 'apiary.dev/catalog-name': 'io.github.modelcontextprotocol/server-everything', 'apiary.dev/catalog-version': '2026.8.31' } }, spec: { command: 'npx', args: ['-y', '--', '@modelcontextprotocol/server-everything@2026.8.31', 'stdio'] } });
    // Ready above with spec.image in the manifest: local processes run the command and leave the image to Kubernetes.
    expect(server).toMatchObject({ spec: { image: NODE_IMAGE } });
  }, 90_000);
});

describe('catalog files', () => {
  it('lists a folder of server.json files, reporting each broken entry with its file and field, and skipping it', async () => {
    const result = await runCli(['catalog', 'list', ...WEATHER]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('io.example/weather');
    expect(result.stdout).not.toContain('io.example/broken');
    expect(result.stderr).toContain(`warning: skipped ${join(FIXTURES, 'broken.json')}: description:`);
    expect(result.stderr).toContain(`warning: skipped ${join(FIXTURES, 'broken.json')}: packages[0].transport.type:`);
    expect(result.stderr).toMatch(new RegExp(`warning: skipped ${join(FIXTURES, 'not-json.json')}: \\(the file\\): not JSON`));
    const search = await runCli(['catalog', 'search', 'forecast', 'key', ...WEATHER]);
    expect(search.stdout.trim().split('\n')).toHaveLength(3); // header and both versions
    const show = await runCli(['catalog', 'show', 'weather', ...WEATHER]);
    expect(show.stdout).toContain('Version:       2.0.0');
    const v1 = await runCli(['catalog', 'show', 'io.example/weather', '--version', '1.0.0', ...WEATHER]);
    expect(v1.stdout).toMatch(/WEATHER_API_KEY\s+env\s+yes\s+yes/);
    expect(v1.stdout).toMatch(/WEATHER_ENDPOINT\s+env\s+no\s+no\s+\(fixed\) https:\/\/api\.example\.com\/v1/);
    expect(v1.stdout).toContain('Runs:          npx -y -- @example/weather-mcp@1.0.0 --units=metric');
  });
});

describe('install', () => {
  const v1 = ['weather', '--version', '1.0.0', ...WEATHER];

  it('writes spec.image for an npm or PyPI package (the pinned image of its runner), so render takes the directory on the first try', async () => {
    const ws = await workspace();
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(ws.dir, { recursive: true });
    await writeFile(join(ws.dir, 'keys.yaml'), secretYaml('team-keys', { weather: 'w' }));
    const npm = await runCli(['install', ...v1, '--env', 'REGION=eu', '--secret', 'WEATHER_API_KEY=team-keys/weather'], { env: ws.env });
    expect(npm.code, npm.stderr).toBe(0);
    const [weather] = await manifests(ws.dir, 'mcpserver-weather.yaml');
    expect((weather as { spec: Record<string, unknown> }).spec).toMatchObject({ image: NODE_IMAGE, command: 'npx' });
    // A PyPI entry, in a catalog folder of its own.
    const catalog = join(ws.root, 'pypi-catalog');
    await mkdir(catalog, { recursive: true });
    await writeFile(join(catalog, 'clock.json'), JSON.stringify({ $schema: 'https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json', name: 'io.example/clock', description: 'The time', version: '0.4.1', packages: [{ registryType: 'pypi', identifier: 'clock-mcp', version: '0.4.1', transport: { type: 'stdio' } }] }));
    const pypi = await runCli(['install', 'clock', '--catalog', catalog, '--no-bundled'], { env: ws.env });
    expect(pypi.code, pypi.stderr).toBe(0);
    const [clock] = await manifests(ws.dir, 'mcpserver-clock.yaml');
    expect((clock as { spec: Record<string, unknown> }).spec).toMatchObject({ image: PYTHON_IMAGE, command: 'uvx', args: ['clock-mcp==0.4.1'] });
    // The command that writes the same says so too.
    const dry = await runCli(['install', 'clock', '--name', 'clock2', '--catalog', catalog, '--no-bundled', '--dry-run', '-o', 'json'], { env: ws.env });
    expect((JSON.parse(dry.stdout) as { server: unknown }).server).toMatchObject({ spec: { image: PYTHON_IMAGE } });
    const rendered = await runCli(['render', '--runtime', 'kubernetes', '-o', 'json'], { env: ws.env });
    expect(rendered.code, rendered.stderr).toBe(0);
    const images = (JSON.parse(rendered.stdout) as { items: { kind: string; metadata: { name: string }; spec: { template: { spec: { containers: { image: string; command: string[] }[] } } } }[] }).items
      .filter((o) => o.kind === 'Deployment')
      .map((o) => [o.metadata.name, o.spec.template.spec.containers[0]!.image, o.spec.template.spec.containers[0]!.command[0]]);
    expect(images).toEqual([['clock', PYTHON_IMAGE, 'uvx'], ['weather', NODE_IMAGE, 'npx']]);
    // apiary add takes the image too (the command the console shows for an install says --image).
    const added = await runCli(['add', 'own', '--image', 'ghcr.io/example/own:1.0', '--', 'own-mcp'], { env: ws.env });
    expect(added.code, added.stderr).toBe(0);
    expect(((await manifests(ws.dir, 'mcpserver-own.yaml'))[0] as { spec: unknown }).spec).toEqual({ image: 'ghcr.io/example/own:1.0', command: 'own-mcp' });
  });

  it('refuses without the required values, naming each and how to give it; writes nothing', async () => {
    const ws = await workspace();
    const result = await runCli(['install', ...v1], { env: ws.env });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('io.example/weather needs WEATHER_API_KEY, REGION; nothing was written');
    expect(result.stderr).toContain('WEATHER_API_KEY (secret): Your API key; give it with --secret WEATHER_API_KEY=SECRET/KEY (an existing secret) or --secret-stdin WEATHER_API_KEY');
    expect(result.stderr).toContain('REGION: Where forecasts are for; give it with --env REGION=eu|us');
    await expect(readFile(join(ws.dir, 'mcpserver-weather.yaml'))).rejects.toThrow();
    // A secret is never taken from argv, and a choice must be one of the choices.
    expect((await runCli(['install', ...v1, '--env', 'WEATHER_API_KEY=x', '--env', 'REGION=eu'], { env: ws.env })).stderr).toContain('WEATHER_API_KEY is a secret');
    expect((await runCli(['install', ...v1, '--env', 'REGION=mars'], { env: ws.env })).stderr).toContain('REGION must be one of eu, us; got "mars"');
  });

  it('seals a value read from stdin into a secret named after the variable (scoped to the server when taken); plain values stay plain', async () => {
    const ws = await workspace();
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(ws.dir, { recursive: true });
    // A secret of that name already exists (another server's): the new one is scoped, not numbered.
    await writeFile(join(ws.dir, 'taken.yaml'), secretYaml('weather-api-key', { other: 'x' }));
    const result = await runCli(['install', ...v1, '--env', 'REGION=eu', '--secret-stdin', 'WEATHER_API_KEY'], { env: ws.env, input: 'k-123-canary\n' });
    expect(result.stderr).not.toContain('error');
    expect(result.stdout).toContain('secret/weather-weather-api-key created (sealed)');
    const [server] = await manifests(ws.dir, 'mcpserver-weather.yaml');
    expect((server as { spec: { env: unknown[] } }).spec.env).toEqual([
      { name: 'REGION', value: 'eu' },
      { name: 'LOG_LEVEL', value: 'info' },
      { name: 'WEATHER_ENDPOINT', value: 'https://api.example.com/v1' },
      { name: 'WEATHER_API_KEY', valueFrom: { secretKeyRef: { name: 'weather-weather-api-key', key: 'WEATHER_API_KEY' } } },
    ]);
    const sealed = await readFile(join(ws.dir, 'secret-weather-weather-api-key.yaml'), 'utf8');
    expect(sealed).toContain('encryptedData');
    expect(sealed).not.toContain('k-123-canary');
    expect((await runCli(['secret', 'get', 'weather-weather-api-key', 'WEATHER_API_KEY'], { env: ws.env })).stdout.trim()).toBe('k-123-canary');
  });

  it('binds an existing secret with --secret VAR=SECRET/KEY, and --dry-run writes nothing', async () => {
    const ws = await workspace();
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(ws.dir, { recursive: true });
    await writeFile(join(ws.dir, 'keys.yaml'), secretYaml('team-keys', { weather: 'w' }));
    const dry = await runCli(['install', ...v1, '--env', 'REGION=us', '--secret', 'WEATHER_API_KEY=team-keys/weather', '--dry-run'], { env: ws.env });
    expect(dry.stdout).toContain('secretKeyRef:');
    expect(dry.stdout).toContain('name: team-keys');
    await expect(readFile(join(ws.dir, 'mcpserver-weather.yaml'))).rejects.toThrow();
    const done = await runCli(['install', ...v1, '--env', 'REGION=us', '--secret', 'WEATHER_API_KEY=team-keys/weather', '--name', 'forecast'], { env: ws.env });
    expect(done.stdout).not.toContain('created (sealed)');
    const [server] = await manifests(ws.dir, 'mcpserver-forecast.yaml');
    expect(JSON.stringify(server)).toContain('{"name":"WEATHER_API_KEY","valueFrom":{"secretKeyRef":{"name":"team-keys","key":"weather"}}}');
    const missingKey = await runCli(['install', ...v1, '--env', 'REGION=us', '--secret', 'WEATHER_API_KEY=team-keys/nope', '--name', 'other'], { env: ws.env });
    expect(missingKey.stderr).toContain('secret "team-keys" has no key "nope"');
  });

  it('--allow-missing writes the server, which is then Stuck naming the secret it waits for', async () => {
    const h = await harness();
    const result = await runCli(['install', ...v1, '--env', 'REGION=eu', '--allow-missing'], { env: h.env });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('warning: WEATHER_API_KEY has no value: mcpserver/weather is Stuck until secret weather-api-key has key WEATHER_API_KEY (apiary secret set weather-api-key WEATHER_API_KEY)');
    await h.start();
    const stuck = await h.waitFor('Stuck', async () => {
      const s = await h.status('weather');
      return s?.phase === 'Stuck' && s;
    });
    expect(stuck.message).toBe('secret "weather-api-key" not found (needed for env WEATHER_API_KEY)');
  });

  it('upgrade shows which variables were added or removed, keeps the values given before, and needs the new required ones', async () => {
    const ws = await workspace();
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(ws.dir, { recursive: true });
    await writeFile(join(ws.dir, 'keys.yaml'), secretYaml('team-keys', { weather: 'w' }));
    await runCli(['install', ...v1, '--env', 'REGION=us', '--secret', 'WEATHER_API_KEY=team-keys/weather'], { env: ws.env });
    const refused = await runCli(['upgrade', 'weather', ...WEATHER], { env: ws.env });
    expect(refused.stdout).toContain('mcpserver/weather: io.example/weather 1.0.0 -> 2.0.0');
    expect(refused.stdout).toContain('  + CACHE_DIR (required): Where to cache forecasts');
    expect(refused.stdout).toContain('  - LOG_LEVEL (no longer used: removed from the manifest)');
    expect(refused.stderr).toContain('io.example/weather needs CACHE_DIR; nothing was written');
    const done = await runCli(['upgrade', 'weather', '--env', 'CACHE_DIR=/var/cache/weather', ...WEATHER], { env: ws.env });
    expect(done.code).toBe(0);
    const [server] = (await manifests(ws.dir, 'mcpserver-weather.yaml')) as { metadata: { annotations: Record<string, string> }; spec: { args: string[]; env: { name: string }[] } }[];
    expect(server!.metadata.annotations['apiary.dev/catalog-version']).toBe('2.0.0');
    expect(server!.spec.args).toEqual(['-y', '--', '@example/weather-mcp@2.0.0']);
    expect(JSON.stringify(server!.spec.env)).toBe(
      JSON.stringify([
        { name: 'REGION', value: 'us' },
        { name: 'CACHE_DIR', value: '/var/cache/weather' },
        { name: 'WEATHER_API_KEY', valueFrom: { secretKeyRef: { name: 'team-keys', key: 'weather' } } },
      ]),
    );
    expect((await runCli(['upgrade', 'weather', ...WEATHER], { env: ws.env })).stdout).toContain('is at io.example/weather 2.0.0, the newest in the catalog');
  });
});

describe('a registry API (a local server in the registry\'s documented shape)', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  it('reads every page, passes the search on, reports a bad entry and installs from it', async () => {
    const asked: string[] = [];
    server = createServer((req, res) => {
      asked.push(req.url ?? '');
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== '/v0.1/servers') return void res.writeHead(404).end();
      void readFile(join(REGISTRY, url.searchParams.get('cursor') ? 'page2.json' : 'page1.json')).then((body) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(body));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const list = await runCli(['catalog', 'list', '--registry', base, '--no-bundled']);
    expect(list.stdout).toContain('io.github.example/notes');
    expect(list.stdout).toContain('io.github.example/tickets');
    expect(list.stderr).toContain(`warning: skipped ${base}/v0.1/servers servers[1]: name: must be reverse-DNS with one slash`);
    expect(asked).toEqual(['/v0.1/servers?limit=100&version=latest', '/v0.1/servers?limit=100&version=latest&cursor=io.github.example%2Fnotes%3A0.3.1']);
    asked.length = 0;
    await runCli(['catalog', 'search', 'notes', '--registry', base, '--no-bundled']);
    expect(asked[0]).toBe('/v0.1/servers?limit=100&version=latest&search=notes');

    const ws = await workspace();
    const dry = await runCli(['install', 'notes', '--env', 'NOTES_DIR=/srv/notes', '--dry-run', '--registry', base, '--no-bundled'], { env: ws.env });
    expect(dry.stdout).toContain('command: uvx');
    expect(dry.stdout).toContain('notes-mcp==0.3.1');
    const tickets = await runCli(['catalog', 'show', 'tickets', '--registry', base, '--no-bundled']);
    expect(tickets.stdout).toContain('Runs:          docker run -i --rm -e TRACKER_TOKEN ghcr.io/example/tickets-mcp:2.1.0');
    // Its hosted endpoint instead: a remote MCPServer whose header takes its key from a sealed secret.
    const remote = await runCli(['install', 'tickets', '--remote', '--secret-stdin', 'TOKEN', '--registry', base, '--no-bundled'], { env: ws.env, input: 'tk-canary-9\n' });
    expect(remote.stderr).not.toContain('error');
    expect(remote.stdout).toContain('secret/token created (sealed)');
    const [ticket] = await manifests(ws.dir, 'mcpserver-tickets.yaml');
    expect((ticket as { spec: unknown }).spec).toEqual({
      remote: { url: 'https://tickets.example.com/mcp', transport: 'streamable-http', headers: [{ name: 'Authorization', value: 'Bearer $(TOKEN)' }] },
      env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'token', key: 'TOKEN' } } }],
    });
    const down = await runCli(['catalog', 'list', '--registry', 'http://127.0.0.1:9', '--no-bundled']);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('cannot read the registry at http://127.0.0.1:9/v0.1/servers');
  });
});


/** An apiary command run on a pseudo-terminal (script(1)): what it printed, a way to wait for text, and its exit. */
async function onTerminal(args: string, env: NodeJS.ProcessEnv) {
  const { spawn } = await import('node:child_process');
  const { BIN } = await import('./helpers/cli.js');
  const child = spawn('script', ['-qfec', `${BIN} ${args}`, '/dev/null'], { env: { ...process.env, ...env, NO_COLOR: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const until = async (text: string): Promise<void> => {
    await waitFor(`${JSON.stringify(text)} on the terminal`, () => output.includes(text), 10_000, { intervalMs: 50, observe: () => output });
  };
  return { output: () => output, until, type: (text: string) => child.stdin.write(text), exited };
}

describe.skipIf(!script.available)('install on a terminal', () => {
  const weather = `install weather --version 1.0.0 --catalog ${FIXTURES} --no-bundled`;
  /** A workspace whose directory has the secret the install binds (so nothing is asked but the question). */
  const withKeys = async () => {
    const ws = await workspace();
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(ws.dir, { recursive: true });
    await writeFile(join(ws.dir, 'keys.yaml'), secretYaml('team', { key: 'k' }));
    return ws;
  };

  it('asks for each secret without echoing it and for a required value showing its choices, then shows the command and asks before writing (driven through a pseudo-terminal)', async () => {
    const ws = await workspace();
    const tty = await onTerminal(weather, ws.env);
    await tty.until('Value for WEATHER_API_KEY (Your API key), input hidden: ');
    tty.type('tty-key-canary\r');
    await tty.until('Value for REGION (Where forecasts are for) [eu|us]: ');
    tty.type('us\r');
    await tty.until('mcpserver/weather will run: npx -y -- @example/weather-mcp@1.0.0 --units=metric');
    await tty.until('Write? [y/N] ');
    await expect(readFile(join(ws.dir, 'mcpserver-weather.yaml'))).rejects.toThrow();
    tty.type('y\r');
    expect(await tty.exited).toBe(0);
    expect(tty.output()).not.toContain('tty-key-canary');
    expect(tty.output()).toContain('secret/weather-api-key created (sealed)');
    expect((await runCli(['secret', 'get', 'weather-api-key', 'WEATHER_API_KEY'], { env: ws.env })).stdout).toBe('tty-key-canary\n');
    const [server] = await manifests(ws.dir, 'mcpserver-weather.yaml');
    expect(JSON.stringify(server)).toContain('{"name":"REGION","value":"us"}');
  });

  it('writes nothing when the answer is not yes', async () => {
    const ws = await withKeys();
    const tty = await onTerminal(`${weather} --env REGION=eu --secret WEATHER_API_KEY=team/key`, ws.env);
    await tty.until('mcpserver/weather will run: npx -y -- @example/weather-mcp@1.0.0 --units=metric');
    await tty.until('Write? [y/N] ');
    tty.type('\r');
    expect(await tty.exited).toBe(1);
    expect(tty.output()).toContain('error: nothing was written (the answer was not yes)');
    await expect(readFile(join(ws.dir, 'mcpserver-weather.yaml'))).rejects.toThrow();
  });

  it('--yes writes without asking (the command is still shown)', async () => {
    const ws = await withKeys();
    const tty = await onTerminal(`${weather} --env REGION=eu --secret WEATHER_API_KEY=team/key --yes`, ws.env);
    expect(await tty.exited).toBe(0);
    expect(tty.output()).toContain('mcpserver/weather will run: npx -y -- @example/weather-mcp@1.0.0 --units=metric');
    expect(tty.output()).not.toContain('Write?');
    await readFile(join(ws.dir, 'mcpserver-weather.yaml'));
  });

  it('off a terminal prints the command and writes (as kubectl apply and helm install do), and -o json carries it', async () => {
    const ws = await withKeys();
    const text = await runCli(['install', 'weather', '--version', '1.0.0', ...WEATHER, '--env', 'REGION=eu', '--secret', 'WEATHER_API_KEY=team/key'], { env: ws.env });
    expect(text.code).toBe(0);
    expect(text.stdout.split('\n').slice(0, 2)).toEqual(['mcpserver/weather will run: npx -y -- @example/weather-mcp@1.0.0 --units=metric', expect.stringMatching(/^mcpserver\/weather created/)]);
    const json = await runCli(['install', 'weather', '--version', '1.0.0', ...WEATHER, '--name', 'w2', '--env', 'REGION=eu', '--secret', 'WEATHER_API_KEY=team/key', '-o', 'json'], { env: ws.env });
    expect(JSON.parse(json.stdout)).toMatchObject({ name: 'w2', command: 'npx', args: ['-y', '--', '@example/weather-mcp@1.0.0', '--units=metric'] });
  });
});

describe('upgrade of a hosted server', () => {
  it('stays hosted: the new version is fronted too, not swapped for its package', async () => {
    const ws = await workspace();
    const { mkdir, writeFile } = await import('node:fs/promises');
    const folder = join(ws.root, 'catalog');
    await mkdir(folder, { recursive: true });
    const entry = (version: string) =>
      JSON.stringify({
        name: 'io.example/tickets',
        description: 'Tickets',
        version,
        packages: [{ registryType: 'npm', identifier: '@example/tickets', version, transport: { type: 'stdio' } }],
        remotes: [{ type: 'streamable-http', url: `https://tickets.example.com/v${version}/mcp` }],
      });
    await writeFile(join(folder, 'a.json'), entry('1.0.0'));
    await writeFile(join(folder, 'b.json'), entry('2.0.0'));
    const source = ['--catalog', folder, '--no-bundled'];
    expect((await runCli(['install', 'tickets', '--version', '1.0.0', '--remote', ...source], { env: ws.env })).code).toBe(0);
    const upgraded = await runCli(['upgrade', 'tickets', ...source], { env: ws.env });
    expect(upgraded.code, upgraded.stderr).toBe(0);
    const [server] = (await manifests(ws.dir, 'mcpserver-tickets.yaml')) as { spec: Record<string, unknown> }[];
    expect(server!.spec).toEqual({ remote: { url: 'https://tickets.example.com/v2.0.0/mcp', transport: 'streamable-http' } });
  });
});

describe('catalog fields never become a command unchecked', () => {
  const entry = (pkg: Record<string, unknown>): Record<string, unknown> => ({
    name: 'io.example/x',
    description: 'x',
    version: '1.0.0',
    packages: [{ registryType: 'npm', identifier: 'ok-pkg', version: '1.0.0', transport: { type: 'stdio' }, ...pkg }],
  });
  const issues = (value: unknown): string[] => {
    const parsed = ServerJson.safeParse(value);
    return parsed.success ? [] : parsed.error.issues.map((i) => `${fieldPath(i.path)}: ${i.message}`);
  };
  const NPM_NAME = 'lowercase letters, digits, - . _ and an optional @scope/, starting with a letter or digit, at most 214 characters';
  const refused: [string, Record<string, unknown>, string][] = [
    ['an npm identifier npx would take as an option', { identifier: '--call=touch pwned #' }, `packages[0].identifier: "--call=touch pwned #" is not an npm package name (${NPM_NAME})`],
    ['an npm identifier with a space', { identifier: 'ok pkg' }, `packages[0].identifier: "ok pkg" is not an npm package name (${NPM_NAME})`],
    ['an npm identifier in capitals', { identifier: 'OkPkg' }, `packages[0].identifier: "OkPkg" is not an npm package name (${NPM_NAME})`],
    ['an npm identifier starting with a dot', { identifier: '.hidden' }, `packages[0].identifier: ".hidden" is not an npm package name (${NPM_NAME})`],
    ['an npm identifier over 214 characters', { identifier: 'a'.repeat(215) }, `packages[0].identifier: "${'a'.repeat(215)}" is not an npm package name (${NPM_NAME})`],
    ['an npm version with shell words', { version: '1.0.0;id' }, 'packages[0].version: "1.0.0;id" is not an npm version (semver: 1.2.3, 1.2.3-beta.1)'],
    ['an npm version that is an option', { version: '-1' }, 'packages[0].version: "-1" is not an npm version (semver: 1.2.3, 1.2.3-beta.1)'],
    ['a runtimeHint that is a shell', { runtimeHint: 'sh' }, 'packages[0].runtimeHint: "sh" is not a runner apiary starts npm packages with (npx)'],
    ['a runtimeHint of another registry type', { registryType: 'pypi', identifier: 'notes-mcp', runtimeHint: 'npx' }, 'packages[0].runtimeHint: "npx" is not a runner apiary starts pypi packages with (uvx)'],
    ['a PyPI name that is an option', { registryType: 'pypi', identifier: '--with=evil' }, 'packages[0].identifier: "--with=evil" is not a PyPI project name (letters, digits, - . _, starting and ending with a letter or digit)'],
    ['a PyPI version with a shell word', { registryType: 'pypi', identifier: 'notes-mcp', version: '1.0$(id)' }, 'packages[0].version: "1.0$(id)" is not a PyPI version (PEP 440: 1.2, 1.2.3rc1, 1.2.post1)'],
    ['an image that is an option', { registryType: 'oci', identifier: '--privileged' }, 'packages[0].identifier: "--privileged" is not an image reference ([registry/]name[:tag][@digest], lowercase name)'],
    ['an image with a space', { registryType: 'oci', identifier: 'ghcr.io/x/y -v /:/host' }, 'packages[0].identifier: "ghcr.io/x/y -v /:/host" is not an image reference ([registry/]name[:tag][@digest], lowercase name)'],
    ['an image tag that is an option', { registryType: 'oci', identifier: 'ghcr.io/x/y', version: '-v' }, 'packages[0].version: "-v" is not an image tag (letters, digits, _ . -, at most 128, starting with a letter, digit or _)'],
    ['a NuGet id with a slash', { registryType: 'nuget', identifier: '../x' }, 'packages[0].identifier: "../x" is not a NuGet package id (letters, digits and _, with . or - between them, at most 100 characters)'],
  ];
  it.each(refused)('refuses %s, naming the field', (_, pkg, message) => {
    expect(issues(entry(pkg))).toContain(message);
  });

  const accepted: [string, string, string | undefined][] = [
    ['npm', '@modelcontextprotocol/server-everything', '2026.8.31'],
    ['npm', 'a.b_c-d', '1.2.3-beta.1+build.5'],
    ['pypi', 'Notes_MCP.x', '1!2.0.post1'],
    ['pypi', 'mcp-server-git', '0.6.2rc1'],
    ['oci', 'ghcr.io/example/tickets-mcp', '2.1.0'],
    ['oci', 'localhost:5000/team/img', undefined],
    ['oci', 'docker.io/mcp/filesystem:1.0.2', undefined],
    ['oci', `mcp/x@sha256:${'a'.repeat(64)}`, undefined],
    ['nuget', 'Example.Mcp-Server', '1.2.3.4'],
  ];
  it.each(accepted)('accepts the %s package %s', (registryType, identifier, version) => {
    expect(issues(entry({ registryType, identifier, version }))).toEqual([]);
  });

  it('runs the runner of the registry type with the package after the options (npx: after --), and keeps its own options beside the entry\'s', () => {
    const launch = (pkg: Record<string, unknown>) => {
      const parsed = ServerJson.parse(entry(pkg));
      const { command, args } = launchOf({ server: parsed, source: 'test' });
      return [command, ...args].join(' ');
    };
    expect(launch({ packageArguments: [{ type: 'positional', value: 'stdio' }] })).toBe('npx -y -- ok-pkg@1.0.0 stdio');
    expect(launch({ runtimeArguments: [{ type: 'named', name: '--node-options', value: '--max-old-space-size=256' }] })).toBe('npx -y --node-options=--max-old-space-size=256 -- ok-pkg@1.0.0');
    expect(launch({ registryType: 'oci', identifier: 'localhost:5000/team/img', version: '2' })).toBe('docker run -i --rm localhost:5000/team/img:2');
    expect(launch({ registryType: 'oci', identifier: 'ghcr.io/x/y', runtimeHint: 'podman', runtimeArguments: [{ type: 'named', name: '--network', value: 'none' }] })).toBe('podman run -i --rm --network=none ghcr.io/x/y:1.0.0');
  });

  it('skips an entry whose identifier or runner is refused, saying which field, and installs nothing from it', async () => {
    const ws = await workspace();
    const { mkdir, writeFile } = await import('node:fs/promises');
    const folder = join(ws.root, 'hostile');
    await mkdir(folder, { recursive: true });
    const server = (name: string, pkg: Record<string, unknown>) => JSON.stringify({ ...entry(pkg), name });
    await writeFile(join(folder, 'call.json'), server('io.example/call', { identifier: '--call=touch pwned #' }));
    await writeFile(join(folder, 'shell.json'), server('io.example/shell', { runtimeHint: 'sh' }));
    const list = await runCli(['catalog', 'list', '--catalog', folder, '--no-bundled']);
    expect(list.stderr).toContain(`warning: skipped ${join(folder, 'call.json')}: packages[0].identifier: "--call=touch pwned #" is not an npm package name`);
    expect(list.stderr).toContain(`warning: skipped ${join(folder, 'shell.json')}: packages[0].runtimeHint: "sh" is not a runner apiary starts npm packages with (npx)`);
    const install = await runCli(['install', 'call', '--catalog', folder, '--no-bundled'], { env: ws.env });
    expect(install.code).not.toBe(0);
    expect(install.stderr).toContain('no catalog entry named "call"');
    await expect(readFile(join(ws.dir, 'mcpserver-call.yaml'))).rejects.toThrow();
  });
});

describe('a registry entry with the name of a bundled one', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  /** A registry whose only entry takes the bundled everything's name, at a higher version, with another package. */
  async function impostor(): Promise<string> {
    const body = JSON.stringify({
      servers: [{ server: { name: 'io.github.modelcontextprotocol/server-everything', description: 'Everything, but not', version: '9999.0.0', packages: [{ registryType: 'npm', identifier: 'not-everything', version: '9999.0.0', transport: { type: 'stdio' } }] } }],
      metadata: { count: 1 },
    });
    server = createServer((_, res) => void res.writeHead(200, { 'Content-Type': 'application/json' }).end(body));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  }
  const WARNING = (base: string) => `warning: ${base} has io.github.modelcontextprotocol/server-everything 9999.0.0, the name of an entry bundled with apiary; the bundled one (2026.8.31) is used (to use the other, leave the bundled catalog out with --no-bundled)`;

  it('is left out with a warning, and install takes the bundled one; with --no-bundled the registry\'s is used', async () => {
    const base = await impostor();
    const list = await runCli(['catalog', 'list', '--registry', base, '-o', 'json']);
    expect(list.stderr).toContain(WARNING(base));
    const listed = (JSON.parse(list.stdout) as { servers: { server: { name: string; version: string } }[] }).servers.map((s) => `${s.server.name} ${s.server.version}`);
    expect(listed).toContain('io.github.modelcontextprotocol/server-everything 2026.8.31');
    expect(listed).not.toContain('io.github.modelcontextprotocol/server-everything 9999.0.0');
    const ws = await workspace();
    const dry = await runCli(['install', 'everything', '--registry', base, '--dry-run'], { env: ws.env });
    expect(dry.stderr).toContain(WARNING(base));
    expect(dry.stdout).toContain('@modelcontextprotocol/server-everything@2026.8.31');
    expect(dry.stdout).not.toContain('not-everything');
    const chosen = await runCli(['install', 'everything', '--registry', base, '--no-bundled', '--dry-run'], { env: ws.env });
    expect(chosen.stderr).toBe('');
    expect(chosen.stdout).toContain('not-everything@9999.0.0');
  });

  it('is named in a warnings field of the console\'s catalog answer', async () => {
    const base = await impostor();
    const { catalogList } = await import('../src/console/catalog-api.js');
    const api = createServer((req, res) => void catalogList({ catalog: { registries: [base] } } as unknown as ApiContext, req, res));
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    try {
      const answer = (await (await fetch(`http://127.0.0.1:${(api.address() as { port: number }).port}/api/v1/catalog`)).json()) as CatalogAnswer;
      expect(answer.items.find((i) => i.name === 'io.github.modelcontextprotocol/server-everything')).toMatchObject({ version: '2026.8.31', source: 'bundled' });
      expect(answer.warnings).toEqual([`${base} has io.github.modelcontextprotocol/server-everything 9999.0.0, the name of an entry bundled with apiary; the bundled one (2026.8.31) is used`]);
    } finally {
      await new Promise<void>((r) => api.close(() => r()));
    }
  });
});

describe('registry answers are bounded', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
  });
  async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
    const server = createServer(handler);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  }
  const MiB = 1024 * 1024;

  it('refuses a page over 4 MiB with an error naming the URL and the cap, and stops reading it (the registry sees the connection closed)', async () => {
    // An endless answer, bounded at 256 MiB so a client that never stops cannot hang the test.
    let sent = 0;
    let closedEarly: () => void = () => undefined;
    const closed = new Promise<void>((r) => (closedEarly = r));
    const base = await serve((_, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, ' ');
      res.write('{"servers": [');
      const pump = (): void => {
        while (sent < 256 * MiB) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end(']}');
      };
      res.on('close', () => {
        if (sent < 256 * MiB) closedEarly();
      });
      pump();
    });
    const result = await runCli(['catalog', 'list', '--registry', base, '--no-bundled']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`cannot read the registry at ${base}/v0.1/servers: the answer is over 4 MiB, the most apiary reads of one page`);
    await closed;
    expect(sent).toBeLessThan(256 * MiB);
  });

  it('refuses a page whose Content-Length is over the cap without reading it', async () => {
    const base = await serve((_, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(1536 * MiB) });
      res.write('{"servers": [');
    });
    const { loadCatalog } = await import('../src/catalog/catalog.js');
    await expect(loadCatalog({ bundled: false, registries: [base] })).rejects.toThrow(`cannot read the registry at ${base}/v0.1/servers: the answer is over 4 MiB, the most apiary reads of one page`);
  });

  /** A registry that counts what it is asked, answering one entry (or 500 while `failing`). */
  async function counted(): Promise<{ base: string; asked: string[]; failing: { on: boolean } }> {
    const asked: string[] = [];
    const failing = { on: false };
    const body = await readFile(join(REGISTRY, 'page2.json'));
    const base = await serve((req, res) => {
      asked.push(req.url ?? '');
      if (failing.on) return void res.writeHead(500).end();
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(body);
    });
    return { base, asked, failing };
  }

  it('a cache answers the same registry and search again for 5 minutes, asks once for loads at the same time, keeps no failure, and stays bounded', async () => {
    const { loadCatalog } = await import('../src/catalog/catalog.js');
    const { RegistryCache } = await import('../src/catalog/registry-cache.js');
    const { base, asked, failing } = await counted();
    let now = 0;
    const cache = new RegistryCache({ now: () => now, maxEntries: 2 });
    const options = { bundled: false, registries: [base], cache };
    const names = async (search?: string) => (await loadCatalog(options, search)).entries.map((e) => e.server.name);
    expect(await Promise.all([names(), names()])).toEqual([['io.github.example/tickets'], ['io.github.example/tickets']]);
    expect(asked).toHaveLength(1);
    now += 4 * 60_000;
    await names();
    expect(asked).toHaveLength(1);
    now += 2 * 60_000; // past 5 minutes
    await names();
    expect(asked).toHaveLength(2);
    // Another search is another key; a third one pushes out the oldest.
    await names('tickets');
    await names('tracker');
    expect(asked).toHaveLength(4);
    await names();
    expect(asked).toHaveLength(5);
    // A failure is not kept: the next load asks again.
    failing.on = true;
    await expect(names('down')).rejects.toThrow('HTTP 500');
    failing.on = false;
    expect(await names('down')).toEqual([]);
    expect(asked).toHaveLength(7);
    // An answer bigger than the whole cache is not kept.
    const tiny = new RegistryCache({ maxBytes: 100 });
    await loadCatalog({ ...options, cache: tiny });
    await loadCatalog({ ...options, cache: tiny });
    expect(asked).toHaveLength(9);
  });

  it('the console\'s catalog API answers from its cache (one load of the page asks the registry once)', async () => {
    const { base, asked } = await counted();
    const { ConsoleServer } = await import('../src/console/server.js');
    const { createLogger } = await import('../src/util/logger.js');
    const { KeyStore } = await import('../src/crypto/keys.js');
    const h = await harness();
    const backend = await h.start();
    const consoleServer = new ConsoleServer({ dir: h.dir, stateDir: h.stateDir, keys: new KeyStore({ env: { APIARY_KEY_FILE: h.keyFile } }), logger: createLogger(() => undefined, 'error'), backend, version: 'test', catalog: { registries: [base] } });
    await consoleServer.start();
    try {
      const get = async (path: string) => (await fetch(`${consoleServer.url}${path}`, { headers: { Authorization: `Bearer ${consoleServer.apiToken}` } })).json() as Promise<Record<string, unknown>>;
      expect(JSON.stringify(await get('/api/v1/catalog'))).toContain('io.github.example/tickets');
      expect(await get('/api/v1/catalog/entry?name=tickets')).toMatchObject({ source: base });
      await get('/api/v1/catalog');
      expect(asked).toHaveLength(1);
    } finally {
      await consoleServer.stop();
    }
  });
});
