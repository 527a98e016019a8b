/**
 * Where the output shim (output-shim.ts, built to dist/src/runtime/output-shim.js)
 * is, and the command line that runs a server through it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ApiaryError } from '../errors.js';
import { apiaryPackageDir } from '../util/package-dir.js';

const SHIM = join('dist', 'src', 'runtime', 'output-shim.js');

/**
 * The built shim of this apiary: found from the running script (bin/apiary's
 * bundle, or the built tree) or, for a test runner inside the checkout, the
 * working directory, as the console finds its page (findAssetsDir).
 */
export function outputShimPath(): string | undefined {
  for (const start of [process.argv[1], join(process.cwd(), 'package.json')]) {
    const dir = apiaryPackageDir(start);
    if (dir !== undefined && existsSync(join(dir, SHIM))) return join(dir, SHIM);
  }
  return undefined;
}

/** `command args` run through the shim by the node apiary runs on, told which variables carry which secret (names only). */
export function throughShim(run: { command: string; args: readonly string[] }, secretEnv: Readonly<Record<string, { secret: string; key: string }>>, shim = outputShimPath()): { command: string; args: string[] } {
  // Never started bare: its output would reach the log with the values in it.
  if (shim === undefined) throw new ApiaryError('StartFailed', `apiary's output shim is not built (${SHIM} is missing), and the server's secrets would reach its log unredacted`, { hints: ['Build apiary: npm run build'] });
  return { command: process.execPath, args: [shim, JSON.stringify(secretEnv), run.command, ...run.args] };
}
