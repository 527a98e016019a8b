import { describe, expect, it } from 'vitest';
import { nextGeneration, specHash } from '../src/api/generation.js';
import type { GitRepositoryManifest, MCPServerManifest, SecretManifest } from '../src/api/manifests.js';

const meta = { name: 'one', labels: { team: 'tools' } };
const server: MCPServerManifest = { apiVersion: 'apiary.dev/v1alpha1', kind: 'MCPServer', metadata: meta, spec: { command: 'node', args: ['server.js'] } };
const sealed: SecretManifest = { apiVersion: 'apiary.dev/v1alpha1', kind: 'Secret', metadata: meta, encryptedData: { TOKEN: 'apiary:v2:abc' } };
const plain: SecretManifest = { apiVersion: 'v1', kind: 'Secret', metadata: meta, stringData: { A: 'b' } };
const source: GitRepositoryManifest = { apiVersion: 'apiary.dev/v1alpha1', kind: 'GitRepository', metadata: meta, spec: { url: 'https://example.com/r.git', interval: '1m' } };

describe('what metadata.generation counts', () => {
  // The hashes are kept in the state directory's records: a different value for the
  // same manifest would bump every resource's generation on upgrade.
  it.each([
    ['an MCPServer (its spec)', server, 'a1c395b1d8627481'],
    ['a sealed Secret (its values)', sealed, '46e36759331caee1'],
    ['a Kubernetes Secret (its values)', plain, 'bd736bbcaa37dcf8'],
    ['a GitRepository (its spec)', source, '73251d117c4da1da'],
  ])('hashes %s as the records written before kept it', (_what, manifest, expected) => {
    expect(specHash(manifest)).toBe(expected);
  });

  it('ignores labels and annotations', () => {
    const relabelled = { ...server, metadata: { name: 'one', labels: { team: 'web' }, annotations: { note: 'x' } } };
    expect(specHash(relabelled)).toBe(specHash(server));
  });

  it('starts at 1 and counts one more for each changed hash, none for the same', () => {
    expect(nextGeneration(undefined, 'a')).toBe(1);
    expect(nextGeneration({ generation: 3, specHash: 'a' }, 'a')).toBe(3);
    expect(nextGeneration({ generation: 3, specHash: 'a' }, 'b')).toBe(4);
  });
});
