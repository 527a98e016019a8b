import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { expandArgs, expandEnvironment } from '../src/api/expansion.js';
import { formatManifestError } from '../src/manifests/errors.js';
import { parseManifestText } from '../src/manifests/parse.js';
import { renderServer } from '../src/kubernetes/render.js';
import type { MCPServerResource } from '../src/manifests/resource.js';
import { harness, secretYaml, tinyServer } from './helpers/controller.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

class Sealed {
  constructor(readonly value: string) {}
}

describe('$(VAR) in args, with Kubernetes semantics', () => {
  it('expands from the environment, $$ escapes, an unknown name stays as written', () => {
    const env = new Map(expandEnvironment<Sealed>([['TOKEN', new Sealed('s3cret')], ['MODE', 'fast']], (s) => s.value).map(([k, v]) => [k, typeof v === 'string' ? v : v.value]));
    expect(expandArgs(['--token=$(TOKEN)', '$(MODE)', '$$(TOKEN)', '$$$(MODE)', '$(NOPE)', 'costs $5 (USD)', '$(TOKEN', '$$'], env)).toEqual([
      '--token=s3cret',
      'fast',
      '$(TOKEN)',
      '$fast',
      '$(NOPE)',
      'costs $5 (USD)',
      '$(TOKEN',
      '$',
    ]);
  });

  it('a literal of env refers only to the variables before it, as the kubelet builds them; a secret is never expanded itself', () => {
    const vars = expandEnvironment<Sealed>(
      [
        ['FROM_SECRET', new Sealed('$(A)')],
        ['A', 'a'],
        ['B', '$(A)-$(C)'],
        ['C', 'c'],
        ['A', 'again $(A)'],
      ],
      (s) => s.value,
    );
    expect(vars.map(([k, v]) => [k, typeof v === 'string' ? v : `sealed:${v.value}`])).toEqual([
      ['FROM_SECRET', 'sealed:$(A)'],
      ['A', 'a'],
      ['B', 'a-$(C)'],
      ['C', 'c'],
      ['A', 'again a'],
    ]);
  });

  it('validate warns where a secret goes into the command line, or a name spec.env lacks, and only there', () => {
    const text = [
      'apiVersion: apiary.dev/v1alpha1',
      'kind: MCPServer',
      'metadata: { name: a }',
      'spec:',
      '  command: node',
      '  args:',
      '    - server.js',
      '    - --token=$(GITHUB_TOKEN)',
      '    - $$(ESCAPED)',
      '    - --mode=$(MODE)',
      '    - --auth=$(AUTH)',
      '    - $(TYPO)',
      '  env:',
      '    - { name: MODE, value: fast }',
      '    - name: GITHUB_TOKEN',
      '      valueFrom: { secretKeyRef: { name: github, key: token } }',
      '    - { name: AUTH, value: "Bearer $(GITHUB_TOKEN)" }',
      '',
    ].join('\n');
    const [doc] = parseManifestText(text, 'a.yaml', 'a.yaml');
    expect(doc!.errors).toEqual([]);
    expect(doc!.warnings.map(formatManifestError)).toEqual([
      'a.yaml:8:7: spec.args[1]: "$(GITHUB_TOKEN)" puts a secret (spec.env GITHUB_TOKEN) into the command line, where every local user can read it in the process list; where the server can read GITHUB_TOKEN from its environment, drop the argument',
      'a.yaml:11:7: spec.args[4]: "$(AUTH)" puts a secret (spec.env AUTH) into the command line, where every local user can read it in the process list; where the server can read AUTH from its environment, drop the argument',
      'a.yaml:12:7: spec.args[5]: "$(TYPO)" is passed as written: spec.env declares no TYPO (write $$(TYPO) for a literal "$(TYPO)")',
    ]);
  });

  it('render passes args as written, for the kubelet to expand from the same env', () => {
    const text = 'apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata: { name: a }\nspec:\n  image: node:20-slim\n  command: node\n  args: ["--token=$(TOKEN)", "$$(TOKEN)"]\n  env:\n    - name: TOKEN\n      valueFrom: { secretKeyRef: { name: t, key: token } }\n';
    const [doc] = parseManifestText(text, 'a.yaml', 'a.yaml');
    const rendered = renderServer(doc!.resource as MCPServerResource);
    if (!('objects' in rendered)) throw new Error(rendered.problem);
    const container = (rendered.objects[0]!['spec'] as { template: { spec: { containers: { args: string[]; env: unknown[] }[] } } }).template.spec.containers[0]!;
    expect(container.args).toEqual(['--token=$(TOKEN)', '$$(TOKEN)']);
    // HOME first: the restricted pod's writable home (an emptyDir), which spec.env may still set otherwise.
    expect(container.env).toEqual([
      { name: 'HOME', value: '/home/apiary' },
      { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 't', key: 'token' } } },
    ]);
  });

  it('a local server gets the secret and the literal in its args, expanded; the fingerprint and status hold neither', async () => {
    const h = await harness();
    await h.write('secret.yaml', secretYaml('github', { token: 'canary-arg-4242' }));
    const env = '    - name: GITHUB_TOKEN\n      valueFrom:\n        secretKeyRef: { name: github, key: token }\n    - name: REPORT_ARGS\n      value: hash\n    - name: GREETING\n      value: hello-$(GITHUB_TOKEN)\n';
    await h.write('a.yaml', tinyServer('a', h, { args: ['--token=$(GITHUB_TOKEN)', '$$(GITHUB_TOKEN)', '$(GREETING)', '$(NOPE)'], env, hash: ['GREETING'] }));
    await h.start();
    const pid = await h.waitFor('running', async () => (await h.status('a'))?.pid);
    const report = await h.report('a', pid);
    expect(report.args).toEqual([sha('--token=canary-arg-4242'), sha('$(GITHUB_TOKEN)'), sha('hello-canary-arg-4242'), sha('$(NOPE)')]);
    expect(report.hashes['GREETING']).toBe(sha('hello-canary-arg-4242'));
    expect(JSON.stringify(await h.server('a'))).not.toContain('canary-arg-4242');
  });
});
