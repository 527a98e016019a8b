import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compilePolicies, type AccessKind, type Decision, type PolicySource, type Subject } from '../src/api/access.js';
import type { AccessRule, AccessSubject, AuthMode } from '../src/api/manifests.js';
import { accessPolicySet, authModeOf } from '../src/manifests/access.js';
import { loadDirectory } from '../src/manifests/loader.js';

const ACCESS = new URL('./fixtures/manifests/access/', import.meta.url).pathname;
const FILE = 'access/policies.yaml';

const alice: Subject = { user: 'alice', groups: ['dev'], authenticated: true };
const bob: Subject = { user: 'bob', groups: ['ops'], authenticated: true };
const carol: Subject = { user: 'carol', groups: [], authenticated: true };
const local: Subject = { groups: [], authenticated: false, token: 'local' };
const anonymous: Subject = { groups: [], authenticated: false };
/** A subject that names carol without a token proving it: a user rule must not match it. */
const unproven: Subject = { user: 'carol', groups: ['dev'], authenticated: false };

const SUBJECTS = { alice, bob, carol, local, anonymous, unproven };
type Who = keyof typeof SUBJECTS;

function policy(name: string, subjects: AccessSubject[], rules: AccessRule[], file = 'inline.yaml', firstLine = 1): PolicySource {
  return { name, file, subjects, rules, ruleLines: rules.map((_, i) => firstLine + i * 3) };
}

/** Deny wins, globs, kinds: a set beside the fixture's. */
const INLINE = [
  policy('all-github', [{ group: 'dev' }], [{ servers: ['github'], effect: 'Allow' }], 'a.yaml', 10),
  policy('no-deletes', [{ authenticated: true }], [{ servers: ['*'], tools: ['delete_*'], effect: 'Deny' }], 'b.yaml', 7),
  policy('quiet', [{ user: 'alice' }], [{ servers: ['git*'], resources: ['file:///secret/*'], effect: 'Deny' }, { servers: ['mini'], tools: ['get_?'], effect: 'Allow' }], 'c.yaml', 20),
];

const fixture = await loadDirectory(ACCESS, 'access');
const FIXTURE_SET = accessPolicySet(fixture.resources);

function short(d: Decision): string {
  if (d.rule === undefined) return `${d.effect} (${d.reason})`;
  return `${d.effect} ${d.rule.policy}#${d.rule.index} ${d.rule.file}:${d.rule.line}`;
}

type Row = [string, Who, string, AccessKind, string, string];

describe('decide: the fixture directory (oidc, three policies)', () => {
  it('reads the mode from the Gateway', () => {
    expect(authModeOf(fixture.resources)).toBe('oidc');
    expect(FIXTURE_SET.policies).toBe(3);
  });

  const rows: Row[] = [
    ['a group member calls an allowed tool', 'alice', 'mini', 'tool', 'echo', `Allow devs#0 ${FILE}:12`],
    ['a second name in the same rule', 'alice', 'mini', 'tool', 'add', `Allow devs#0 ${FILE}:12`],
    ['a tool no rule names', 'alice', 'mini', 'tool', 'sub', 'Deny (default-deny)'],
    ['a glob search_*', 'alice', 'github', 'tool', 'search_code', `Allow devs#1 ${FILE}:15`],
    ['a second glob get_*', 'alice', 'github', 'tool', 'get_issue', `Allow devs#1 ${FILE}:15`],
    ['a glob is anchored: xget_issue is not get_*', 'alice', 'github', 'tool', 'xget_issue', 'Deny (default-deny)'],
    ['a tool outside the globs', 'alice', 'github', 'tool', 'create_issue', 'Deny (default-deny)'],
    ['a Deny for every authenticated user', 'alice', 'github', 'tool', 'delete_repo', `Deny no-deletes#0 ${FILE}:28`],
    ['a prompt the rule lists', 'alice', 'github', 'prompt', 'review', `Allow devs#1 ${FILE}:15`],
    ['a rule that lists tools only covers no prompt', 'alice', 'mini', 'prompt', 'review', 'Deny (default-deny)'],
    ['nor any resource', 'alice', 'github', 'resource', 'file:///README.md', 'Deny (default-deny)'],
    ['another group', 'bob', 'mini', 'tool', 'echo', 'Deny (default-deny)'],
    ['a user named as a subject', 'carol', 'mini', 'tool', 'echo', `Allow devs#0 ${FILE}:12`],
    ['a server name is exact: mini-2 is not mini', 'alice', 'mini-2', 'tool', 'echo', 'Deny (default-deny)'],
    ['the local token is a subject of its own: no-deletes is not for it', 'local', 'github', 'tool', 'delete_repo', `Allow local-token#0 ${FILE}:40`],
    ['a rule without kinds covers resources too', 'local', 'mini', 'resource', 'file:///etc/hosts', `Allow local-token#0 ${FILE}:40`],
    ['the local token reaches prompts too', 'local', 'mini', 'prompt', 'review', `Allow local-token#0 ${FILE}:40`],
    ['an anonymous caller matches no subject', 'anonymous', 'mini', 'tool', 'echo', 'Deny (default-deny)'],
    ['a user and groups not proven by a token match nothing', 'unproven', 'mini', 'tool', 'echo', 'Deny (default-deny)'],
  ];
  it.each(rows)('%s: %s %s/%s %s', (_why, who, server, kind, name, expected) => {
    expect(short(FIXTURE_SET.decide(SUBJECTS[who], { server, kind, name }))).toBe(expected);
  });
});

describe('decide: deny wins, globs and kinds (inline policies, oidc)', () => {
  const set = compilePolicies(INLINE, 'oidc');
  const rows: Row[] = [
    ['Deny wins over an Allow of everything', 'alice', 'github', 'tool', 'delete_repo', 'Deny no-deletes#0 b.yaml:7'],
    ['the Allow of everything', 'alice', 'github', 'tool', 'list_repos', 'Allow all-github#0 a.yaml:10'],
    ['a resource glob Deny', 'alice', 'github', 'resource', 'file:///secret/key', 'Deny quiet#0 c.yaml:20'],
    ['* in a resource glob crosses "/"', 'alice', 'github', 'resource', 'file:///secret/deep/key', 'Deny quiet#0 c.yaml:20'],
    ['a resource outside the Deny', 'alice', 'github', 'resource', 'file:///public/readme', 'Allow all-github#0 a.yaml:10'],
    ['a prompt under a rule without kinds', 'alice', 'github', 'prompt', 'anything', 'Allow all-github#0 a.yaml:10'],
    ['a server glob git*', 'alice', 'gitlab', 'resource', 'file:///secret/x', 'Deny quiet#0 c.yaml:20'],
    ['a group that has no Allow', 'bob', 'github', 'tool', 'list_repos', 'Deny (default-deny)'],
    ['a Deny still names its rule', 'bob', 'github', 'tool', 'delete_repo', 'Deny no-deletes#0 b.yaml:7'],
    ['? is one character', 'alice', 'mini', 'tool', 'get_a', 'Allow quiet#1 c.yaml:23'],
    ['? is exactly one', 'alice', 'mini', 'tool', 'get_ab', 'Deny (default-deny)'],
    ['the local token under oidc, no token: local policy', 'local', 'github', 'tool', 'list_repos', 'Deny (default-deny)'],
  ];
  it.each(rows)('%s: %s %s/%s %s', (_why, who, server, kind, name, expected) => {
    expect(short(set.decide(SUBJECTS[who], { server, kind, name }))).toBe(expected);
  });
});

describe('decide: the default without a matching rule', () => {
  const devsOnly = [policy('devs', [{ group: 'dev' }], [{ servers: ['*'], effect: 'Allow' }])];
  const rows: [string, AuthMode, PolicySource[], Who, string][] = [
    ['token mode, no policy: everything, as before Gateways', 'token', [], 'local', 'Allow (no-policies)'],
    ['none mode, no policy: everything, as up --no-auth', 'none', [], 'anonymous', 'Allow (no-policies)'],
    ['oidc mode, no policy: nothing', 'oidc', [], 'alice', 'Deny (default-deny)'],
    ['token mode with policies that do not name the token: denied', 'token', devsOnly, 'local', 'Deny (default-deny)'],
    ['none mode with policies: the anonymous caller matches none', 'none', devsOnly, 'anonymous', 'Deny (default-deny)'],
    ['oidc mode, a group member', 'oidc', devsOnly, 'alice', 'Allow devs#0 inline.yaml:1'],
  ];
  it.each(rows)('%s', (_why, mode, policies, who, expected) => {
    expect(short(compilePolicies(policies, mode).decide(SUBJECTS[who], { server: 'mini', kind: 'tool', name: 'echo' }))).toBe(expected);
  });
});

describe('visible: what a list answer keeps for one caller', () => {
  const tools = ['search_code', 'get_issue', 'create_issue', 'delete_repo'].map((name) => ({ name, description: name }));
  it('keeps only what the caller may use, in order, objects untouched', () => {
    expect(FIXTURE_SET.visible(alice, 'github', 'tool', tools).map((t) => t.name)).toEqual(['search_code', 'get_issue']);
    expect(FIXTURE_SET.visible(bob, 'github', 'tool', tools)).toEqual([]);
    expect(FIXTURE_SET.visible(local, 'github', 'tool', tools)).toEqual(tools);
    expect(FIXTURE_SET.visible(alice, 'github', 'tool', tools)[0]).toBe(tools[0]);
  });

  it('reads a resource by its uri, and takes another name where asked', () => {
    const set = compilePolicies(INLINE, 'oidc');
    const resources = [{ uri: 'file:///secret/key', name: 'key' }, { uri: 'file:///public/readme', name: 'readme' }];
    expect(set.visible(alice, 'github', 'resource', resources).map((r) => r.name)).toEqual(['readme']);
    expect(set.visible(alice, 'mini', 'tool', ['get_a', 'get_ab', 'echo'], (t) => t)).toEqual(['get_a']);
  });

  it('agrees with decide for every item', () => {
    for (const who of Object.keys(SUBJECTS) as Who[]) {
      for (const server of ['github', 'mini']) {
        const kept = FIXTURE_SET.visible(SUBJECTS[who], server, 'tool', tools).map((t) => t.name);
        const allowed = tools.filter((t) => FIXTURE_SET.decide(SUBJECTS[who], { server, kind: 'tool', name: t.name }).effect === 'Allow').map((t) => t.name);
        expect(kept, `${who} ${server}`).toEqual(allowed);
      }
    }
  });
});

it('rule lines come from the files: a decision names the place to edit', () => {
  const devs = fixture.resources.find((r) => r.kind === 'AccessPolicy' && r.name === 'devs');
  expect(devs?.source.file).toBe(join('access', 'policies.yaml'));
  expect(FIXTURE_SET.decide(alice, { server: 'mini', kind: 'tool', name: 'echo' }).rule).toEqual({ policy: 'devs', file: FILE, line: 12, index: 0 });
});

it('the evaluator is public API: a program embedding apiary asks the same question', async () => {
  const apiary = await import('../src/index.js');
  const set = apiary.accessPolicySet(fixture.resources);
  expect(set.decide(alice, { server: 'mini', kind: 'tool', name: 'echo' }).effect).toBe('Allow');
  expect(apiary.compilePolicies([], 'oidc').decide(alice, { server: 'mini', kind: 'tool', name: 'echo' }).reason).toBe('default-deny');
  expect(apiary.AccessPolicyManifest.safeParse({ apiVersion: 'apiary.dev/v1alpha1', kind: 'AccessPolicy', metadata: { name: 'p' }, spec: { subjects: [{ token: 'local' }], rules: [{ servers: ['*'], effect: 'Allow' }] } }).success).toBe(true);
});
