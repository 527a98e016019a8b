/**
 * Field documentation read from the same JSON Schema editors use, as
 * `kubectl explain` reads it from the API server: what a field is, its type,
 * and the fields under it. Plain data; the CLI formats it. Here rather than
 * in api/ because an unknown field is an ApiaryError with a suggestion.
 */
import * as z from 'zod';
import { ApiaryError } from '../errors.js';
import { closest } from '../util/suggest.js';
import { MANIFEST_SCHEMAS } from '../api/manifests.js';
import { API_GROUP_VERSION, kindFromAlias, type Kind } from '../api/names.js';

interface JsonSchema {
  type?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  /** A field of several types (a Kubernetes quantity: a number or a string). */
  anyOf?: JsonSchema[];
}

export interface ExplainedField {
  name: string;
  type: string;
  required: boolean;
  description?: string;
}

export interface Explanation {
  kind: Kind;
  apiVersion: string;
  /** e.g. `mcpserver.spec.env`; just the kind for the top level. */
  path: string;
  type: string;
  /** The field must be set (false for the top level). */
  required: boolean;
  description?: string;
  /** For enums and constants: the values allowed. */
  allowed?: string[];
  fields: ExplainedField[];
}

function schemaFor(kind: Kind, apiVersion: string): JsonSchema {
  const versions = MANIFEST_SCHEMAS.filter((s) => s.kind === kind);
  const entry = versions.find((s) => s.apiVersion === apiVersion);
  if (entry === undefined) {
    const accepted = versions.map((s) => s.apiVersion);
    throw new ApiaryError('Usage', `${kind} has ${accepted.length === 1 ? 'only ' : ''}apiVersion ${accepted.join(' or ')}`);
  }
  return z.toJSONSchema(entry.schema) as JsonSchema;
}

export function typeName(node: JsonSchema): string {
  if (node.anyOf !== undefined) return [...new Set(node.anyOf.map(typeName))].join('|');
  if (node.type === 'array') return `[]${node.items ? typeName(node.items) : 'Object'}`;
  if (node.type === 'object') {
    if (node.properties !== undefined) return 'Object';
    const values = typeof node.additionalProperties === 'object' ? typeName(node.additionalProperties) : 'string';
    return `map[string]${values}`;
  }
  return node.type ?? 'Object';
}

function allowedValues(node: JsonSchema): string[] | undefined {
  if (node.enum !== undefined) return node.enum.map(String);
  if (node.const !== undefined) return [String(node.const)];
  return undefined;
}

/** Walks `KIND[.field...]` (through arrays, as kubectl does: `spec.env.name`). */
export function explain(target: string, apiVersion = API_GROUP_VERSION): Explanation {
  const [kindText, ...path] = target.split('.');
  const kind = kindText ? kindFromAlias(kindText) : undefined;
  if (kind === undefined) throw new ApiaryError('Usage', `unknown kind "${kindText ?? ''}" (use mcpserver, secret, gitrepository, gateway or accesspolicy)`);
  let node = schemaFor(kind, apiVersion);
  let required = false;
  const walked = [kindText!.toLowerCase()];
  for (const field of path) {
    const container = node.type === 'array' && node.items ? node.items : node;
    const child = container.properties?.[field];
    if (child === undefined) {
      const fields = Object.keys(container.properties ?? {});
      const suggestion = closest(field, fields);
      const where = walked.join('.');
      if (fields.length === 0) throw new ApiaryError('NotFound', `${where} has no fields (it is ${typeName(node)})`);
      throw new ApiaryError('NotFound', `field "${field}" does not exist in ${where}${suggestion ? `; did you mean "${suggestion}"?` : ''}`);
    }
    required = container.required?.includes(field) ?? false;
    node = child;
    walked.push(field);
  }
  const container = node.type === 'array' && node.items ? node.items : node;
  const fields = Object.entries(container.properties ?? {}).map(([name, child]) => ({
    name,
    type: typeName(child),
    required: container.required?.includes(name) ?? false,
    ...(child.description !== undefined ? { description: child.description } : {}),
  }));
  const allowed = allowedValues(node);
  return {
    kind,
    apiVersion,
    path: walked.join('.'),
    type: typeName(node),
    required,
    ...(node.description !== undefined ? { description: node.description } : {}),
    ...(allowed !== undefined ? { allowed } : {}),
    fields,
  };
}
