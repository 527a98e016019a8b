/**
 * Try a tool's form, from the tool's JSON Schema `inputSchema`: one field per
 * property, of the kind its schema says (string, number, integer, boolean, a
 * choice from an enum), and a JSON text for anything else (objects, arrays,
 * unions). Turned back into the call's arguments with what was left empty
 * and optional left out, so the server applies its own defaults.
 */

export type FieldKind = 'string' | 'number' | 'integer' | 'boolean' | 'enum' | 'json';

export interface ToolField {
  name: string;
  kind: FieldKind;
  required: boolean;
  title?: string;
  description?: string;
  /** An enum's values, as the schema gives them (the form shows them as text). */
  choices?: unknown[];
  /** The field's starting text: the schema's default, if it has one. */
  initial: string;
}

type Schema = Record<string, unknown>;

function isObject(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `type` as one simple type: ["string", "null"] is a string that may be left out. */
function simpleType(schema: Schema): string | undefined {
  const type = schema['type'];
  if (typeof type === 'string') return type;
  if (Array.isArray(type)) {
    const kinds = type.filter((t) => t !== 'null');
    return kinds.length === 1 && typeof kinds[0] === 'string' ? kinds[0] : undefined;
  }
  return undefined;
}

function kindOf(schema: Schema): FieldKind {
  if (Array.isArray(schema['enum']) && schema['enum'].length > 0) return 'enum';
  const type = simpleType(schema);
  return type === 'string' || type === 'number' || type === 'integer' || type === 'boolean' ? type : 'json';
}

function initialText(kind: FieldKind, value: unknown): string {
  if (value === undefined) return '';
  if (kind === 'json') return JSON.stringify(value, null, 2);
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The fields of a tool's form, in the schema's order. */
export function toolFields(inputSchema: unknown): ToolField[] {
  if (!isObject(inputSchema) || !isObject(inputSchema['properties'])) return [];
  const required = new Set(Array.isArray(inputSchema['required']) ? inputSchema['required'].filter((r): r is string => typeof r === 'string') : []);
  return Object.entries(inputSchema['properties']).map(([name, raw]) => {
    const schema = isObject(raw) ? raw : {};
    const kind = kindOf(schema);
    return {
      name,
      kind,
      required: required.has(name),
      ...(typeof schema['title'] === 'string' ? { title: schema['title'] } : {}),
      ...(typeof schema['description'] === 'string' ? { description: schema['description'] } : {}),
      ...(kind === 'enum' ? { choices: schema['enum'] as unknown[] } : {}),
      initial: initialText(kind, schema['default']),
    };
  });
}

export type Arguments = { ok: true; arguments: Record<string, unknown> } | { ok: false; field: string; message: string };

function valueOf(field: ToolField, text: string): { value: unknown } | { message: string } {
  switch (field.kind) {
    case 'string':
      return { value: text };
    case 'number':
    case 'integer': {
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n)) return { message: 'is not a number' };
      if (field.kind === 'integer' && !Number.isInteger(n)) return { message: 'is not a whole number' };
      return { value: n };
    }
    case 'boolean':
      return { value: text === 'true' };
    case 'enum': {
      const choice = field.choices?.find((c) => initialText('enum', c) === text);
      return choice === undefined ? { message: 'is not one of the choices' } : { value: choice };
    }
    case 'json':
      try {
        return { value: JSON.parse(text) as unknown };
      } catch (err) {
        return { message: `is not valid JSON (${(err as Error).message})` };
      }
  }
}

/** The call's arguments from the form's texts; the first field that does not read, with why. */
export function toolArguments(fields: readonly ToolField[], texts: Readonly<Record<string, string>>): Arguments {
  const args: Record<string, unknown> = {};
  for (const field of fields) {
    const text = texts[field.name] ?? field.initial;
    // Left empty: a required field is the server's to refuse (it says what it needs); an optional one is left out.
    if (text === '' && !(field.required && field.kind === 'string')) continue;
    const read = valueOf(field, text);
    if ('message' in read) return { ok: false, field: field.name, message: `${field.name} ${read.message}` };
    args[field.name] = read.value;
  }
  return { ok: true, arguments: args };
}
