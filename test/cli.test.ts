import { describe, expect, it } from 'vitest';
import { buildProgram, verbOf } from '../src/cli/main.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

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
  });

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
