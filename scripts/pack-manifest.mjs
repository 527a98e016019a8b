// npm pack and npm publish: the package.json in the tarball has no `prepare`.
// In a checkout, prepare builds apiary at `npm install` (the README's set-up
// command); an installed package has nothing to build (dist/ is in the
// tarball, and npm never runs prepare there), yet npm 11 warns at every
// `npm install -g` that it holds an install script nobody allowed. So prepack,
// once it has built, sets prepare aside as _prepare, and postpack puts it
// back, as pinst does for husky. Both directions are idempotent, so a pack
// that stopped half-way is undone by the next (or by `node scripts/pack-manifest.mjs restore`).
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

const [from, to] = process.argv[2] === 'strip' ? ['prepare', '_prepare'] : process.argv[2] === 'restore' ? ['_prepare', 'prepare'] : [];
if (from === undefined) {
  process.stderr.write('usage: node scripts/pack-manifest.mjs strip|restore\n');
  process.exit(2);
}
const text = readFileSync('package.json', 'utf8');
const manifest = JSON.parse(text);
if (manifest.scripts?.[from] !== undefined) {
  // Renamed in place, so the key keeps its position and the file its shape.
  manifest.scripts = Object.fromEntries(Object.entries(manifest.scripts).map(([name, script]) => [name === from ? to : name, script]));
  writeFileSync('package.json.tmp', `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync('package.json.tmp', 'package.json');
}
