/**
 * What a newcomer tripped on in the console (issue 25), where the logic is
 * the server's or a pure function of the page's: the forms' patterns beside
 * the server's own checks.
 */
import { describe, expect, it } from 'vitest';
import { DNS1123_LABEL, SECRET_KEY } from '../src/api/names.js';
import { ENV_NAME } from '../src/manifests/install.js';
import { KEY_PATTERN, NAME_PATTERN, VARIABLE_PATTERN } from '../ui/patterns.js';

/** As a browser reads a `pattern` attribute: the whole value, compiled with the `v` flag. */
function asBrowser(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`, 'v');
}

describe("the console's form patterns", () => {
  it('compile as a browser compiles them, and say what the server says', () => {
    const samples = ['github', 'a', 'a-b', '-a', 'a-', 'A', 'a_b', 'a.b', 'api.key-2_b', 'GITHUB_TOKEN', '_x', '1x', 'x1', 'a b', '', 'é', 'a--b'];
    for (const [pattern, server] of [[NAME_PATTERN, DNS1123_LABEL], [KEY_PATTERN, SECRET_KEY], [VARIABLE_PATTERN, ENV_NAME]] as const) {
      const browser = asBrowser(pattern);
      for (const sample of samples) expect(browser.test(sample), `${pattern} on "${sample}"`).toBe(server.test(sample));
    }
  });
});
