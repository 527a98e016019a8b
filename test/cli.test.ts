import { spawn } from 'node:child_process';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { logSink } from '../src/cli/log-sink.js';
import { buildProgram, verbOf } from '../src/cli/main.js';
import { StateLayout } from '../src/state/layout.js';
import { StatusStore } from '../src/state/status-store.js';
import { BIN, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

describe('apiary CLI (built binary)', () => {
  it('validate on the bundled manifests exits 0', async () => {
    const r = await runCli(['validate', 'manifests']);
    expect(r.stderr).toContain('2 valid resource(s) in 2 file(s); no errors');
    expect(r.code).toBe(0);
  });

  it('validate on broken manifests exits 1 and locates every error', async () => {
    const r = await runCli(['validate', 'test/fixtures/manifests/invalid/35-duplicate-across-files']);
    expect(r.code).toBe(1);
    expect(r.stdout.trim().split('\n')).toEqual([
      'test/fixtures/manifests/invalid/35-duplicate-across-files/a.yaml:4:9: metadata.name: MCPServer "demo" is declared more than once; also at test/fixtures/manifests/invalid/35-duplicate-across-files/b.yaml:5',
      'test/fixtures/manifests/invalid/35-duplicate-across-files/b.yaml:5:9: metadata.name: MCPServer "demo" is declared more than once; also at test/fixtures/manifests/invalid/35-duplicate-across-files/a.yaml:4',
      'test/fixtures/manifests/invalid/35-duplicate-across-files/b.yaml:8:3: spec.agrs: unknown field; did you mean "args"?',
    ]);
  });

  it('validate -o json prints a machine-readable report', async () => {
    const r = await runCli(['validate', 'test/fixtures/manifests/invalid/07-unknown-field-spec.yaml', '-o', 'json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as { valid: boolean; errors: { file: string; line: number; col: number; message: string }[] };
    expect(report.valid).toBe(false);
    expect(report.errors).toEqual([
      {
        file: 'test/fixtures/manifests/invalid/07-unknown-field-spec.yaml',
        line: 7,
        col: 3,
        message: 'spec.agrs: unknown field; did you mean "args"?',
      },
    ]);
  });

  it('takes --dir from the global options, before or after the verb', async () => {
    const before = await runCli(['--dir', 'test/fixtures/manifests/valid', 'validate']);
    const after = await runCli(['validate', '--dir', 'test/fixtures/manifests/valid']);
    expect(before.code).toBe(0);
    expect(after.code).toBe(0);
    expect(after.stderr).toContain('5 valid resource(s) in 3 file(s)');
  });

  it('uses $APIARY_DIR when --dir is absent', async () => {
    const r = await runCli(['validate'], { env: { APIARY_DIR: 'test/fixtures/manifests/invalid/13-port-zero.yaml' } });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('13-port-zero.yaml:7:9: spec.port: must be an integer from 1 to 65535; got 0');
  });

  it('a missing path is a clear error, exit 1', async () => {
    const r = await runCli(['validate', 'no/such/dir']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: no/such/dir: no such file or directory\n');
    // get and describe say so too, rather than only that nothing was found.
    const state = { APIARY_STATE_DIR: await tempDir() };
    const get = await runCli(['get', '--dir', '/no/such/dir'], { env: state });
    expect(get.stderr).toContain('warning: manifest directory /no/such/dir does not exist\n');
    const described = await runCli(['describe', 'mcp', 'a', '--dir', '/no/such/dir'], { env: state });
    expect(described.code).toBe(1);
    expect(described.stderr).toBe('error: mcpserver/a not found (manifest directory /no/such/dir does not exist)\n');
  });

  it('usage errors exit 2', async () => {
    expect((await runCli(['no-such-verb'])).code).toBe(2);
    expect((await runCli(['validate', '-o', 'xml'])).code).toBe(2);
  });

  it('--help works on every verb and exits 0', async () => {
    const root = await runCli(['--help']);
    expect(root.code).toBe(0);
    const verbs = [...root.stdout.matchAll(/^ {2}([a-z]+)\b/gm)].map((m) => m[1]!).filter((v) => v !== 'help');
    expect(verbs.length).toBeGreaterThan(1);
    for (const verb of verbs) {
      const r = await runCli([verb, '--help']);
      expect(r.code, verb).toBe(0);
      expect(r.stdout, verb).toContain(`Usage: apiary ${verb}`);
    }
    // Twenty-odd CLI starts one after another: 16 s to 30 s on two busy cores, so the bound is the count's, not a default.
  }, 120_000);

  it('schema prints JSON Schema', async () => {
    const r = await runCli(['schema']);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { $id: string }).$id).toContain('apiary');
  });

  it('explain documents a field as kubectl explain does; a wrong field exits 1 with a suggestion', async () => {
    const r = await runCli(['explain', 'mcp.spec.healthCheck']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^KIND: {5}MCPServer\nVERSION: {2}apiary\.dev\/v1alpha1\n\nFIELD: {4}healthCheck <Object>\n\nDESCRIPTION:\n {2}Liveness by MCP ping\n\nFIELDS:\n {2}intervalSeconds {3}<integer>\n {4}How often/);
    const wrong = await runCli(['explain', 'mcp.spec.helthCheck']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toBe('error: field "helthCheck" does not exist in mcp.spec; did you mean "healthCheck"?\n');
  });
});

describe('a verb loads only what it uses', () => {
  const silent = { out: () => undefined, err: () => undefined, status: () => undefined, isTTY: false } as unknown as Parameters<typeof buildProgram>[0];

  it('the verb is found after global options, and only its module is registered', async () => {
    expect(verbOf(['--dir', 'x', '--state-dir', 'y', 'get', 'mcp'])).toBe('get');
    expect(verbOf(['--version'])).toBeUndefined();
    const names = async (argv: string[]): Promise<string[]> => (await buildProgram(silent, {}, argv)).program.commands.map((c) => c.name()).sort();
    expect(await names(['get', 'mcp'])).toEqual(['get']);
    expect(await names(['--dir', 'm', 'diff', '-f', 'x'])).toEqual(['apply', 'delete', 'diff']);
    expect(await names(['--version'])).toEqual([]);
    // Help, completion and anything unknown see every verb.
    expect((await names(['--help'])).length).toBeGreaterThan(15);
    expect(await names(['completion', 'bash'])).toContain('up');
    expect(await names(['pods'])).toContain('get');
  });
});

/** Resolves once `check` holds; fails saying what it waited for. */
async function until(what: string, check: () => boolean): Promise<void> {
  await waitFor(what, check, 10_000, { intervalMs: 25 });
}

describe('what servers and manifest authors write reaches a terminal escaped (CVE-2021-25743)', () => {
  const ESC = '\u001b';
  /** Anything that would act on a terminal rather than be read. */
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  const ACTIVE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

  async function workspaceWithHostileText(): Promise<{ env: NodeJS.ProcessEnv; stateDir: string }> {
    const root = await tempDir();
    const dir = join(root, 'manifests');
    const stateDir = join(root, 'state');
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'a.yaml'),
      'apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: a\nspec:\n  command: node\n  args: ["\\e]0;pwned\\a", "\\e[2J"]\n  env:\n    - name: GREETING\n      value: "hi\\e[31m\\u202Eevil\\u009B"\n',
    );
    const now = new Date().toISOString();
    await new StatusStore(new StateLayout(stateDir)).write({
      kind: 'MCPServer',
      metadata: { name: 'a', generation: 1, creationTimestamp: now },
      specHash: 'x',
      status: {
        observedGeneration: 1,
        phase: 'Running',
        restartCount: 0,
        message: `bad${ESC}]52;c;ZWNobyBwd25lZA==\u0007`,
        conditions: [{ type: 'Ready', status: 'False', reason: 'Handshake', message: `server said ${ESC}[2Jhello`, lastTransitionTime: now, observedGeneration: 1 }],
      },
      events: [{ type: 'Warning', reason: 'Exited', message: `exit${ESC}[8mhidden`, count: 1, firstTimestamp: now, lastTimestamp: now }],
      writtenBy: { pid: 1, runId: 'x' },
      writtenAt: now,
    });
    return { env: { APIARY_DIR: dir, APIARY_STATE_DIR: stateDir }, stateDir };
  }

  it('describe and get show control characters in a visible form; -o json keeps its own encoding', async () => {
    const { env } = await workspaceWithHostileText();
    const described = await runCli(['describe', 'mcp', 'a'], { env });
    expect(described.code, described.stderr).toBe(0);
    expect(described.stdout).not.toMatch(ACTIVE);
    expect(described.stdout).toContain('node ^[]0;pwned^G ^[[2J');
    expect(described.stdout).toContain('GREETING                 = hi^[[31m\\u202eevil\\u009b');
    expect(described.stdout).toContain('bad^[]52;c;ZWNobyBwd25lZA==^G');
    expect(described.stdout).toContain('server said ^[[2Jhello');
    expect(described.stdout).toContain('exit^[[8mhidden');

    const wide = await runCli(['get', 'mcp', '-o', 'wide'], { env });
    expect(wide.stdout).not.toMatch(ACTIVE);
    expect(wide.stdout).toContain('bad^[]52;c;ZWNobyBwd25lZA==^G');
    const json = JSON.parse((await runCli(['get', 'mcp', 'a', '-o', 'json'], { env })).stdout) as { status: { message: string } };
    expect(json.status.message).toBe(`bad${ESC}]52;c;ZWNobyBwd25lZA==\u0007`);
  });

  it('logs keeps lines and tabs and escapes the rest; an error naming what was typed is escaped too', async () => {
    const { env, stateDir } = await workspaceWithHostileText();
    const layout = new StateLayout(stateDir);
    await mkdir(layout.logDir, { recursive: true });
    await writeFile(layout.logFile('a'), `plain\tcolumn\n${ESC}[2Jcleared\r\n\u009bcsi \u202eabc\n`);
    const logs = await runCli(['logs', 'a'], { env });
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toBe('plain\tcolumn\n^[[2Jcleared\\r\n\\u009bcsi \\u202eabc\n');
    // What arrives while following is escaped the same way.
    const follower = spawn(BIN, ['logs', 'a', '-f'], { env: { ...process.env, ...env } });
    let followed = '';
    follower.stdout.on('data', (d: Buffer) => (followed += d.toString()));
    const exited = new Promise((resolve) => follower.on('exit', resolve));
    try {
      await until('abc followed', () => followed.includes('abc\n'));
      await appendFile(layout.logFile('a'), `${ESC}]0;title\u0007more\tcolumns\n`);
      await until('more followed', () => followed.includes('more'));
      expect(followed).toBe('plain\tcolumn\n^[[2Jcleared\\r\n\\u009bcsi \\u202eabc\n^[]0;title^Gmore\tcolumns\n');
    } finally {
      follower.kill('SIGINT');
      await exited;
    }
    const missing = await runCli(['get', 'mcp', `x${ESC}[2J`], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).not.toMatch(ACTIVE);
    expect(missing.stderr).toContain('error: mcpserver/x^[[2J not found');
  });

  it("up's log on a terminal escapes the fields it prints", () => {
    const lines: string[] = [];
    const io = { out: () => undefined, err: (text: string) => lines.push(text), color: false, isTTY: true, status: () => undefined };
    logSink(io, true)({ time: new Date().toISOString(), level: 'warn', msg: `server exited${ESC}[2J`, error: `boom${ESC}]0;t\u0007`, name: `x${ESC}[8m` });
    expect(lines.join('\n')).not.toMatch(ACTIVE);
    expect(lines[0]).toContain('server exited^[[2J');
    expect(lines[0]).toContain('name=x^[[8m');
  });
});
