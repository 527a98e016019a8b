/**
 * The MCP Registry's server.json (schema 2025-12-11, camelCase), as far as
 * installing needs it. Unknown fields are ignored (registries add their own),
 * wrong ones are reported with their path, and nothing here is trusted to
 * name a file or reach a shell.
 */
import * as z from 'zod';
import { packageRefProblems } from './package-ref.js';

export const SERVER_JSON_SCHEMA = 'https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json';

const FORMATS = ['string', 'number', 'boolean', 'filepath'] as const;

const Input = z.object({
  description: z.string().optional(),
  isRequired: z.boolean().optional(),
  isSecret: z.boolean().optional(),
  default: z.string().optional(),
  choices: z.array(z.string()).optional(),
  format: z.enum(FORMATS).optional(),
  placeholder: z.string().optional(),
  /** A fixed value: not asked for. `{name}` refers to `variables`. */
  value: z.string().optional(),
});

const InputWithVariables = Input.extend({ variables: z.record(z.string(), Input).optional() });

/** An environment variable or a header. */
export const KeyValueInput = InputWithVariables.extend({ name: z.string().min(1) });
export type KeyValueInput = z.infer<typeof KeyValueInput>;

const PositionalArgument = InputWithVariables.extend({ type: z.literal('positional'), valueHint: z.string().optional(), isRepeated: z.boolean().optional() });
const NamedArgument = InputWithVariables.extend({ type: z.literal('named'), name: z.string().min(1), isRepeated: z.boolean().optional() });
export const Argument = z.discriminatedUnion('type', [PositionalArgument, NamedArgument]);
export type Argument = z.infer<typeof Argument>;

const httpUrl = z.string().regex(/^(https?:\/\/\S+|\{[a-zA-Z_][a-zA-Z0-9_]*\}\S*)$/, { error: 'must start with http://, https:// or a {variable}' });

export const LocalTransport = z.discriminatedUnion('type', [
  z.object({ type: z.literal('stdio') }),
  z.object({ type: z.literal('streamable-http'), url: httpUrl, headers: z.array(KeyValueInput).optional() }),
  z.object({ type: z.literal('sse'), url: httpUrl, headers: z.array(KeyValueInput).optional() }),
]);

export const Package = z.object({
  registryType: z.string().min(1),
  registryBaseUrl: z.string().optional(),
  identifier: z.string().min(1),
  version: z
    .string()
    .min(1)
    .refine((v) => v !== 'latest' && !/[\^~><*]|\.x$/.test(v), { error: 'must be an exact version, not a range or "latest"' })
    .optional(),
  runtimeHint: z.string().optional(),
  runtimeArguments: z.array(Argument).optional(),
  packageArguments: z.array(Argument).optional(),
  environmentVariables: z.array(KeyValueInput).optional(),
  transport: LocalTransport,
}).superRefine((pkg, ctx) => {
  // What ends up in argv is checked by the registry type's own naming rules.
  for (const problem of packageRefProblems(pkg)) ctx.addIssue({ code: 'custom', path: [problem.field], message: problem.message });
});
export type Package = z.infer<typeof Package>;

/**
 * A hosted endpoint that logs in with OAuth 2.1 (the MCP authorization spec).
 * server.json has no field for it yet (modelcontextprotocol/registry#25), so
 * an entry says it as apiary's spec.remote.auth does; scopes are optional.
 */
export const RemoteOAuth = z.object({ type: z.literal('oauth'), scopes: z.array(z.string().min(1)).optional() });

export const Remote = z.object({
  type: z.enum(['streamable-http', 'sse']),
  url: httpUrl,
  headers: z.array(KeyValueInput).optional(),
  variables: z.record(z.string(), Input).optional(),
  auth: RemoteOAuth.optional(),
});
export type Remote = z.infer<typeof Remote>;

export const ServerJson = z.object({
  $schema: z.string().optional(),
  name: z.string().regex(/^[a-zA-Z0-9.-]+\/[a-zA-Z0-9._-]+$/, { error: 'must be reverse-DNS with one slash, e.g. io.github.user/weather' }),
  title: z.string().optional(),
  description: z.string().min(1),
  version: z.string().min(1),
  websiteUrl: z.string().optional(),
  repository: z.object({ url: z.string(), source: z.string(), subfolder: z.string().optional() }).optional(),
  packages: z.array(Package).optional(),
  remotes: z.array(Remote).optional(),
});
export type ServerJson = z.infer<typeof ServerJson>;

/** Where a bad field is: `packages[0].environmentVariables[1].name`. */
export function fieldPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, part) => (typeof part === 'number' ? `${out}[${part}]` : out === '' ? String(part) : `${out}.${String(part)}`), '') || '(the document)';
}
