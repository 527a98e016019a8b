import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { explain } from '../src/manifests/explain.js';
import { manifestJsonSchema } from '../src/api/jsonschema.js';

describe('JSON Schema', () => {
  it('the committed copy matches the zod schemas (regenerate: ./bin/apiary schema > schemas/apiary.schema.json)', async () => {
    const committed = JSON.parse(await readFile(new URL('../schemas/apiary.schema.json', import.meta.url), 'utf8')) as unknown;
    expect(committed).toEqual(manifestJsonSchema());
  });

  it('forbids unknown fields in the spec', () => {
    const text = JSON.stringify(manifestJsonSchema());
    expect(text).toContain('"additionalProperties":false');
    expect(text).toContain('"restartPolicy"');
  });
});

describe('explain (kubectl explain over the same schema)', () => {
  it('walks into fields and through arrays, with types, required marks and descriptions', () => {
    const spec = explain('mcpserver.spec');
    expect(spec).toMatchObject({ kind: 'MCPServer', apiVersion: 'apiary.dev/v1alpha1', path: 'mcpserver.spec', type: 'Object', required: true });
    // Not required by the schema alone: a hosted server has spec.remote instead (the manifest must have one of them).
    expect(spec.fields.find((f) => f.name === 'command')).toEqual({ name: 'command', type: 'string', required: false, description: expect.stringContaining('never through a shell') });
    expect(spec.fields.find((f) => f.name === 'env')?.type).toBe('[]Object');
    expect(explain('mcp.spec.env.valueFrom.secretKeyRef').fields.map((f) => [f.name, f.required])).toEqual([
      ['name', true],
      ['key', true],
      ['optional', false],
    ]);
    expect(explain('mcpserver.spec.restartPolicy').allowed).toEqual(['Always', 'OnFailure', 'Never']);
    expect(explain('secret.encryptedData').type).toBe('map[string]string');
    expect(explain('secret', 'v1').fields.map((f) => f.name)).toContain('immutable');
  });

  it('every field a user can write is documented', () => {
    const undocumented: string[] = [];
    const visit = (path: string, apiVersion: string): void => {
      for (const f of explain(path, apiVersion).fields) {
        if (f.description === undefined) undocumented.push(`${path}.${f.name}`);
        if (f.type.endsWith('Object')) visit(`${path}.${f.name}`, apiVersion);
      }
    };
    visit('mcpserver', 'apiary.dev/v1alpha1');
    visit('secret', 'apiary.dev/v1alpha1');
    visit('secret', 'v1');
    visit('gitrepository', 'apiary.dev/v1alpha1');
    visit('gateway', 'apiary.dev/v1alpha1');
    visit('accesspolicy', 'apiary.dev/v1alpha1');
    expect(undocumented).toEqual([]);
  });

  it('explains the Gateway and AccessPolicy kinds, reached by their aliases', () => {
    expect(explain('gateway.spec.auth.mode')).toMatchObject({ kind: 'Gateway', allowed: ['token', 'oidc', 'none'] });
    expect(explain('gw.spec.auth.oidc').fields.map((f) => [f.name, f.required])).toEqual([
      ['issuer', true],
      ['audience', true],
      ['usernameClaim', false],
      ['groupsClaim', false],
      ['jwksURL', false],
      ['requiredScopes', false],
      ['scopes', false],
    ]);
    expect(explain('accesspolicy.spec.subjects').fields.map((f) => f.name)).toEqual(['user', 'group', 'authenticated', 'token']);
    expect(explain('policy.spec.rules.effect').allowed).toEqual(['Allow', 'Deny']);
    expect(explain('policies.spec.rules').fields.map((f) => f.name)).toEqual(['servers', 'tools', 'prompts', 'resources', 'effect']);
    expect(() => explain('gateway', 'v1')).toThrow('Gateway has only apiVersion apiary.dev/v1alpha1');
  });

  it('a field that does not exist is an error with a suggestion', () => {
    expect(() => explain('mcpserver.spec.agrs')).toThrow('field "agrs" does not exist in mcpserver.spec; did you mean "args"?');
    expect(() => explain('mcpserver.spec.args.x')).toThrow('mcpserver.spec.args has no fields (it is []string)');
    expect(() => explain('pod')).toThrow(expect.objectContaining({ code: 'Usage' }));
  });
});
