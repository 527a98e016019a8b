/**
 * Turns zod issues into the messages a person reads. Values are echoed only
 * where they cannot be secret: never under stringData, data, encryptedData or
 * an env value.
 */
import type { z } from 'zod';
import { closest } from '../util/suggest.js';
import { formatPath } from './field-path.js';

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  valueType?: z.ZodType;
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema;
  for (;;) {
    const def = defOf(current);
    if ((def.type === 'optional' || def.type === 'nullable' || def.type === 'default') && def.innerType) {
      current = def.innerType;
    } else {
      return current;
    }
  }
}

/** The field names the schema allows at `path`, for suggestions. */
export function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let current: z.ZodType | undefined = unwrap(schema);
  for (const segment of path) {
    if (current === undefined) return [];
    const def = defOf(current);
    if (def.type === 'object' && def.shape) current = def.shape[String(segment)];
    else if (def.type === 'array' && def.element) current = def.element;
    else if (def.type === 'record' && def.valueType) current = def.valueType;
    else return [];
    if (current !== undefined) current = unwrap(current);
  }
  if (current === undefined) return [];
  const def = defOf(current);
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

const SENSITIVE_ROOTS = new Set(['stringData', 'data', 'encryptedData']);

export function isSensitivePath(path: readonly PropertyKey[]): boolean {
  if (path.length > 0 && SENSITIVE_ROOTS.has(String(path[0]))) return true;
  return path.at(-1) === 'value';
}

export function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const segment of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[segment];
  }
  return node;
}

export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (Number.isInteger(value)) return 'integer';
  return typeof value === 'object' ? 'mapping' : typeof value;
}

function describeValue(value: unknown, path: readonly PropertyKey[]): string {
  if (isSensitivePath(path)) return '';
  if (typeof value === 'string') return value.length <= 80 ? `; got ${JSON.stringify(value)}` : '';
  if (typeof value === 'number' || typeof value === 'boolean') return `; got ${String(value)}`;
  return '';
}

const EXPECTED_NAMES: Record<string, string> = {
  object: 'mapping',
  record: 'mapping',
  array: 'list',
  int: 'integer',
  number: 'number',
  string: 'string',
  boolean: 'boolean (true or false)',
};

export interface FieldProblem {
  path: PropertyKey[];
  /** Point at the key rather than the value (unknown fields). */
  atKey: boolean;
  message: string;
}

/** One message per problem; issues on the same path after the first are dropped. */
export function describeIssues(schema: z.ZodType, issues: readonly z.core.$ZodIssue[], input: unknown): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const seen = new Set<string>();
  const push = (p: FieldProblem): void => {
    const id = formatPath(p.path);
    if (seen.has(id)) return;
    seen.add(id);
    problems.push({ ...p, message: id === '' ? p.message : `${id}: ${p.message}` });
  };
  for (const issue of issues) {
    const path = issue.path as PropertyKey[];
    const value = valueAt(input, path);
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) {
          const suggestion = closest(key, knownKeysAt(schema, path));
          push({
            path: [...path, key],
            atKey: true,
            message: suggestion === undefined ? 'unknown field' : `unknown field; did you mean "${suggestion}"?`,
          });
        }
        break;
      case 'invalid_type':
        push({
          path,
          atKey: value === undefined,
          message:
            value === undefined
              ? 'required field is missing'
              : `expected ${EXPECTED_NAMES[issue.expected] ?? issue.expected}, got ${typeName(value)}`,
        });
        break;
      case 'invalid_value':
        push({
          path,
          atKey: false,
          message: `must be ${issue.values.length === 1 ? '' : 'one of '}${issue.values.map((v) => String(v)).join(', ')}${describeValue(value, path)}`,
        });
        break;
      case 'too_small':
        push({
          path,
          atKey: false,
          message:
            issue.origin === 'string' && Number(issue.minimum) === 1
              ? 'must not be empty'
              : `${issue.message}${describeValue(value, path)}`,
        });
        break;
      case 'invalid_key':
        push({ path, atKey: true, message: `invalid key: ${issue.issues[0]?.message ?? issue.message}` });
        break;
      default:
        push({ path, atKey: false, message: `${issue.message}${describeValue(value, path)}` });
    }
  }
  return problems;
}
