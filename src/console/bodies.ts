/**
 * The shape of every body the console accepts, as zod schemas: a route reads
 * its body through readBodyAs, so a wrong type, a missing field or a field
 * the page never sends is a 400 that names the field, before anything is
 * read from or written to the directory. Semantic checks (a valid secret
 * name, a free server name) stay with the code that does the work.
 */
import type { IncomingMessage } from 'node:http';
import * as z from 'zod';
import { HttpError, readJsonBody } from './http.js';

/** POST /login: the one-time code from the link. */
export const LoginBody = z.strictObject({ code: z.string() });

/** DELETE, restart/suspend/resume, client file writes: nothing to say but `{}`. */
export const EmptyBody = z.strictObject({});

/** POST /api/v1/secrets. */
export const CreateSecretBody = z.strictObject({ name: z.string(), key: z.string(), value: z.string() });

/** PUT /api/v1/secrets/{name}/keys/{key}. */
export const UpdateSecretBody = z.strictObject({ value: z.string() });

/** POST /api/v1/mcpservers/{name}/tools-approve: one tool, or (none named) every tool of the server. */
export const ApproveToolsBody = z.strictObject({ tool: z.string().min(1).max(256).optional() });

/** POST /api/v1/mcpservers/{name}/call: a tool and its arguments, as a tools/call carries them. */
export const CallToolBody = z.strictObject({ tool: z.string().min(1), arguments: z.record(z.string(), z.unknown()).optional() });

/** A port as the install form sends it: a number, a numeral, or nothing. */
const Port = z.union([z.int().min(1).max(65535), z.string().regex(/^\d*$/), z.null()], { error: 'must be a whole number from 1 to 65535' });

/** POST /api/v1/install/plan and /api/v1/install (the second with the new secrets' values). */
export const InstallBody = z.strictObject({
  name: z.string(),
  command: z.string(),
  args: z.array(z.string()).optional(),
  transport: z.string().optional(),
  port: Port.optional(),
  env: z.array(z.strictObject({ name: z.string(), value: z.string() })).optional(),
  secrets: z.array(z.strictObject({ variable: z.string(), secret: z.string().optional(), key: z.string().optional() })).optional(),
  values: z.record(z.string(), z.string()).optional(),
});
export type InstallBody = z.infer<typeof InstallBody>;

/** POST /api/v1/catalog/install/plan and /api/v1/catalog/install. */
export const CatalogInstallBody = z.strictObject({
  entry: z.string(),
  version: z.string().optional(),
  name: z.string().optional(),
  plain: z.record(z.string(), z.string()).optional(),
  bound: z.record(z.string(), z.string()).optional(),
  secrets: z.record(z.string(), z.string()).optional(),
  allowMissing: z.boolean().optional(),
});
export type CatalogInstallBody = z.infer<typeof CatalogInstallBody>;

const EXPECTED: Partial<Record<string, string>> = { int: 'a whole number', array: 'a list', object: 'an object', record: 'an object', boolean: 'true or false' };

/** One problem, said with the field it is in (`env[0].value`); never the value itself, which may be a secret. */
function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
  if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${where ? `${where}.` : ''}${k}"`).join(', ')}`;
  if (issue.code === 'invalid_type') {
    // zod leaves the input out of its issues; its message says "received undefined" for a field that is not there.
    return `"${where}": ${issue.message.endsWith('received undefined') ? 'is required' : `must be ${EXPECTED[issue.expected] ?? `a ${issue.expected}`}`}`;
  }
  return `"${where}": ${issue.message}`;
}

/** The body, checked against `schema`: a 400 BadRequest naming every field that is wrong. */
export async function readBodyAs<T>(req: IncomingMessage, schema: z.ZodType<T>): Promise<T> {
  const parsed = schema.safeParse(await readJsonBody(req));
  if (parsed.success) return parsed.data;
  throw new HttpError(400, 'BadRequest', `the body is not as expected: ${parsed.error.issues.map(describeIssue).join('; ')}`);
}
