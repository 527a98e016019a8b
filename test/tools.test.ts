/**
 * The suite's rule for tools from outside npm: skipped with the reason and
 * the install line on a machine without them, a failure under CI.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { inCi, onPath, requireTool } from './helpers/tools.js';

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

describe('requireTool', () => {
  it('a missing tool outside CI is a skip that says what is needed and how to install it', () => {
    vi.stubEnv('CI', '');
    const printed: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => printed.push(String(chunk)) > 0);
    const check = requireTool('no-such-tool-apiary', 'apt install no-such-tool-apiary');
    expect(check).toEqual({ available: false, reason: 'needs no-such-tool-apiary: apt install no-such-tool-apiary' });
    expect(printed).toEqual(['skipped: needs no-such-tool-apiary: apt install no-such-tool-apiary\n']);
  });

  it('a missing tool under CI fails loudly, naming it and the install line', () => {
    vi.stubEnv('CI', 'true');
    expect(() => requireTool('no-such-tool-apiary', 'apt install no-such-tool-apiary')).toThrow(
      'needs no-such-tool-apiary: apt install no-such-tool-apiary (CI must provide it: these tests cannot be skipped there)',
    );
  });

  it('a tool that is here is available, in CI or not; a probe decides when a file is not enough', () => {
    vi.stubEnv('CI', 'true');
    expect(requireTool('node', 'https://nodejs.org').available).toBe(true);
    expect(requireTool(process.execPath, 'https://nodejs.org').available).toBe(true);
    vi.stubEnv('CI', '');
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(requireTool('node', 'x', () => false).available).toBe(false);
  });

  it('reads CI as CI services set it', () => {
    for (const [value, ci] of [['true', true], ['1', true], ['', false], ['false', false], ['0', false]] as const) {
      vi.stubEnv('CI', value);
      expect(inCi(), value).toBe(ci);
    }
    expect(onPath('sh')).toBe(true);
    expect(onPath('/nonexistent/apiary/tool')).toBe(false);
  });
});
