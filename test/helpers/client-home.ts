/** A temporary HOME with Zed's settings and Codex CLI's config.toml in their documented places, for the client tests. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './tmp.js';

export interface ClientHome {
  home: string;
  /** HOME and XDG_CONFIG_HOME pointing into it. */
  env: { HOME: string; XDG_CONFIG_HOME: string };
  zed: string;
  codex: string;
}

export async function clientHome(files: { zed: string; codex: string }): Promise<ClientHome> {
  const home = await tempDir('apiary-home-');
  const zed = join(home, '.config', 'zed', 'settings.json');
  const codex = join(home, '.codex', 'config.toml');
  await mkdir(join(home, '.config', 'zed'), { recursive: true });
  await mkdir(join(home, '.codex'));
  await writeFile(zed, files.zed);
  await writeFile(codex, files.codex);
  return { home, env: { HOME: home, XDG_CONFIG_HOME: join(home, '.config') }, zed, codex };
}
