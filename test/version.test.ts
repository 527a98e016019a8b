import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { APIARY_CLIENT_INFO } from '../src/mcp/bridge.js';
import { APIARY_VERSION } from '../src/util/version.js';
import { filesUnder } from './helpers/tmp.js';
import { runCli } from './helpers/cli.js';

const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

describe('the version string', () => {
  it('is package.json\'s, defined once in util/version.ts', async () => {
    expect(APIARY_VERSION).toBe(pkg.version);
    const literal = new RegExp(`['"\`]${pkg.version.replace(/\./g, '\\.')}['"\`]`);
    const defining: string[] = [];
    for (const file of await filesUnder(new URL('../src', import.meta.url).pathname)) {
      if (file.endsWith('.ts') && literal.test(await readFile(file, 'utf8'))) defining.push(file.slice(file.indexOf('/src/') + 1));
    }
    expect(defining).toEqual(['src/util/version.ts']);
  });

  it('is what the bridge says to a server, and what apiary --version prints', async () => {
    expect(APIARY_CLIENT_INFO).toEqual({ name: 'apiary', version: pkg.version });
    const printed = await runCli(['--version'], {});
    expect(printed.stdout).toBe(`${pkg.version}\n`);
  });
});
