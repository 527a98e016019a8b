/**
 * Secret values must never reach files apiary writes, its output or its
 * errors, except `secret get`'s own stdout. This runs the verbs that handle
 * values and greps everything they left behind.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, type RunResult } from './helpers/cli.js';
import { workspace, filesUnder } from './helpers/tmp.js';

const PLAINTEXTS = ['leak-canary-alpha-7f3e', 'leak-canary-beta-19ac', 'leak-canary-gamma-c0de', 'leak-canary-delta-5eed'];

describe('no plaintext outside `secret get`', () => {
  it('greps every file written and every output for the values used', async () => {
    const ws = await workspace();
    const outputs: RunResult[] = [];
    const run = async (args: string[], input?: string): Promise<RunResult> => {
      const r = await runCli(args, { env: ws.env, ...(input !== undefined ? { input } : {}) });
      outputs.push(r);
      return r;
    };
    await run(['secret', 'set', 'github', 'token'], PLAINTEXTS[0]);
    await run(['secret', 'set', 'github', 'user'], PLAINTEXTS[1]);
    await writeFile(
      join(ws.dir, 'plain.yaml'),
      `apiVersion: apiary.dev/v1alpha1\nkind: Secret\nmetadata: { name: plain }\nstringData:\n  a: ${PLAINTEXTS[2]}\n  bad key: ${PLAINTEXTS[3]}\n`,
    );
    await run(['validate']);
    await run(['validate', '-o', 'json']);
    await writeFile(
      join(ws.dir, 'plain.yaml'),
      `apiVersion: apiary.dev/v1alpha1\nkind: Secret\nmetadata: { name: plain }\nstringData:\n  a: ${PLAINTEXTS[2]}\ndata:\n  b: ${PLAINTEXTS[3]}\n`,
    );
    await run(['validate']);
    await writeFile(join(ws.dir, 'plain.yaml'), `apiVersion: apiary.dev/v1alpha1\nkind: Secret\nmetadata: { name: plain }\nstringData:\n  a: ${PLAINTEXTS[2]}\n`);
    await run(['seal', join(ws.dir, 'plain.yaml')]);
    await run(['secret', 'list']);
    await run(['secret', 'list', '-o', 'json']);
    await run(['secret', 'get', 'nope']);
    await run(['secret', 'delete', 'github', 'user']);
    await run(['key', 'status']);

    const revealed = await runCli(['secret', 'get', 'github', 'token'], { env: ws.env });
    expect(revealed.stdout).toBe(`${PLAINTEXTS[0]}\n`);

    const haystacks: [string, string][] = outputs.flatMap((r, i) => [
      [`run ${i} stdout`, r.stdout],
      [`run ${i} stderr`, r.stderr],
    ]);
    haystacks.push([`secret get stderr`, revealed.stderr]);
    for (const file of [...(await filesUnder(ws.root))]) haystacks.push([file, await readFile(file, 'latin1')]);
    expect(haystacks.length).toBeGreaterThan(20);
    for (const [where, text] of haystacks) {
      for (const secret of PLAINTEXTS) expect(text.includes(secret), `${secret} found in ${where}`).toBe(false);
    }
  });
});
