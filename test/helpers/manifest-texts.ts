/**
 * Every manifest text the project ships or tests with (manifests/, examples/,
 * catalog/, test/fixtures/) and the README's yaml blocks: the corpus the
 * start-up snapshot's stand-ins (its schemas, its YAML reader) are held to.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from './cli.js';

async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && /\.ya?ml$/.test(entry.name)) out.push(join(entry.parentPath, entry.name));
  }
  return out.sort();
}

export async function manifestTexts(): Promise<{ where: string; text: string }[]> {
  const texts: { where: string; text: string }[] = [];
  for (const dir of ['manifests', 'examples', 'catalog', 'test/fixtures']) {
    for (const file of await yamlFiles(join(ROOT, dir))) texts.push({ where: file.slice(ROOT.length + 1), text: await readFile(file, 'utf8') });
  }
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  for (const [i, block] of [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].entries()) texts.push({ where: `README.md yaml block ${i + 1}`, text: block[1]! });
  return texts;
}
