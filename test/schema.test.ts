import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
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
