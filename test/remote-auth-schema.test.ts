/** spec.remote.auth: the schema, explain, and the JSON Schema editors use. */
import { describe, expect, it } from 'vitest';
import { MCPServerManifest } from '../src/api/manifests.js';
import { manifestJsonSchema } from '../src/api/jsonschema.js';
import { explain } from '../src/manifests/explain.js';

const hosted = (auth: unknown): unknown => ({ apiVersion: 'apiary.dev/v1alpha1', kind: 'MCPServer', metadata: { name: 'hosted' }, spec: { remote: { url: 'https://mcp.example.com/mcp', auth } } });

describe('spec.remote.auth', () => {
  it('takes type oauth alone, or with scopes and a pre-registered client whose secret comes from a Secret', () => {
    expect(MCPServerManifest.safeParse(hosted({ type: 'oauth' })).success).toBe(true);
    const full = MCPServerManifest.parse(hosted({ type: 'oauth', scopes: ['mcp', 'read:issues'], clientId: 'apiary-laptop', clientSecretRef: { name: 'hosted-oauth', key: 'secret' } }));
    expect(full.spec.remote?.auth).toEqual({ type: 'oauth', scopes: ['mcp', 'read:issues'], clientId: 'apiary-laptop', clientSecretRef: { name: 'hosted-oauth', key: 'secret' } });
  });

  it('has no place for a token: an unknown field is refused', () => {
    const result = MCPServerManifest.safeParse(hosted({ type: 'oauth', accessToken: 'pasted' }));
    expect(result.success).toBe(false);
  });

  it('is explained and in the JSON Schema', () => {
    const auth = explain('mcpserver.spec.remote.auth');
    expect(auth.fields.map((f) => [f.name, f.required])).toEqual([
      ['type', true],
      ['scopes', false],
      ['clientId', false],
      ['clientSecretRef', false],
    ]);
    expect(explain('mcpserver.spec.remote.auth.type').allowed).toEqual(['oauth']);
    expect(explain('mcpserver.spec.remote.auth').description).toContain('tokens never appear in manifests');
    expect(JSON.stringify(manifestJsonSchema())).toContain('"clientSecretRef"');
  });
});
