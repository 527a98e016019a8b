import { describe, expect, it } from 'vitest';
import { matchesSelector, parseSelector } from '../src/manifests/selector.js';

const tools = { team: 'tools', tier: 'backend' };
const web = { team: 'web' };

describe('label selectors (kubectl -l)', () => {
  it.each([
    ['', [true, true, true]],
    ['team=tools', [true, false, false]],
    ['team==tools', [true, false, false]],
    ['team!=tools', [false, true, true]],
    ['team', [true, true, false]],
    ['!team', [false, false, true]],
    ['tier', [true, false, false]],
    ['team in (tools, web)', [true, true, false]],
    ['team notin (web)', [true, false, true]],
    ['team=tools,tier=backend', [true, false, false]],
    ['team=tools,tier=frontend', [false, false, false]],
    ['team in (tools,web),!tier', [false, true, false]],
    [' team = tools ', [true, false, false]],
    ['tier=', [false, false, false]],
  ])('%j matches [tools, web, unlabelled] as %j', (text, expected) => {
    const selector = parseSelector(text);
    expect([tools, web, undefined].map((labels) => matchesSelector(selector, labels))).toEqual(expected);
  });

  it('an empty value matches a label set to the empty string', () => {
    expect(matchesSelector(parseSelector('tier='), { tier: '' })).toBe(true);
  });

  it('takes prefixed keys', () => {
    expect(matchesSelector(parseSelector('app.kubernetes.io/part-of=apiary'), { 'app.kubernetes.io/part-of': 'apiary' })).toBe(true);
  });

  it.each([
    ['team=tools,', 'invalid label selector "team=tools,": empty requirement'],
    ['team in (a', 'invalid label selector "team in (a": unbalanced parentheses'],
    ['team=has space', 'invalid label selector "team=has space": cannot read "team=has space"'],
    ['-team=x', 'invalid label selector "-team=x": "-team" is not a label key'],
    ['team=-x', 'invalid label selector "team=-x": "-x" is not a label value'],
    ['Bad.Prefix/team', 'invalid label selector "Bad.Prefix/team": "Bad.Prefix/team" is not a label key'],
  ])('%j is a usage error: %s', (text, message) => {
    expect(() => parseSelector(text)).toThrow(expect.objectContaining({ code: 'Usage', message }));
  });
});
