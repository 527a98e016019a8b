// `npm run layers`: the layering rules (../shared/tools/layers.json, kept beside the checkout with
// the design documents) checked against this checkout. A checkout without ../shared (a fresh clone
// on its own) skips the check and says why; with CI set, a missing rule set fails, as a missing
// tool does for the tests.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tool = join(root, '..', 'shared', 'tools', 'layers.mjs');
const rules = join(root, '..', 'shared', 'tools', 'layers.json');
if (!existsSync(tool) || !existsSync(rules)) {
  const why = `layers: skipped: ${tool} not found (the layering rules live in ../shared beside the checkout)`;
  if (process.env.CI) {
    console.error(`${why}; CI is set, so this fails`);
    process.exit(1);
  }
  console.log(why);
  process.exit(0);
}
const run = spawnSync(process.execPath, [tool, root, rules], { stdio: 'inherit' });
process.exit(run.status ?? 1);
