/** The copy of a stdio server's stderr to its log (src/runtime/stderr-pipe.ts), on a real pipe and file. */
import { openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MAX_STDERR_LINE_CHARS, pipeStderr } from '../src/runtime/stderr-pipe.js';
import { tempDir } from './helpers/tmp.js';

async function copied(chunks: (string | Buffer)[], filter: (line: string) => string = (l) => l): Promise<string> {
  const file = join(await tempDir(), 'x.log');
  const stream = new PassThrough();
  const done = pipeStderr(stream, openSync(file, 'a', 0o600), () => filter);
  for (const chunk of chunks) stream.write(chunk);
  stream.end();
  await done;
  return readFile(file, 'utf8');
}

describe('a stderr copy', () => {
  it('filters whole lines however the chunks cut them, keeps the last line without its newline, and a character cut between chunks', async () => {
    const euro = Buffer.from('€');
    const text = await copied(['one se', 'cret\ntwo\nthr', euro.subarray(0, 1), Buffer.concat([euro.subarray(1), Buffer.from('ee secret')])], (l) => l.replaceAll('secret', '[x]'));
    expect(text).toBe('one [x]\ntwo\nthr€ee [x]');
  });

  it('writes a line longer than the cap in pieces rather than holding it', async () => {
    const text = await copied(['a'.repeat(MAX_STDERR_LINE_CHARS + 10)]);
    expect(text).toBe(`${'a'.repeat(MAX_STDERR_LINE_CHARS)}\n${'a'.repeat(10)}`);
  });
});
