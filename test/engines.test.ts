/**
 * `npm install` of the checkout prints no engine warnings on the Node.js
 * running the tests (CI runs them under 20, 22 and 24): every package the
 * lock file installs, dev tools included, declares an engines range that
 * admits it. npm itself is the judge, reading the real package.json and lock
 * file in a copy, without installing anything (--dry-run).
 */
import { execFile } from 'node:child_process';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const run = promisify(execFile);

it(`npm ci on Node ${process.version} warns of no package's engines`, async () => {
  const copy = await tempDir('apiary-engines-');
  for (const file of ['package.json', 'package-lock.json']) await copyFile(join(ROOT, file), join(copy, file));
  const npm = await run('npm', ['ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel', 'warn'], { cwd: copy, maxBuffer: 16 * 1024 * 1024 });
  const output = `${npm.stdout}\n${npm.stderr}`;
  const unsupported = [...output.matchAll(/package: '([^']+)',\s*\n.*required: (\{[^}]*\})/g)].map((m) => `${m[1]} requires ${m[2]}`);
  expect(unsupported).toEqual([]);
  expect(output).not.toContain('EBADENGINE');
}, 120_000);
