/** A field path as messages write it: spec.env[0].name. Apart from locate.ts, so what formats zod's issues does not load the YAML parser. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? String(segment) : `.${String(segment)}`;
  }
  return out;
}
