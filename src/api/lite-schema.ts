/**
 * The part of zod's API that src/api/manifests.ts uses, as plain data and one
 * checker, for the start-up snapshot of get and validate only: there
 * scripts/bundle.mjs gives manifests.ts this module in place of zod, so zod
 * and its schemas (a third of the heap every get and validate deserialized at
 * start) are not in the snapshot. The schemas are still written once, in
 * manifests.ts; what the snapshot holds is the same calls recorded here.
 *
 * conform() answers only "valid, and here is what zod would output" (a copy
 * with each object's keys in the schema's order, as zod builds it), or
 * REFUSED: anything it refuses, or is not sure of, goes to zod itself
 * (src/manifests/check-manifest.ts), whose issues make the messages. So a
 * refusal costs time, never a different answer. test/lite-schema.test.ts
 * holds it to zod on every shipped manifest and thousands of broken ones.
 *
 * Error options (`{ error }`, `{ message, path }`) are taken and ignored:
 * messages are zod's to make.
 */

export const REFUSED: unique symbol = Symbol('refused');

type Rule = (value: never) => unknown;
interface RuleContext {
  value: unknown;
  issues: unknown[];
  addIssue(issue: unknown): void;
}
type SuperRule = (value: never, ctx: RuleContext) => void;

type Check =
  | { kind: 'min' | 'max'; limit: number }
  | { kind: 'gt'; limit: number }
  | { kind: 'regex'; pattern: RegExp }
  | { kind: 'refine'; rule: Rule }
  | { kind: 'superRefine'; rule: SuperRule };

type Def =
  | { type: 'string' }
  | { type: 'number'; int: boolean }
  | { type: 'boolean' }
  | { type: 'literal'; values: readonly unknown[] }
  | { type: 'array'; element: LiteSchema }
  | { type: 'record'; key: LiteSchema; value: LiteSchema }
  | { type: 'object'; shape: Readonly<Record<string, LiteSchema>> }
  | { type: 'optional'; inner: LiteSchema }
  | { type: 'union'; options: readonly LiteSchema[] };

/** One schema: what it is and its checks, in the order written. Immutable: every method returns a new one, as zod's do. */
export class LiteSchema {
  constructor(
    readonly def: Def,
    readonly checks: readonly Check[] = [],
  ) {}

  private with(check: Check): LiteSchema {
    return new LiteSchema(this.def, [...this.checks, check]);
  }

  /** Length for strings and lists, value (inclusive) for numbers. */
  min(limit: number, _params?: unknown): LiteSchema {
    return this.with({ kind: 'min', limit });
  }

  max(limit: number, _params?: unknown): LiteSchema {
    return this.with({ kind: 'max', limit });
  }

  positive(_params?: unknown): LiteSchema {
    return this.with({ kind: 'gt', limit: 0 });
  }

  nonnegative(_params?: unknown): LiteSchema {
    return this.with({ kind: 'min', limit: 0 });
  }

  regex(pattern: RegExp, _params?: unknown): LiteSchema {
    return this.with({ kind: 'regex', pattern });
  }

  refine(rule: Rule, _params?: unknown): LiteSchema {
    return this.with({ kind: 'refine', rule });
  }

  superRefine(rule: SuperRule, _params?: unknown): LiteSchema {
    return this.with({ kind: 'superRefine', rule });
  }

  optional(): LiteSchema {
    return new LiteSchema({ type: 'optional', inner: this });
  }

  /** Descriptions are for editors and explain, neither of which reads this. */
  describe(_description: string): LiteSchema {
    return this;
  }

  /** A strict object with more fields (zod refuses to extend one with refinements, and so does this). */
  extend(shape: Readonly<Record<string, LiteSchema>>): LiteSchema {
    if (this.def.type !== 'object' || this.checks.length > 0) throw new Error('lite-schema: extend() of an object with checks, or of no object');
    return new LiteSchema({ type: 'object', shape: { ...this.def.shape, ...shape } });
  }
}

export function string(_params?: unknown): LiteSchema {
  return new LiteSchema({ type: 'string' });
}

export function number(_params?: unknown): LiteSchema {
  return new LiteSchema({ type: 'number', int: false });
}

/** zod's int: a safe integer. */
export function int(_params?: unknown): LiteSchema {
  return new LiteSchema({ type: 'number', int: true });
}

export function boolean(_params?: unknown): LiteSchema {
  return new LiteSchema({ type: 'boolean' });
}

export function literal(value: unknown, _params?: unknown): LiteSchema {
  return new LiteSchema({ type: 'literal', values: [value] });
}

function enumOf(values: readonly unknown[], _params?: unknown): LiteSchema {
  return new LiteSchema({ type: 'literal', values: [...values] });
}
export { enumOf as enum };

export function array(element: LiteSchema, _params?: unknown): LiteSchema {
  return new LiteSchema({ type: 'array', element });
}

export function record(key: LiteSchema, value: LiteSchema, _params?: unknown): LiteSchema {
  return new LiteSchema({ type: 'record', key, value });
}

/** Unknown keys are refused: the only kind of object manifests.ts makes. */
export function strictObject(shape: Readonly<Record<string, LiteSchema>>, _params?: unknown): LiteSchema {
  return new LiteSchema({ type: 'object', shape });
}

export function union(options: readonly LiteSchema[], _params?: unknown): LiteSchema {
  return new LiteSchema({ type: 'union', options });
}

/** An object YAML makes; anything else (a class instance, a Date) is left to zod. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function conformObject(shape: Readonly<Record<string, LiteSchema>>, input: unknown): unknown {
  if (!isPlainObject(input)) return REFUSED;
  for (const key of Object.keys(input)) if (!Object.hasOwn(shape, key)) return REFUSED;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(shape)) {
    const field = shape[key]!;
    const value = input[key];
    if (value === undefined) {
      // A key present with undefined: zod keeps it in its output; rare enough to leave to zod.
      if (field.def.type !== 'optional' || Object.hasOwn(input, key)) return REFUSED;
      continue;
    }
    const result = conform(field, value);
    if (result === REFUSED) return REFUSED;
    out[key] = result;
  }
  return out;
}

function conformRecord(keySchema: LiteSchema, valueSchema: LiteSchema, input: unknown): unknown {
  if (!isPlainObject(input)) return REFUSED;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(input)) {
    // Assigning __proto__ would set the prototype: zod's output drops the key, so zod decides.
    if (key === '__proto__' || conform(keySchema, key) === REFUSED) return REFUSED;
    const result = conform(valueSchema, input[key]);
    if (result === REFUSED) return REFUSED;
    out[key] = result;
  }
  return out;
}

function conformArray(element: LiteSchema, input: unknown): unknown {
  if (!Array.isArray(input)) return REFUSED;
  const out: unknown[] = [];
  for (const item of input as unknown[]) {
    const result = conform(element, item);
    if (result === REFUSED) return REFUSED;
    out.push(result);
  }
  return out;
}

function conformUnion(options: readonly LiteSchema[], input: unknown): unknown {
  for (const option of options) {
    const result = conform(option, input);
    if (result !== REFUSED) return result;
  }
  return REFUSED;
}

/** The value checked against its type, before the checks: zod's output for it, or REFUSED. */
function conformType(def: Def, input: unknown): unknown {
  switch (def.type) {
    case 'string':
      return typeof input === 'string' ? input : REFUSED;
    case 'number':
      return typeof input === 'number' && Number.isFinite(input) && (!def.int || Number.isSafeInteger(input)) ? input : REFUSED;
    case 'boolean':
      return typeof input === 'boolean' ? input : REFUSED;
    case 'literal':
      return def.values.includes(input) ? input : REFUSED;
    case 'array':
      return conformArray(def.element, input);
    case 'record':
      return conformRecord(def.key, def.value, input);
    case 'object':
      return conformObject(def.shape, input);
    case 'optional':
      return input === undefined ? undefined : conform(def.inner, input);
    case 'union':
      return conformUnion(def.options, input);
  }
}

function size(value: unknown): number {
  return typeof value === 'number' ? value : (value as { length: number }).length;
}

function passes(check: Check, value: unknown): boolean {
  switch (check.kind) {
    case 'min':
      return size(value) >= check.limit;
    case 'max':
      return size(value) <= check.limit;
    case 'gt':
      return size(value) > check.limit;
    case 'regex':
      check.pattern.lastIndex = 0;
      return check.pattern.test(value as string);
    case 'refine':
      return Boolean(check.rule(value as never));
    case 'superRefine': {
      let added = false;
      check.rule(value as never, {
        value,
        issues: [],
        addIssue: () => {
          added = true;
        },
      });
      return !added;
    }
  }
}

/**
 * What zod's parse of `input` outputs when it is valid, else REFUSED (invalid,
 * or not a case this checker decides). A schema that is not a LiteSchema (zod's
 * own, outside the snapshot) is always refused.
 */
export function conform(schema: unknown, input: unknown): unknown {
  if (!(schema instanceof LiteSchema)) return REFUSED;
  const value = conformType(schema.def, input);
  if (value === REFUSED) return REFUSED;
  for (const check of schema.checks) if (!passes(check, value)) return REFUSED;
  return value;
}
