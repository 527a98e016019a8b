// Builds the web console (ui/) into dist/console: one ES module, one stylesheet,
// the page and its icon. Preact is bundled in, so the console adds no runtime
// dependency; nothing is fetched from a CDN.
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const out = 'dist/console';
await mkdir(out, { recursive: true });
await build({
  entryPoints: ['ui/main.tsx'],
  outfile: `${out}/app.js`,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome111', 'firefox115', 'safari16.4'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
await build({ entryPoints: ['ui/app.css'], outfile: `${out}/app.css`, bundle: true, minify: true, logLevel: 'warning' });
await copyFile('ui/index.html', `${out}/index.html`);
await copyFile('ui/favicon.svg', `${out}/favicon.svg`);
const sizes = await Promise.all(['app.js', 'app.css', 'index.html'].map(async (f) => gzipSync(await readFile(`${out}/${f}`)).length));
await writeFile(`${out}/size.json`, `${JSON.stringify({ gzipBytes: sizes.reduce((a, b) => a + b, 0) })}\n`);
