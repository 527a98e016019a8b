/**
 * apiary's folder under the user's configuration home
 * ($XDG_CONFIG_HOME/apiary, else ~/.config/apiary) and the per-user manifest
 * directory in it, which `apiary init` makes and every verb falls back to
 * when no directory is named and ./manifests does not exist.
 */
import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/** $XDG_CONFIG_HOME, else ~/.config (systemd's user units live under it too). */
export function configHome(env: NodeJS.ProcessEnv = process.env): string {
  // The XDG spec: a relative $XDG_CONFIG_HOME is invalid and must be ignored.
  const configured = env['XDG_CONFIG_HOME'];
  return configured !== undefined && isAbsolute(configured) ? configured : join(env['HOME'] || homedir(), '.config');
}

export function apiaryConfigHome(env: NodeJS.ProcessEnv = process.env): string {
  return join(configHome(env), 'apiary');
}

export function userManifestDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(apiaryConfigHome(env), 'manifests');
}

export function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() === true;
}
