import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, runCli } from './helpers/cli.js';
import { harness, isAlive, secretYaml, tinyServer, type Harness } from './helpers/controller.js';
import { tempDir } from './helpers/tmp.js';

async function running(h: Harness, name: string, not?: number): Promise<number> {
  return h.waitFor(`${name} running`, async () => {
    const s = await h.status(name);
    return s?.phase === 'Running' && s.pid !== not && (await h.server(name))?.stale === false && s.pid;
  });
}

describe('edit and apply (built CLI against a running controller)', () => {
  it('apply: created, configured, unchanged; comments copied as written', async () => {
    const h = await harness();
    await h.start();
    const src = await tempDir();
    const file = join(src, 'server.yaml');
    await writeFile(file, `# my server, reviewed\n${tinyServer('a', h)}`);
    const created = await runCli(['apply', '-f', file], { env: h.env });
    expect(created.stdout).toBe('mcpserver/a created\n');
    expect(await readFile(join(h.dir, 'mcpserver-a.yaml'), 'utf8')).toBe(await readFile(file, 'utf8'));
    const pid = await running(h, 'a');

    expect((await runCli(['apply', '-f', file], { env: h.env })).stdout).toBe('mcpserver/a unchanged\n');
    await writeFile(file, `# my server, reviewed\n${tinyServer('a', h, { args: ['--v2'] })}`);
    expect((await runCli(['apply', '-f', file], { env: h.env })).stdout).toBe('mcpserver/a configured\n');
    const next = await running(h, 'a', pid);
    expect((await h.report('a', next)).args).toEqual(['--v2']);
    expect(await readdir(h.dir)).toEqual(['mcpserver-a.yaml']);

    const json = await runCli(['apply', '-f', '-', '-o', 'json'], { env: h.env, input: secretYaml('github', { token: 'x' }) });
    expect(JSON.parse(json.stdout)).toEqual([{ kind: 'Secret', name: 'github', action: 'created', file: expect.stringMatching(/secret-github\.yaml$/) }]);
    // Plain values are pointed out where they landed, with the command that seals them there.
    expect(json.stderr).toMatch(/^warning: secret\/github holds unencrypted values in (\S+secret-github\.yaml); run "apiary seal \1" to encrypt them\n$/);
  });

  it('apply of a folder with one invalid file writes nothing', async () => {
    const h = await harness();
    const src = await tempDir();
    await writeFile(join(src, 'good.yaml'), tinyServer('good', h));
    await writeFile(join(src, 'bad.yaml'), tinyServer('bad', h).replace('restartPolicy: Always', 'restartPolicy: Sometimes'));
    const r = await runCli(['apply', '-f', src], { env: h.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${join(src, 'bad.yaml')}:8:18: spec.restartPolicy: must be one of Always, OnFailure, Never; got "Sometimes"`);
    expect(r.stderr).toContain('nothing was written');
    expect(await readdir(h.dir)).toEqual([]);
  });

  it('diff: exit 0 when nothing differs, 1 with a patch and the consequence, never secret values', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h, { env: '    - name: T\n      valueFrom:\n        secretKeyRef: { name: github, key: token }\n' }));
    await h.write('s.yaml', secretYaml('github', { token: 'diff-old-value', user: 'same-user' }));
    const src = await tempDir();
    await writeFile(join(src, 'a.yaml'), await readFile(join(h.dir, 'a.yaml'), 'utf8'));
    const same = await runCli(['diff', '-f', join(src, 'a.yaml')], { env: h.env });
    expect(same.code).toBe(0);
    expect(same.stdout).toBe('mcpserver/a: unchanged\n');

    await writeFile(join(src, 'a.yaml'), tinyServer('a', h, { args: ['--x'], env: '    - name: T\n      valueFrom:\n        secretKeyRef: { name: github, key: token }\n' }));
    await writeFile(join(src, 's.yaml'), secretYaml('github', { token: 'diff-new-value', user: 'same-user' }));
    const d = await runCli(['diff', '-f', src], { env: h.env });
    expect(d.code).toBe(1);
    expect(d.stdout).toContain('--- a/mcpserver/a');
    expect(d.stdout).toMatch(/^-\s+args: \[".*tiny-server\.mjs"\]$/m);
    expect(d.stdout).toMatch(/^\+\s+args: \[".*tiny-server\.mjs", "--x"\]$/m);
    expect(d.stdout).toContain('mcpserver/a: restart (args changed)');
    expect(d.stdout).toContain('+  token: <redacted, changed>');
    expect(d.stdout).toContain('   user: <redacted>');
    expect(d.stdout).toContain('secret/github: key token changed; 1 dependant restart (mcpserver/a)');
    expect(d.stdout + d.stderr).not.toMatch(/diff-old-value|diff-new-value|same-user/);
    const bad = await runCli(['diff', '-f', join(src, 'nope.yaml')], { env: h.env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(`error: ${join(src, 'nope.yaml')}: no such file or directory\n`);
  });

  it('delete from a multi-document file keeps the rest and its comments; deleting a used secret warns', async () => {
    const h = await harness();
    const text = `# shared file\n${tinyServer('a', h)}---\n# the secret\n${secretYaml('github', { token: 'x' })}---\n# third\n${tinyServer('c', h)}`;
    await h.write('all.yaml', text);
    await h.write('b.yaml', tinyServer('b', h, { env: '    - name: T\n      valueFrom:\n        secretKeyRef: { name: github, key: token }\n' }));
    const r = await runCli(['delete', 'secret', 'github'], { env: h.env });
    expect(r.stdout).toMatch(/^secret\/github deleted from .*all\.yaml\n$/);
    expect(r.stderr).toContain('warning: secret "github" is used by mcpserver/b');
    const after = await readFile(join(h.dir, 'all.yaml'), 'utf8');
    expect(after).toBe(`# shared file\n${tinyServer('a', h)}---\n# third\n${tinyServer('c', h)}`);
    const src = await tempDir();
    await writeFile(join(src, 'c.yaml'), tinyServer('c', h));
    expect((await runCli(['delete', '-f', join(src, 'c.yaml')], { env: h.env })).code).toBe(0);
    expect(await readFile(join(h.dir, 'all.yaml'), 'utf8')).toBe(`# shared file\n${tinyServer('a', h)}`);
    expect((await runCli(['delete', 'mcp', 'nope'], { env: h.env })).code).toBe(1);
    expect((await runCli(['delete', 'mcp', 'nope', '--ignore-not-found'], { env: h.env })).code).toBe(0);
    // Several at once, as kubectl takes them; one missing name deletes nothing.
    expect((await runCli(['delete', 'mcp', 'a', 'nope'], { env: h.env })).code).toBe(1);
    expect(await readdir(h.dir)).toEqual(['all.yaml', 'b.yaml']);
    const both = await runCli(['delete', 'mcpserver/a', 'mcp/b'], { env: h.env });
    expect(both.stdout).toMatch(/^mcpserver\/a deleted from \S+all\.yaml \(file removed\)\nmcpserver\/b deleted from \S+b\.yaml \(file removed\)\n$/);
    expect(await readdir(h.dir)).toEqual([]);
  });

  it('restart replaces the pid; suspend and resume keep comments and stop and start the process', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h).replace('spec:\n', 'spec: # the spec\n'));
    await h.start();
    const pid = await running(h, 'a');
    expect((await runCli(['restart', 'a'], { env: h.env })).stdout).toBe('mcpserver/a restart requested\n');
    const next = await running(h, 'a', pid);
    // The status names the new process as soon as it serves; the old one is stopped after (with its grace).
    await h.waitFor(`the old process ${pid} gone`, async () => !isAlive(pid));
    expect((await h.status('a'))?.restartCount).toBe(0);
    expect((await h.server('a'))?.events.map((e) => e.reason)).toContain('RestartRequested');
    await h.waitFor('request cleared', async () => (await readdir(join(h.stateDir, 'requests'))).length === 0);

    const s = await runCli(['suspend', 'a'], { env: h.env });
    expect(s.stdout).toMatch(/^mcpserver\/a suspended/);
    expect(await readFile(join(h.dir, 'a.yaml'), 'utf8')).toContain('spec: # the spec\n');
    expect(await readFile(join(h.dir, 'a.yaml'), 'utf8')).toContain('suspend: true');
    await h.waitFor('suspended', async () => (await h.status('a'))?.phase === 'Suspended');
    expect(isAlive(next)).toBe(false);
    expect((await runCli(['suspend', 'a'], { env: h.env })).stdout).toBe('mcpserver/a already suspended\n');
    await runCli(['resume', 'a'], { env: h.env });
    expect(await readFile(join(h.dir, 'a.yaml'), 'utf8')).toBe(tinyServer('a', h).replace('spec:\n', 'spec: # the spec\n'));
    const resumed = await running(h, 'a', next);

    // Several names at once; a name that is not declared acts on none of them.
    await h.write('b.yaml', tinyServer('b', h));
    const b = await running(h, 'b');
    expect((await runCli(['suspend', 'a', 'nope'], { env: h.env })).code).toBe(1);
    expect(await readFile(join(h.dir, 'a.yaml'), 'utf8')).not.toContain('suspend: true');
    const restarted = await runCli(['restart', 'a', 'b', '-o', 'json'], { env: h.env });
    expect((JSON.parse(restarted.stdout) as { name: string }[]).map((r) => r.name)).toEqual(['a', 'b']);
    await running(h, 'a', resumed);
    await running(h, 'b', b);
  });

  it('wait: several targets, KIND --all, -l, --for=delete, and a timeout that says where each one is; get -l', async () => {
    const h = await harness();
    const team = (name: string, label: string): string => tinyServer(name, h).replace(`  name: ${name}\n`, `  name: ${name}\n  labels: { team: ${label} }\n`);
    await h.write('a.yaml', team('a', 'tools'));
    await h.write('b.yaml', team('b', 'web'));
    await h.write('c.yaml', tinyServer('c', h, { env: '    - name: TOK\n      valueFrom:\n        secretKeyRef: { name: gone, key: k }\n' }));
    await h.start();
    const both = await runCli(['wait', 'mcp', 'a', 'b', '--for=condition=Ready', '--timeout', '15s'], { env: h.env });
    expect(both.code, both.stderr).toBe(0);
    expect(both.stdout.split('\n').sort()).toEqual(['', 'mcpserver/a condition met: Ready=True', 'mcpserver/b condition met: Ready=True']);
    // Label selectors, as kubectl -l.
    expect((await runCli(['wait', 'mcp', '-l', 'team', '--for=condition=Ready', '--timeout', '300ms'], { env: h.env })).code).toBe(0);
    const names = async (...args: string[]): Promise<string[]> =>
      ((JSON.parse((await runCli(['get', 'mcp', '-o', 'json', ...args], { env: h.env })).stdout) as { items: { metadata: { name: string } }[] }).items).map((i) => i.metadata.name);
    expect(await names('-l', 'team=tools')).toEqual(['a']);
    expect(await names('-l', 'team!=tools')).toEqual(['b', 'c']);
    expect(await names('-l', 'team in (tools,web)')).toEqual(['a', 'b']);
    expect(await names('-l', '!team')).toEqual(['c']);
    expect((await runCli(['get', 'mcp', '-l', 'team=a b'], { env: h.env })).code).toBe(2);
    expect((await runCli(['get', 'mcp', '-l', 'team', '-o', 'name'], { env: h.env })).stdout).toBe('mcpserver/a\nmcpserver/b\n');
    expect((await runCli(['get', 'mcp', '-l', 'team=none', '-o', 'name'], { env: h.env })).stdout).toBe('');
    const described = (await runCli(['describe', 'mcp', '-l', 'team'], { env: h.env })).stdout;
    expect(described.match(/^Name: +\S+$/gm)).toEqual(['Name:             a', 'Name:             b']);
    expect((await runCli(['wait', 'mcpserver/c', '--for=phase=Stuck', '--timeout', '15s'], { env: h.env })).code).toBe(0);

    const all = await runCli(['wait', 'mcp', '--all', '--for=condition=Ready', '--timeout', '300ms'], { env: h.env });
    expect(all.code).toBe(1);
    expect(all.stdout.split('\n').sort()).toEqual(['', 'mcpserver/a condition met: Ready=True', 'mcpserver/b condition met: Ready=True']);
    expect(all.stderr).toBe('timed out after 300ms waiting for mcpserver/c condition=Ready (phase Stuck, Ready=False: secret "gone" not found (needed for env TOK))\n');

    const pid = (await h.status('b'))!.pid!;
    await rm(join(h.dir, 'b.yaml'));
    const gone = await runCli(['wait', 'mcpserver/b', '--for=delete', '--timeout', '15s'], { env: h.env });
    expect(gone.stdout).toBe('mcpserver/b deleted\n');
    expect(isAlive(pid)).toBe(false);

    for (const args of [['mcp', '--for=delete'], ['mcp/a', '--all', '--for=delete'], ['pod/a', '--for=delete'], ['mcp/a', '--for=gone']]) {
      expect((await runCli(['wait', ...args], { env: h.env })).code, args.join(' ')).toBe(2);
    }
    expect((await runCli(['wait', 'secret', '--all', '--for=delete'], { env: h.env })).stderr).toBe('error: no secrets found\n');
  });

  it('logs: tail, follow and timestamps', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    await h.start();
    const pid = await running(h, 'a');
    await h.waitFor('log', async () => (await runCli(['logs', 'a'], { env: h.env })).stdout.includes('up'));
    const stamped = await runCli(['logs', 'a', '--timestamps'], { env: h.env });
    expect(stamped.stdout).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z tiny-server a pid ${pid} up\\n$`));
    const follower = spawn(BIN, ['logs', 'a', '-f', '--tail', '1'], { env: { ...process.env, ...h.env } });
    let out = '';
    follower.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await h.waitFor('first line', async () => out.includes('up'));
    await h.write('a.yaml', tinyServer('a', h, { args: ['--v2'] }));
    const next = await running(h, 'a', pid);
    await h.waitFor('followed the new run', async () => out.includes(`pid ${next} up`));
    follower.kill('SIGINT');
  });

  it('add: binds --secret variables, reusing an existing secret and creating a sealed one from stdin', async () => {
    const h = await harness();
    await mkdir(h.dir, { recursive: true });
    await h.write('s.yaml', secretYaml('github-token', { GITHUB_TOKEN: 'existing' }));
    const r = await runCli(['add', 'gh', '--secret', 'GITHUB_TOKEN', '--secret', 'SLACK_KEY', '--env', 'LOG=debug', '--', 'node', 'server.js', '--stdio'], { env: h.env, input: 'new-slack-value\n' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('secret/slack-key created (sealed)\nmcpserver/gh created (mcpserver-gh.yaml)\n'.replace('(mcpserver-gh.yaml)', `(${join(h.dir, 'mcpserver-gh.yaml')})`));
    const manifest = await readFile(join(h.dir, 'mcpserver-gh.yaml'), 'utf8');
    expect(manifest).toContain('command: node');
    expect(manifest).toContain('secretKeyRef:\n          name: github-token\n          key: GITHUB_TOKEN');
    expect(manifest).toContain('name: slack-key');
    expect((await runCli(['secret', 'get', 'slack-key', 'SLACK_KEY'], { env: h.env })).stdout).toBe('new-slack-value\n');
    expect(await readFile(join(h.dir, 's.yaml'), 'utf8')).toBe(secretYaml('github-token', { GITHUB_TOKEN: 'existing' }));
    expect((await runCli(['validate'], { env: h.env })).code).toBe(0);
  });

  it('completion bash loads in bash and knows the verbs', async () => {
    const r = await runCli(['completion', 'bash']);
    expect(r.stdout).toContain('complete -o default -F _apiary apiary');
    const check = await new Promise<string>((resolve) => {
      const bash = spawn('bash', ['-c', `source <(${BIN} completion bash); COMP_WORDS=(apiary su); COMP_CWORD=1; _apiary; echo "\${COMPREPLY[@]}"`]);
      let out = '';
      bash.stdout.on('data', (d: Buffer) => (out += d.toString()));
      bash.on('close', () => resolve(out.trim()));
    });
    expect(check).toBe('suspend');
  });
});

describe('get --watch', () => {
  it('prints the table, then a line per change', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    await h.start();
    await running(h, 'a');
    const watcher = spawn(BIN, ['get', 'mcp', '--watch'], { env: { ...process.env, ...h.env, NO_COLOR: '1' } });
    let out = '';
    watcher.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await h.waitFor('table', async () => out.includes('NAME'));
    await runCli(['suspend', 'a'], { env: h.env });
    await h.waitFor('a suspended line', async () => /^a\s+Suspended\s+False/m.test(out));
    watcher.kill('SIGINT');
    expect(out.split('\n').filter((l) => l.startsWith('NAME'))).toHaveLength(1);
  });
});
