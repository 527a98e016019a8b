/**
 * Rate limits as manifests carry them: an MCPServer's own spec.rateLimits
 * (parsed, explained, described, never a restart), the directory's limiter
 * built from the Gateway's and the servers', and what validate says.
 */
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import type { Io } from '../src/cli/io.js';
import { formatManifestError } from '../src/manifests/errors.js';
import { serverConsequence } from '../src/manifests/diff.js';
import { explain } from '../src/manifests/explain.js';
import { loadDirectory } from '../src/manifests/loader.js';
import { parseManifestText } from '../src/manifests/parse.js';
import { rateLimiterFor, rateLimitsOf } from '../src/manifests/rate-limits.js';
import { tempDir } from './helpers/tmp.js';

const DIR = 'test/fixtures/manifests/rate-limits';

async function apiary(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: Io = { out: (t) => (stdout += `${t}\n`), err: (t) => (stderr += `${t}\n`), color: false, isTTY: false, status: () => undefined };
  const code = await main(['--dir', DIR, '--state-dir', await tempDir(), ...args], io, { ...process.env, NO_COLOR: '1' });
  return { code, stdout: stdout.trimEnd(), stderr: stderr.trimEnd() };
}

const SERVER = (rateLimits: string): string => `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: s\nspec:\n  command: node\n  rateLimits:\n${rateLimits}`;

describe("an MCPServer's spec.rateLimits", () => {
  it('parses the Gateway\'s shape, but a tool rule names no server (it is this one)', () => {
    const ok = parseManifestText(SERVER('    perServer: { requests: 5, perSeconds: 1 }\n    perTool:\n      - { tool: "x_*", requests: 1, perSeconds: 2 }\n'), '/d/s.yaml', 's.yaml');
    expect(ok[0]?.errors).toEqual([]);
    expect(ok[0]?.resource?.kind === 'MCPServer' && ok[0].resource.manifest.spec.rateLimits).toEqual({ perServer: { requests: 5, perSeconds: 1 }, perTool: [{ tool: 'x_*', requests: 1, perSeconds: 2 }] });
    const bad = parseManifestText(SERVER('    perTool:\n      - { server: other, tool: x, requests: 0, perSeconds: 1 }\n'), '/d/s.yaml', 's.yaml');
    expect(bad[0]?.errors.map(formatManifestError)).toEqual(['s.yaml:9:45: spec.rateLimits.perTool[0].requests: must be at least 1; got 0', 's.yaml:9:11: spec.rateLimits.perTool[0].server: unknown field']);
  });

  it('is explained field by field', () => {
    const e = explain('mcpserver.spec.rateLimits');
    expect(e.description).toContain("in place of the Gateway's perServer and perTool");
    expect(e.fields.map((f) => `${f.name} ${f.type}`)).toEqual(['perSubject Object', 'perServer Object', 'perTool []Object']);
    expect(explain('mcpserver.spec.rateLimits.perTool').fields.map((f) => `${f.name}${f.required ? ' (required)' : ''}`)).toEqual(['requests (required)', 'perSeconds (required)', 'tool (required)']);
  });

  it('changes restart nothing: the endpoint reads it, not the process', () => {
    expect(serverConsequence({ command: 'node' }, { command: 'node', rateLimits: { perServer: { requests: 1, perSeconds: 1 } } }, false)).toBe('no restart (rateLimits changed)');
  });

  it('describe shows the limits the server sets and what it leaves to the Gateway', async () => {
    const r = await apiary(['describe', 'mcpserver', 'search']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("  Rate limits:      subject 2/10s per caller here, 1 tool limit(s); perServer as the Gateway's\n    deep_*: 1/7200s");
    expect((await apiary(['describe', 'mcpserver', 'github'])).stdout).not.toContain('Rate limits');
  });
});

describe("the directory's limiter", () => {
  it("takes the Gateway's limits and each server's own in their place", async () => {
    const loaded = await loadDirectory(DIR, 'rate-limits');
    expect([...rateLimitsOf(loaded.resources).perServer.keys()]).toEqual(['search']);
    let t = 0;
    const limiter = rateLimiterFor(loaded.resources, () => t)!;
    // github: the Gateway's create_* rule (5 a minute); search: its own deep_* rule (1 per 2 h) and 2 calls per caller per 10 s.
    expect(Array.from({ length: 6 }, () => limiter.take('alice', 'github', 'create_issue')?.limit ?? 'ok')).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'tool']);
    expect(limiter.take('alice', 'search', 'deep_scan')).toBeUndefined();
    expect(limiter.take('bob', 'search', 'deep_scan')).toEqual({ limit: 'tool', retryAfterMs: 7_200_000 });
    expect(limiter.take('bob', 'search', 'quick')).toBeUndefined();
    expect(limiter.take('bob', 'search', 'quick')).toBeUndefined();
    expect(limiter.take('bob', 'search', 'quick')).toEqual({ limit: 'subject', retryAfterMs: 5_000 });
    t = 5_000;
    expect(limiter.take('bob', 'search', 'quick')).toBeUndefined();
  });

  it('is undefined for a directory that sets no limit', async () => {
    expect(rateLimiterFor((await loadDirectory('test/fixtures/manifests/valid', 'valid')).resources, () => 0)).toBeUndefined();
  });
});

describe('validate', () => {
  it('warns of a tool rule for servers the directory lacks, and of a limit under one call an hour, where each is written', async () => {
    const loaded = await loadDirectory(DIR, 'rate-limits');
    expect(loaded.errors).toEqual([]);
    expect(loaded.warnings.map(formatManifestError)).toEqual([
      'rate-limits/servers.yaml:14:21: spec.rateLimits.perTool[0]: 1 call(s) per 7200 s is less than one an hour: a caller over it waits 2 hours for the next (perSeconds is in seconds)',
      'rate-limits/gateway.yaml:15:9: spec.rateLimits.perTool[1].server: "jira" matches no MCPServer in the directory, so this limit applies to nothing',
    ]);
    const r = await apiary(['validate']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('"jira" matches no MCPServer in the directory');
  });

  it('a slow Gateway limit is said too; one call an hour is not', () => {
    const gateway = (limits: string): string[] =>
      parseManifestText(`apiVersion: apiary.dev/v1alpha1\nkind: Gateway\nmetadata:\n  name: default\nspec:\n  rateLimits:\n${limits}`, '/d/g.yaml', 'g.yaml')[0]!.warnings.map(formatManifestError);
    expect(gateway('    perSubject: { requests: 2, perSeconds: 864000 }\n')).toEqual(['g.yaml:7:44: spec.rateLimits.perSubject: 2 call(s) per 864000 s is less than one an hour: a caller over it waits 5 days for the next (perSeconds is in seconds)']);
    expect(gateway('    perServer: { requests: 1, perSeconds: 3600 }\n')).toEqual([]);
  });
});
