import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { assemble } from '../src/manifests/loader.js';
import { parseManifestText } from '../src/manifests/parse.js';

function check(text: string): void {
  const result = assemble(parseManifestText(text, '/x/f.yaml', 'f.yaml'), []);
  for (const e of result.errors) {
    expect(e.file).toBe('f.yaml');
    expect(Number.isInteger(e.line) && e.line >= 1).toBe(true);
    expect(Number.isInteger(e.col) && e.col >= 1).toBe(true);
    expect(e.message.length).toBeGreaterThan(0);
  }
}

const yamlish = fc.stringMatching(/^[\sa-zA-Z0-9:\-[\]{}"'#&*!|>%@`,.?]*$/, { maxLength: 200 });

const field = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }));
const document = fc.record(
  {
    apiVersion: fc.constantFrom('apiary.dev/v1alpha1', 'v1', 'x/v9', 42),
    kind: fc.constantFrom('MCPServer', 'Secret', 'Pod', 7),
    metadata: fc.oneof(fc.record({ name: field }, { requiredKeys: [] }), field),
    spec: fc.oneof(
      fc.record(
        {
          command: field,
          args: fc.oneof(field, fc.array(field, { maxLength: 3 })),
          port: fc.oneof(fc.integer({ min: -10, max: 70000 }), field),
          env: fc.oneof(field, fc.array(fc.dictionary(fc.constantFrom('name', 'value', 'valueFrom', 'x'), field), { maxLength: 3 })),
          restartPolicy: field,
          agrs: field,
        },
        { requiredKeys: [] },
      ),
      field,
    ),
    stringData: fc.dictionary(fc.string(), field, { maxKeys: 3 }),
    data: fc.dictionary(fc.string(), field, { maxKeys: 3 }),
  },
  { requiredKeys: [] },
);

describe('loader on random input', () => {
  it('never throws on random text, and locates every error', () => {
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 300 }), yamlish), (text) => check(text)), { numRuns: 1500 });
  });

  it('never throws on random documents, and locates every error', () => {
    fc.assert(
      fc.property(fc.array(document, { minLength: 1, maxLength: 4 }), (docs) => {
        check(docs.map((d) => stringify(d)).join('---\n'));
      }),
      { numRuns: 1500 },
    );
  });
});
