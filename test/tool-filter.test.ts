import { describe, expect, it } from 'vitest';
import { compileToolFilter, refuseFilteredCall } from '../src/mcp/tool-filter.js';

describe('spec.tools filters', () => {
  it.each([
    [undefined, ['a', 'get-env'], ['a', 'get-env']],
    [{ allow: ['get-*'] }, ['get-env', 'get-sum', 'echo', 'xget-sum'], ['get-env', 'get-sum']],
    [{ allow: ['get-*'], deny: ['get-env'] }, ['get-env', 'get-sum', 'echo'], ['get-sum']],
    [{ deny: ['*_delete', 'drop?'] }, ['repo_delete', 'repo_create', 'drop1', 'drop12'], ['repo_create', 'drop12']],
    [{ allow: [] }, ['a', 'b'], []],
    [{ allow: ['a.b'] }, ['a.b', 'axb'], ['a.b']], // a dot is a dot, not "any character"
    [{ allow: ['(x)+'] }, ['(x)+', 'xx'], ['(x)+']],
  ])('%j exposes exactly what it should', (spec, tools, exposed) => {
    const filter = compileToolFilter(spec);
    expect(tools.filter((t) => filter.exposes(t))).toEqual(exposed);
  });

  it('the same patterns make the same key; others do not', () => {
    expect(compileToolFilter({ allow: ['a'] }).key).toBe(compileToolFilter({ allow: ['a'] }).key);
    expect(compileToolFilter({ allow: ['a'] }).key).not.toBe(compileToolFilter({ deny: ['a'] }).key);
    expect(compileToolFilter(undefined).key).toBe(compileToolFilter({ deny: [] }).key);
  });
});

describe('refuseFilteredCall', () => {
  it('under a filter, refuses a tool name that is no string (the filter cannot judge it); without one, leaves it to the server', () => {
    const filter = compileToolFilter({ deny: ['env'] });
    expect(refuseFilteredCall(filter, 1, ['env'])).toMatchObject({ id: 1, error: { message: 'tools/call needs params.name as a string' } });
    expect(refuseFilteredCall(filter, 2, undefined)).toMatchObject({ id: 2, error: { message: 'tools/call needs params.name as a string' } });
    expect(refuseFilteredCall(filter, 3, 'env')).toMatchObject({ id: 3, error: { message: expect.stringContaining('spec.tools') } });
    expect(refuseFilteredCall(filter, 4, 'echo')).toBeUndefined();
    expect(refuseFilteredCall(compileToolFilter(undefined), 5, ['env'])).toBeUndefined();
  });
});
