/**
 * Where apiary itself is installed: the folder of its package.json, found by
 * walking up from the running script. The same for a checkout, a global
 * install (<prefix>/lib/node_modules/apiary) and npx's cache; what `init` and
 * `service install` point at (the example server, the CLI's entry).
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export function apiaryPackageDir(script: string | undefined = process.argv[1]): string | undefined {
  if (script === undefined) return undefined;
  let dir = dirname(resolve(script));
  while (!namesApiary(join(dir, 'package.json'))) {
    if (dirname(dir) === dir) return undefined;
    dir = dirname(dir);
  }
  return dir;
}

/** Whether this package.json is apiary's. */
export function namesApiary(packageJson: string): boolean {
  try {
    return (JSON.parse(readFileSync(packageJson, 'utf8')) as { name?: unknown }).name === 'apiary';
  } catch {
    return false;
  }
}

/** The script `bin/apiary` runs: the launcher of the bundled CLI. */
export function cliEntry(packageDir: string): string {
  return join(packageDir, 'dist', 'src', 'cli', 'launch.cjs');
}
