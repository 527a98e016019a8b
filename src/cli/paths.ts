import { isAbsolute, relative } from 'node:path';

/** A path as short as it can be shown: relative to the cwd when inside it. */
export function displayPath(path: string, cwd: string = process.cwd()): string {
  const rel = relative(cwd, path);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}
