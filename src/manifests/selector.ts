/**
 * Kubernetes label selectors, as `kubectl get -l` takes them: requirements
 * joined by commas, all of which must hold.
 *
 *   team=tools   team==tools   team!=tools   team   !team
 *   tier in (a, b)   tier notin (a, b)
 *
 * Here rather than in api/, which imports nothing of the project: a bad
 * selector is an ApiaryError the CLI prints with its code.
 */
import { ApiaryError } from '../errors.js';
import { isLabelKey, isLabelValue } from '../api/names.js';

export type Requirement =
  | { key: string; op: 'exists' | 'missing' }
  | { key: string; op: 'in' | 'notin'; values: string[] };

export type Selector = Requirement[];


function invalid(text: string, why: string): ApiaryError {
  return new ApiaryError('Usage', `invalid label selector "${text}": ${why}`);
}

function checkKey(key: string, text: string): string {
  if (!isLabelKey(key)) throw invalid(text, `"${key}" is not a label key`);
  return key;
}

function checkValue(value: string, text: string): string {
  if (!isLabelValue(value)) throw invalid(text, `"${value}" is not a label value`);
  return value;
}

/** Splits at commas outside parentheses. */
function clauses(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
    if (depth < 0 || depth > 1) throw invalid(text, 'unbalanced parentheses');
  }
  if (depth !== 0) throw invalid(text, 'unbalanced parentheses');
  out.push(text.slice(start));
  return out.map((c) => c.trim());
}

export function parseSelector(text: string): Selector {
  if (text.trim() === '') return [];
  return clauses(text).map((clause): Requirement => {
    if (clause === '') throw invalid(text, 'empty requirement');
    const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(clause);
    if (set) {
      const values = set[3]!.split(',').map((v) => checkValue(v.trim(), text));
      return { key: checkKey(set[1]!, text), op: set[2] as 'in' | 'notin', values };
    }
    const compare = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(clause);
    if (compare) {
      return { key: checkKey(compare[1]!, text), op: compare[2] === '!=' ? 'notin' : 'in', values: [checkValue(compare[3]!, text)] };
    }
    const missing = /^!\s*(\S+)$/.exec(clause);
    if (missing) return { key: checkKey(missing[1]!, text), op: 'missing' };
    if (/^\S+$/.test(clause)) return { key: checkKey(clause, text), op: 'exists' };
    throw invalid(text, `cannot read "${clause}"`);
  });
}

/** As Kubernetes: `key!=v` and `notin` also match objects without the label. */
export function matchesSelector(selector: Selector, labels: Readonly<Record<string, string>> | undefined): boolean {
  return selector.every((r) => {
    const value = labels?.[r.key];
    switch (r.op) {
      case 'exists':
        return value !== undefined;
      case 'missing':
        return value === undefined;
      case 'in':
        return value !== undefined && r.values.includes(value);
      case 'notin':
        return value === undefined || !r.values.includes(value);
    }
  });
}
