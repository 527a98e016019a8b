/**
 * What a newcomer tripped on in the console (issue 25), where the logic is
 * the server's or a pure function of the page's: the forms' patterns beside
 * the server's own checks.
 */
import { describe, expect, it } from 'vitest';
import { DNS1123_LABEL, SECRET_KEY } from '../src/api/names.js';
import { ENV_NAME } from '../src/manifests/install.js';
import { KEY_PATTERN, NAME_PATTERN, VARIABLE_PATTERN } from '../ui/patterns.js';
import { restartEffect } from '../ui/restart.js';
import type { ApiObject } from '../ui/types.js';

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

function server(spec: Record<string, unknown>, phase: string, stalled?: string): ApiObject {
  const conditions = stalled ? [{ type: 'Stalled', status: 'True' as const, reason: 'SecretNotFound', message: stalled, lastTransitionTime: '2026-01-01T00:00:00Z' }] : [];
  return { apiVersion: 'apiary.dev/v1alpha1', kind: 'MCPServer', metadata: { name: 's' }, spec: { command: 'node', ...spec }, status: { phase, conditions } } as ApiObject;
}

describe('what the restart dialog says', () => {
  it.each([
    ['a running stdio server rolls: no call is lost', server({}, 'Running'), true, /new process starts beside the running one.*none is lost/],
    ['strategy Recreate: calls fail while it restarts', server({ strategy: { type: 'Recreate' } }, 'Running'), true, /^Recreate \(strategy Recreate\).*calls fail until it is back/],
    ['an HTTP server is recreated', server({ transport: 'streamable-http' }, 'Running'), true, /^Recreate \(an HTTP server is recreated\)/],
    ['RollingUpdate asked of an HTTP server is a recreate', server({ transport: 'sse', strategy: { type: 'RollingUpdate' } }, 'Running'), true, /rolling update is for stdio servers only/],
    ['Stuck: nothing runs until the secret is back', server({}, 'Stuck', 'secret "gh" not found'), false, /^Nothing is running: it is Stuck \(secret "gh" not found\)\. A restart does nothing until gh\/token is back; then it starts by itself\.$/],
    ['running with a secret gone: kept running', server({}, 'Running'), false, /apiary keeps it running/],
    ['suspended: nothing to restart', server({ suspend: true }, 'Suspended'), false, /suspended: nothing runs.*Resume starts it/],
    ['a crash loop: started now', server({}, 'CrashLoopBackOff'), true, /starts it now, without waiting for a back-off/],
    ['hosted: no process here', server({ remote: { url: 'https://example.com/mcp' } }, 'Running'), false, /hosted server runs no process here/],
  ])('%s', (_what, s, acts, text) => {
    const missing = /Stuck|gone/.test(_what) ? ['gh/token'] : [];
    const effect = restartEffect(s, missing);
    expect(effect.text).toMatch(text);
    expect(effect.acts).toBe(acts);
  });
});
