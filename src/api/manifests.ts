/**
 * The manifest API (DESIGN.md section 1) as zod schemas. Types are inferred
 * from the schemas so the validator and the code can never disagree, and the
 * JSON Schema editors use is generated from the same source.
 */
import * as z from 'zod';
import type { V1EnvVar } from '@kubernetes/client-node';
import { expandReferences, HEADER_VALUE, HEADER_VALUE_RULE, headerValueFlaw, referencedNames } from './remote.js';
import { API_GROUP_VERSION, DNS1123_LABEL, DNS1123_MAX, LABEL_KEY, LABEL_KEY_RULE, LABEL_VALUE, LABEL_VALUE_RULE, SECRET_KEY } from './names.js';

const DNS_RULE =
  'must be a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters';
const dnsName = z
  .string()
  .min(1)
  .max(DNS1123_MAX, { error: DNS_RULE })
  .regex(DNS1123_LABEL, { error: DNS_RULE })
  .describe('DNS-1123 label: lowercase letters, digits and "-", at most 63 characters');

const labelKey = z.string().regex(LABEL_KEY, { error: LABEL_KEY_RULE });
const labels = z
  .record(labelKey, z.string().regex(LABEL_VALUE, { error: LABEL_VALUE_RULE }))
  .describe('Key/value pairs to select resources by (get -l, wait -l); Kubernetes label rules');
const annotations = z.record(labelKey, z.string()).describe('Free-form notes for people and tools; apiary ignores them');

export const ObjectMeta = z.strictObject({
  name: dnsName.describe('Unique among resources of this kind in the directory; a DNS-1123 label'),
  namespace: z.string().optional().describe('Accepted for Kubernetes compatibility; ignored by the local runtime'),
  labels: labels.optional(),
  annotations: annotations.optional(),
});

const secretKeyName = z
  .string()
  .min(1)
  .regex(SECRET_KEY, { error: 'must consist of letters, digits, "-", "_" and "."' });

export const SecretKeySelector = z.strictObject({
  name: dnsName.describe('Name of the Secret'),
  key: secretKeyName.describe('Key within the Secret'),
  optional: z.boolean().optional().describe('Skip silently when the secret or key is missing'),
});

export const EnvVarSource = z.strictObject({
  secretKeyRef: SecretKeySelector.describe('One key of a Secret; a server whose secret is missing is Stuck, never started without it'),
});

/** Text handed to a process (argv, environment, a path): a C string, so no NUL byte. */
const NUL_RULE = 'must not contain a NUL byte (a process cannot be given one)';
const processText = (): z.ZodString => z.string().regex(/^[^\0]*$/, { error: NUL_RULE });

const envName = z
  .string()
  .min(1)
  .regex(/^[^=\0]+$/, { error: 'must not contain "="' });

export const EnvVar = z
  .strictObject({
    name: envName.describe('Name of the environment variable'),
    value: processText().optional().describe('A literal value (not secret: it is shown by get -o yaml); $(VAR) is replaced by a variable defined above it, as Kubernetes does ($$ for a literal $)'),
    valueFrom: EnvVarSource.optional().describe('Where the value comes from instead of value'),
  })
  .refine((e) => !(e.value !== undefined && e.valueFrom !== undefined), {
    message: 'value and valueFrom may not both be set',
    path: ['valueFrom'],
  });

export const SecretEnvSource = z.strictObject({
  name: dnsName.describe('Name of the Secret'),
  optional: z.boolean().optional().describe('Skip silently when the secret is missing'),
});

export const EnvFromSource = z.strictObject({
  prefix: processText().optional().describe('Put before every key to make the variable name'),
  secretRef: SecretEnvSource.describe('A Secret whose every key becomes a variable'),
});

const PORT_RULE = 'must be an integer from 1 to 65535';

export const TRANSPORTS = ['stdio', 'streamable-http', 'sse'] as const;
export const RESTART_POLICIES = ['Always', 'OnFailure', 'Never'] as const;

export const HealthCheck = z.strictObject({
  intervalSeconds: z.int().min(1, { error: 'must be at least 1' }).optional().describe('How often to send an MCP ping (default 30)'),
  timeoutSeconds: z.int().min(1, { error: 'must be at least 1' }).optional().describe('How long a ping may take (default 5)'),
  failureThreshold: z.int().min(1, { error: 'must be at least 1' }).optional().describe('Failed pings in a row before the server is restarted as Unhealthy (default 3)'),
});

const TOOL_PATTERN_RULE = 'must be a tool name or a glob (* and ?), without spaces';
const toolPattern = z.string().regex(/^[^\s\0]+$/, { error: TOOL_PATTERN_RULE });

export const ToolFilter = z.strictObject({
  allow: z.array(toolPattern).optional().describe('Only these tools are exposed (names or globs such as get-*); absent: every tool'),
  deny: z.array(toolPattern).optional().describe('These tools are never exposed (names or globs), even when allowed'),
  onDrift: z
    .enum(['Withhold', 'Warn'])
    .optional()
    .describe("When the tools the server lists differ from its entry in tools.lock.yaml (apiary tools lock): Withhold (the default) keeps changed and new tools from clients and refuses calls to them; Warn lists them and only reports (condition ToolsDrifted, a Warning event). No entry, or an HTTP or hosted server: not judged"),
});

export const STRATEGIES = ['RollingUpdate', 'Recreate'] as const;

export const RollingUpdate = z.strictObject({
  progressDeadlineSeconds: z.int().min(1, { error: 'must be at least 1' }).optional().describe('How long a new process may take to start and answer the MCP handshake before the rollout is given up and retried with back-off (default 60)'),
  drainSeconds: z.int().min(0, { error: 'must be 0 or more' }).optional().describe('How long the replaced process may take to answer the requests it holds before it is stopped (default 30)'),
});

export const Strategy = z.strictObject({
  type: z.enum(STRATEGIES).optional().describe('RollingUpdate (default for stdio servers): the new process starts and is initialized beside the old one, which keeps serving until it takes over; Recreate (HTTP servers): the old process stops before the new one starts'),
  rollingUpdate: RollingUpdate.optional().describe('Bounds of a rolling update'),
});

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export const RemoteHeader = z.strictObject({
  name: z.string().regex(HEADER_NAME, { error: 'must be an HTTP header name' }).describe('Header name, e.g. Authorization'),
  value: z
    .string()
    .regex(HEADER_VALUE, { error: HEADER_VALUE_RULE })
    .describe('Header value; $(VAR) is replaced by the variable VAR of spec.env (which may come from a secret)'),
});

export const REMOTE_AUTH_TYPES = ['oauth'] as const;

/** RFC 6749 §3.3 scope-token: printable ASCII without space, quote or backslash. */
const OAUTH_SCOPE = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
const OAUTH_CLIENT_ID = /^[\x20-\x7e]+$/;

export const RemoteAuth = z
  .strictObject({
    type: z.enum(REMOTE_AUTH_TYPES).describe('oauth: the server wants an OAuth 2.1 login (the MCP authorization spec); `apiary connect NAME` logs in once, and apiary keeps the tokens sealed in its state directory and refreshes them'),
    scopes: z.array(z.string().regex(OAUTH_SCOPE, { error: 'must be an OAuth scope: printable ASCII without spaces, quotes or backslashes' })).optional().describe("Scopes to ask for; default: the ones the server's 401 challenge or its resource metadata names"),
    clientId: z.string().min(1).regex(OAUTH_CLIENT_ID, { error: 'must be printable ASCII' }).optional().describe('A client registered beforehand with the authorization server (redirect URI http://127.0.0.1/callback, any port); default: apiary registers itself dynamically (RFC 7591), once per authorization server'),
    clientSecretRef: SecretKeySelector.optional().describe("The pre-registered client's secret, from a Secret; needs clientId"),
  })
  .refine((auth) => auth.clientSecretRef === undefined || auth.clientId !== undefined, { message: 'clientSecretRef needs clientId (the client the secret belongs to)', path: ['clientSecretRef'] });

export const Remote = z
  .strictObject({
    url: z.string().regex(/^https?:\/\/\S+$/, { error: 'must be an http:// or https:// URL' }).describe('The hosted server\'s MCP endpoint; $(VAR) is replaced as in headers'),
    transport: z.enum(['streamable-http', 'sse']).optional().describe('streamable-http (default) or sse'),
    headers: z.array(RemoteHeader).optional().describe('Headers apiary adds to every request it forwards (clients never see them)'),
    auth: RemoteAuth.optional().describe('How apiary logs in to the server; tokens never appear in manifests'),
  })
  .refine((remote) => remote.auth === undefined || !(remote.headers ?? []).some((h) => h.name.toLowerCase() === 'authorization'), {
    message: 'an Authorization header and auth cannot both be set: with auth, apiary sends the OAuth token it keeps',
    path: ['auth'],
  });

export const RateLimit = z.strictObject({
  requests: z.int().min(1, { error: 'must be at least 1' }).describe('Calls allowed per period (the bucket\'s size: a burst may use them all at once)'),
  perSeconds: z.number().positive({ error: 'must be more than 0' }).describe('The period in seconds over which the bucket refills'),
});

/**
 * A tool or prompt name, or a glob of them: `*` any run of characters, `?`
 * one. Brackets and braces are refused rather than taken literally: someone
 * who writes `get_[ab]*` expects a character class, which apiary has not.
 */
const NAME_GLOB_RULE = 'must be a name or a glob (* and ?), without spaces; [ ] { } are not glob syntax here';
const nameGlob = z.string().regex(/^[^\s\0[\]{}]+$/, { error: NAME_GLOB_RULE });

/**
 * An MCPServer's own limits, field by field in place of the Gateway's for
 * that server (src/api/rate-limit.ts): perServer and perTool replace the
 * Gateway's; perSubject adds a bucket per caller at this server, while the
 * Gateway's perSubject still counts every call a caller makes anywhere.
 */
export const ServerRateLimits = z.strictObject({
  perSubject: RateLimit.optional().describe("Calls each caller may make to this server (the Gateway's perSubject still counts them too, across servers)"),
  perServer: RateLimit.optional().describe("Calls this server may receive, across callers (in place of the Gateway's perServer)"),
  perTool: z.array(RateLimit.extend({ tool: nameGlob.describe('The tools it applies to (a name or a glob)') })).optional().describe("Calls each matching tool of this server may receive (in place of the Gateway's perTool rules; [] lifts them)"),
});

/**
 * A sandbox path: absolute, or under the server's home (`~`, `~/...`), with
 * no `.` or `..` segment, so what is granted is what is written (a `..`
 * could climb out of a granted folder into the home it is meant to hide).
 */
const SANDBOX_PATH_RULE = 'must be an absolute path or one under ~/, without "." or ".." segments';
const sandboxPath = processText()
  .min(1)
  .refine((path) => (path.startsWith('/') || path === '~' || path.startsWith('~/')) && !path.split('/').some((part) => part === '.' || part === '..'), { error: SANDBOX_PATH_RULE });

const HOST_PORT_RULE = 'must be host:port: a DNS name or an IPv4 address (or [IPv6]), then a port from 1 to 65535, e.g. api.github.com:443';
const HOST_PORT = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})$/;
const hostPort = z.string().refine((text) => {
  const port = Number(HOST_PORT.exec(text)?.[1] ?? NaN);
  return port >= 1 && port <= 65535;
}, { error: HOST_PORT_RULE });

export const SANDBOX_NETWORKS = ['none', 'allow'] as const;
export const SANDBOX_PROFILES = ['default', 'none'] as const;

export const SandboxFilesystem = z.strictObject({
  read: z.array(sandboxPath).optional().describe('Paths the server may read (absolute or ~/...); a missing one is skipped'),
  write: z.array(sandboxPath).optional().describe('Paths the server may read and write (absolute or ~/...); a missing one is skipped'),
});

export const Sandbox = z
  .strictObject({
    profile: z.enum(SANDBOX_PROFILES).optional().describe("default (when absent): read-only /usr, /bin, /sbin, /lib*, the few files of /etc a program needs (ssl and ca-certificates, resolv.conf, hosts, nsswitch.conf, passwd, group, localtime, alternatives, ld.so.*), node's install prefix and the working directory; read-write the npm cache ~/.npm (for npx). none: only the paths in filesystem. Always: /proc, /dev, a private /tmp and an empty private home"),
    filesystem: SandboxFilesystem.optional().describe("Paths granted besides the profile's; nothing else of the user's home, apiary's state directory or other servers is visible"),
    network: z.enum(SANDBOX_NETWORKS).optional().describe("none (default): a network namespace with only loopback; allow: still that namespace, with apiary's egress proxy reachable inside as HTTPS_PROXY/HTTP_PROXY, letting through only the hosts in allow"),
    allow: z.array(hostPort).min(1, { error: 'must list at least one host:port (network none reaches nothing)' }).optional().describe('host:port the server may reach through the egress proxy (network: allow)'),
  })
  .refine((sandbox) => sandbox.allow === undefined || sandbox.network === 'allow', { error: 'allow needs network: allow', path: ['allow'] })
  .refine((sandbox) => sandbox.network !== 'allow' || sandbox.allow !== undefined, { error: 'network allow needs the hosts it may reach in allow (host:port)', path: ['allow'] });

/**
 * A Kubernetes resource quantity (cpu: 500m, 2; memory: 256Mi, 1G): a
 * decimal number and one suffix, binary (Ki..Ei), decimal (m, k, M..E) or an
 * exponent, as the API server parses them. A YAML number is a quantity too.
 */
const QUANTITY = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[KMGTPE]i|[mkMGTPE]|[eE][+-]?[0-9]+)?$/;
const QUANTITY_RULE = 'must be a Kubernetes quantity: a number with an optional suffix, e.g. 500m or 1 (cpu), 256Mi or 1G (memory)';
const quantity = z.union([z.number().nonnegative({ error: QUANTITY_RULE }), z.string().regex(QUANTITY, { error: QUANTITY_RULE })], { error: QUANTITY_RULE });

const SUFFIX: Record<string, number> = { '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };

/** A quantity's value, for comparing a request with its limit (as the API server refuses a request above its limit). */
export function quantityValue(q: string | number): number {
  if (typeof q === 'number') return q;
  const m = /^([0-9.]+)(.*)$/.exec(q);
  if (m === null) return NaN;
  const suffix = m[2]!;
  if (/^[eE]/.test(suffix)) return Number(q);
  return Number(m[1]) * (SUFFIX[suffix] ?? NaN);
}

export const ResourceQuantities = z.strictObject({
  cpu: quantity.optional().describe('CPU cores: 500m is half a core, 2 is two'),
  memory: quantity.optional().describe('Bytes: 256Mi, 1Gi, or decimal 500M'),
});

export const ResourceRequirements = z
  .strictObject({
    requests: ResourceQuantities.optional().describe('What the scheduler reserves for the pod'),
    limits: ResourceQuantities.optional().describe('What the container may use at most (more memory than this: OOMKilled)'),
  })
  .superRefine((resources, ctx) => {
    for (const name of ['cpu', 'memory'] as const) {
      const request = resources.requests?.[name];
      const limit = resources.limits?.[name];
      if (request === undefined || limit === undefined || quantityValue(request) <= quantityValue(limit)) continue;
      ctx.addIssue({ code: 'custom', message: `must be less than or equal to the ${name} limit (${limit}), as Kubernetes requires`, path: ['requests', name] });
    }
  });

/** Pod Security Standards' level names: what render and the cluster runtime put in a server's securityContext. */
export const POD_SECURITY_LEVELS = ['restricted', 'baseline'] as const;

export const MCPServerSpec = z.strictObject({
  command: processText().min(1).optional().describe('Program to run; looked up on PATH, never through a shell (or spec.remote); $(VAR) is replaced as in args'),
  args: z.array(processText()).optional().describe('Arguments, never through a shell; $(VAR) is replaced by the variable VAR of spec.env as Kubernetes does ($$(VAR) for a literal $(VAR); an unknown name stays as written); a secret put there is readable by every local user in the process list'),
  workingDir: processText().min(1).optional().describe("Relative to the manifest's own folder"),
  transport: z.enum(TRANSPORTS).optional().describe('stdio (default), streamable-http or sse'),
  port: z
    .int()
    .min(1, { error: PORT_RULE })
    .max(65535, { error: PORT_RULE })
    .optional()
    .describe("The port of apiary's endpoint for this server (its status.url); an HTTP server listens on an internal $PORT behind it"),
  env: z.array(EnvVar).optional().describe('Variables set for the server; nothing else of apiary\'s environment reaches it but PATH, HOME, locale and proxy settings'),
  envFrom: z.array(EnvFromSource).optional().describe('Secrets whose every key becomes a variable'),
  restartPolicy: z.enum(RESTART_POLICIES).optional().describe('Always (default), OnFailure or Never'),
  suspend: z.boolean().optional().describe('true: stop the server and keep the manifest'),
  healthCheck: HealthCheck.optional().describe('Liveness by MCP ping'),
  tools: ToolFilter.optional().describe("Which tools apiary's endpoint exposes: filtered ones are absent from tools/list and refused by tools/call (no restart when this changes)"),
  strategy: Strategy.optional().describe('How a change reaches the running server (like a Deployment\'s strategy)'),
  remote: Remote.optional().describe('A hosted server apiary fronts at its own endpoint instead of running a command; spec.env holds the values its headers refer to'),
  image: z.string().regex(/^[a-z0-9]+([._/:@-][A-Za-z0-9_.-]+)*$/, { error: 'must be a container image reference, e.g. node:20-slim or ghcr.io/org/server:1.2' }).optional().describe('Container image the command runs in on Kubernetes (apiary up --runtime kubernetes, apiary render); unused by local processes'),
  rateLimits: ServerRateLimits.optional().describe("This server's token buckets, in place of the Gateway's perServer and perTool (no restart when this changes)"),
  sandbox: Sandbox.optional().describe('Run the command under bubblewrap (Linux): its own user, mount, PID, IPC and network namespaces, only the paths granted; where bubblewrap cannot run, the server is Stuck (SandboxUnavailable), never run unsandboxed. An HTTP server is reached on its $PORT through a forwarder apiary runs in the sandbox. A sandboxed server goes with the controller and is started again by the next (never adopted). On Kubernetes, network becomes a NetworkPolicy (host names are not enforced there: only the port)'),
  resources: ResourceRequirements.optional().describe("The container's CPU and memory requests and limits on Kubernetes (a Deployment's resources); unused by local processes"),
  podSecurity: z
    .enum(POD_SECURITY_LEVELS)
    .optional()
    .describe('The securityContext on Kubernetes. restricted (default): non-root (uid 65532), read-only root filesystem with emptyDirs for /tmp and $HOME (/home/apiary), all capabilities dropped, no privilege escalation, RuntimeDefault seccomp. baseline: none of that, the image runs as its own user (the way out for an image that needs root or writes its root filesystem). Unused by local processes'),
})
  .refine((spec) => spec.sandbox === undefined || spec.remote === undefined, {
    message: 'a hosted server (spec.remote) runs nothing locally to sandbox',
    path: ['sandbox'],
  })
  .refine((spec) => !(spec.strategy?.type === 'RollingUpdate' && (spec.transport ?? 'stdio') !== 'stdio'), {
    message: 'RollingUpdate needs transport stdio: an HTTP server keeps its own sessions, which a new process cannot take over; use Recreate',
    path: ['strategy', 'type'],
  })
  .refine((spec) => spec.command !== undefined || spec.remote !== undefined, {
    message: 'required field is missing (or spec.remote, for a hosted server apiary fronts)',
    path: ['command'],
  })
  .refine((spec) => spec.command === undefined || spec.remote === undefined, {
    message: 'set either command (a server apiary runs) or remote (a hosted one apiary fronts), not both',
    path: ['command'],
  })
  .refine((spec) => spec.remote === undefined || (spec.args === undefined && spec.workingDir === undefined && spec.transport === undefined), {
    message: 'args, workingDir and transport are for a command; a remote server has remote.url and remote.transport',
    path: ['remote'],
  })
  .superRefine((spec, ctx) => {
    // A literal of spec.env put into a header must be sendable too (a secret's value is checked when it is resolved).
    const literals = new Map((spec.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
    (spec.remote?.headers ?? []).forEach((header, i) => {
      const flaw = headerValueFlaw(expandReferences(header.value, (name) => literals.get(name)));
      if (flaw !== undefined && headerValueFlaw(header.value) === undefined) {
        ctx.addIssue({ code: 'custom', path: ['remote', 'headers', i, 'value'], message: `holds ${flaw} once its $(VAR) is replaced by spec.env's value; ${HEADER_VALUE_RULE}` });
      }
    });
    // The URL must parse, or the gateway could not front it; when a secret may fill it, it is checked when resolved.
    const url = spec.remote?.url;
    const fromSecret = (name: string): boolean => (spec.envFrom ?? []).length > 0 || (spec.env ?? []).some((e) => e.name === name && e.valueFrom !== undefined);
    if (url !== undefined && !referencedNames(url).some(fromSecret) && !URL.canParse(expandReferences(url, (name) => literals.get(name)))) {
      ctx.addIssue({ code: 'custom', path: ['remote', 'url'], message: `is not a valid URL${referencedNames(url).some((name) => literals.has(name)) ? " once its $(VAR) is replaced by spec.env's value" : ''}` });
    }
  });

const META_DESCRIPTION = 'Name, labels and annotations';
const API_VERSION_DESCRIPTION = 'The version of the schema this document follows';
const KIND_DESCRIPTION = 'What the document declares';

export const MCPServerManifest = z.strictObject({
  apiVersion: z.literal(API_GROUP_VERSION).describe(API_VERSION_DESCRIPTION),
  kind: z.literal('MCPServer').describe(KIND_DESCRIPTION),
  metadata: ObjectMeta.describe(META_DESCRIPTION),
  spec: MCPServerSpec.describe('How to run the server'),
}).describe('An MCP server apiary runs, restarts on change and serves over HTTP');

const stringMap = z.record(secretKeyName, z.string());

/** apiary:v1 (this machine's key) or apiary:v2 (an age file for the recipients file's members). */
export const SEALED_VALUE = /^(?:apiary:v1:[0-9a-f]{8,64}:|apiary:v2:)[A-Za-z0-9_-]+$/;
const BASE64_RULE = 'must be base64 (use stringData for plain text)';
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const SECRET_TYPE = 'Kubernetes Secret type (e.g. Opaque); kept, not used';
const DATA = 'Base64 values (Kubernetes compatibility; not encrypted: `apiary seal` encrypts them)';
const STRING_DATA = 'Plain text values (local demos only; `apiary seal` encrypts them)';

export const ApiarySecretManifest = z
  .strictObject({
    apiVersion: z.literal(API_GROUP_VERSION).describe(API_VERSION_DESCRIPTION),
    kind: z.literal('Secret').describe(KIND_DESCRIPTION),
    metadata: ObjectMeta.describe(META_DESCRIPTION),
    type: z.string().optional().describe(SECRET_TYPE),
    encryptedData: z
      .record(secretKeyName, z.string().regex(SEALED_VALUE, { error: 'must be a value sealed by apiary (apiary:v1:<keyid>:<data> or apiary:v2:<data>)' }))
      .optional()
      .describe('Values sealed by apiary (`apiary secret set`, `apiary seal`); safe to commit'),
    stringData: stringMap.optional().describe(STRING_DATA),
    data: z.record(secretKeyName, z.string().regex(BASE64, { error: BASE64_RULE })).optional().describe(DATA),
  })
  .describe('Named values MCPServers read into their environment; a key may appear in only one of encryptedData, stringData and data');

export const KubernetesSecretManifest = z
  .strictObject({
    apiVersion: z.literal('v1').describe(API_VERSION_DESCRIPTION),
    kind: z.literal('Secret').describe(KIND_DESCRIPTION),
    metadata: ObjectMeta.describe(META_DESCRIPTION),
    type: z.string().optional().describe(SECRET_TYPE),
    immutable: z.boolean().optional().describe('Kubernetes only; apiary ignores it'),
    stringData: stringMap.optional().describe(STRING_DATA),
    data: z.record(secretKeyName, z.string().regex(BASE64, { error: BASE64_RULE })).optional().describe(DATA),
  })
  .describe('A plain Kubernetes Secret, accepted as it is; `apiary seal` turns it into an apiary Secret with sealed values');

/** A duration as Flux writes it: `30s`, `1m`, `1h30m`, `1.5h` (Flux's pattern; util/duration.ts reads every one, as a test checks). */
export const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;

export const GitRepositoryRef = z
  .strictObject({
    branch: z.string().min(1).optional().describe('Follow this branch'),
    tag: z.string().min(1).optional().describe('Pin to this tag'),
    commit: z.string().regex(/^[0-9a-f]{40}$/, { error: 'must be a full 40-character commit sha' }).optional().describe('Pin to this commit'),
    name: z.string().min(1).optional().describe('A branch, else a tag, of this name (what `up --ref` writes)'),
  })
  .refine((r) => [r.branch, r.tag, r.commit, r.name].filter((v) => v !== undefined).length === 1, { error: 'set exactly one of branch, tag, commit, name' });

export const GitRepositorySpec = z.strictObject({
  url: z
    .string()
    .min(1)
    .refine((u) => !u.startsWith('-'), { error: 'must be a repository URL or path, not an option' })
    .describe('The repository: https://, ssh://, git@host:path, file:// or a local path; fetched with the `git` command and your usual credentials (SSH agent, credential helpers)'),
  ref: GitRepositoryRef.optional().describe("What to follow; default: the remote's default branch"),
  path: z
    .string()
    .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), { error: 'must be a relative path inside the repository, without ".."' })
    .optional()
    .describe('The folder in the repository that holds the manifests (default: the top)'),
  interval: z.string().regex(DURATION, { error: 'must be a duration such as 30s, 1m or 1h' }).optional().describe('How often to fetch (default 1m)'),
  timeout: z.string().regex(DURATION, { error: 'must be a duration such as 30s, 1m or 1h' }).optional().describe('How long one fetch may take (default 60s)'),
  suspend: z.boolean().optional().describe('Stop fetching (what `apiary suspend source` sets); what runs stays as it is'),
});

/** The envelope every apiary.dev kind shares: apiVersion, kind, metadata and its spec. */
function apiaryKind<K extends string, M extends z.ZodType, S extends z.ZodType>(kind: K, metadata: M, spec: S) {
  return z.strictObject({
    apiVersion: z.literal(API_GROUP_VERSION).describe(API_VERSION_DESCRIPTION),
    kind: z.literal(kind).describe(KIND_DESCRIPTION),
    metadata: metadata.describe(META_DESCRIPTION),
    spec,
  });
}

export const GitRepositoryManifest = apiaryKind('GitRepository', ObjectMeta, GitRepositorySpec.describe('The repository apiary follows'))
  .describe('A git repository whose manifests apiary runs: fetched on an interval, each revision validated whole and switched to atomically');

/**
 * An issuer (or JWKS URL) apiary fetches keys from: https, or http only on
 * this machine's loopback (a test provider, a local Keycloak). A token's
 * signature is only as good as the channel its keys came over.
 */
export function isTrustedKeyUrl(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const url = new URL(text);
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && (url.hostname === 'localhost' || url.hostname === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(url.hostname));
}

const KEY_URL_RULE = 'must be an https:// URL (http:// only for a loopback address such as 127.0.0.1 or localhost)';
const keyUrl = z.string().refine(isTrustedKeyUrl, { error: KEY_URL_RULE });

export const AUTH_MODES = ['token', 'oidc', 'none'] as const;

const ScopeToken = z.string().regex(OAUTH_SCOPE, { error: 'must be an OAuth scope: printable characters without spaces, quotes or backslashes' });

export const GatewayOidc = z.strictObject({
  issuer: keyUrl.describe("The OpenID provider's issuer URL, exactly as tokens carry it in iss; its keys are found by OIDC discovery unless jwksURL is set"),
  audience: z.string().min(1).describe('What tokens must carry in aud (RFC 8707): the resource apiary is to the provider'),
  usernameClaim: z.string().min(1).optional().describe('The claim that names the caller (default sub)'),
  groupsClaim: z.string().min(1).optional().describe('The claim that lists the caller\'s groups, a list of strings (default groups)'),
  jwksURL: keyUrl.optional().describe("Where the provider's signing keys are, when discovery should not be used"),
  requiredScopes: z.array(ScopeToken).optional().describe('Scopes every token must carry (default none: some clients ask for no scope); a token without them is answered 403 insufficient_scope'),
  scopes: z.array(ScopeToken).optional().describe('Scopes clients are told to ask for (the metadata\'s scopes_supported and the 401\'s scope), beside requiredScopes: for a provider that refuses a login asking for none (e.g. openid); not checked in tokens'),
});

export const GatewayAuth = z
  .strictObject({
    mode: z.enum(AUTH_MODES).optional().describe('token (default): the bearer token in the state directory, as without a Gateway; oidc: access tokens from an OpenID provider, and nothing is allowed until an AccessPolicy allows it; none: no authentication (as up --no-auth)'),
    oidc: GatewayOidc.optional().describe('The OpenID provider whose access tokens apiary accepts (mode oidc)'),
  })
  .refine((auth) => auth.mode !== 'oidc' || auth.oidc !== undefined, { message: 'required field is missing (mode oidc needs the provider: issuer and audience)', path: ['oidc'] });

export const GatewayAudit = z.strictObject({
  enabled: z.boolean().optional().describe('Write the audit log (default true): one JSON line per call, denial and failed authentication, chained by hash, under the state directory'),
  maxFileBytes: z.int().min(65536, { error: 'must be at least 65536' }).optional().describe('The size at which the log is rotated to a new file (default 10 MiB)'),
  maxFiles: z.int().min(1, { error: 'must be at least 1' }).optional().describe('How many rotated files are kept beside the current one (default 5)'),
});

export const GatewayTelemetry = z.strictObject({
  otlp: z
    .strictObject({
      endpoint: z.string().regex(/^https?:\/\/\S+$/, { error: 'must be an http:// or https:// URL' }).describe('The OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (traces to /v1/traces, metrics to /v1/metrics)'),
      intervalSeconds: z.int().min(1, { error: 'must be at least 1' }).optional().describe('How often metrics are exported (default 60)'),
    })
    .optional()
    .describe('Export traces and metrics over OTLP/HTTP'),
  prometheus: z
    .strictObject({
      port: z.int().min(1, { error: PORT_RULE }).max(65535, { error: PORT_RULE }).describe('The port of the /metrics endpoint'),
      address: z.string().min(1).optional().describe('The address it listens on (default 127.0.0.1)'),
    })
    .optional()
    .describe('Serve metrics at /metrics for Prometheus to scrape'),
  serviceName: z.string().min(1).optional().describe('service.name of the spans and metrics (default apiary)'),
});

const SERVER_GLOB_RULE = 'must be a server name or a glob: lowercase letters, digits, "-", * and ?';
const SERVER_GLOB = /^[a-z0-9*?-]+$/;
const serverGlob = z.string().regex(SERVER_GLOB, { error: SERVER_GLOB_RULE });

/** A resource URI or a glob of them; URIs may hold brackets (IPv6 hosts), so only spaces are refused. */
const uriGlob = z.string().regex(/^[^\s\0]+$/, { error: 'must be a resource URI or a glob (* and ?), without spaces' });

export const ToolRateLimit = RateLimit.extend({
  server: serverGlob.optional().describe('The servers it applies to (a name or a glob; default every server)'),
  tool: nameGlob.describe('The tools it applies to (a name or a glob)'),
});

export const GatewayRateLimits = z.strictObject({
  perSubject: RateLimit.optional().describe('Calls each caller may make, across servers (a server\'s own spec.rateLimits.perSubject adds a limit per caller there)'),
  perServer: RateLimit.optional().describe('Calls each server may receive, across callers (a server\'s own spec.rateLimits.perServer replaces it for that server)'),
  perTool: z.array(ToolRateLimit).optional().describe('Calls each matching tool may receive, across callers: one bucket per rule and tool (a server\'s own spec.rateLimits.perTool replaces these rules for that server)'),
});

export const GatewaySpec = z.strictObject({
  auth: GatewayAuth.optional().describe('Who may reach apiary\'s endpoints'),
  audit: GatewayAudit.optional().describe('The audit log of calls and denials'),
  telemetry: GatewayTelemetry.optional().describe('OpenTelemetry traces and metrics'),
  rateLimits: GatewayRateLimits.optional().describe('Token buckets: a call over a limit is answered with a JSON-RPC error and a retry-after hint'),
});

export const GATEWAY_NAME = 'default';

export const GatewayManifest = apiaryKind(
  'Gateway',
  ObjectMeta.refine((m) => m.name === GATEWAY_NAME, { message: `must be "${GATEWAY_NAME}": a directory has one Gateway`, path: ['name'] }),
  GatewaySpec.optional().describe('How apiary\'s endpoints authenticate, audit, trace and limit'),
)
  .describe('How apiary\'s endpoints authenticate callers, keep an audit log, export telemetry and limit rates; one per directory, named default (without one: the bearer token, as always)');

export const ACCESS_EFFECTS = ['Allow', 'Deny'] as const;

export const AccessSubject = z
  .strictObject({
    user: z.string().min(1).optional().describe('A user, as the token\'s usernameClaim names them (oidc)'),
    group: z.string().min(1).optional().describe('Everyone in this group (the token\'s groupsClaim)'),
    authenticated: z.literal(true).optional().describe('true: every user an OpenID token proved (not the local token)'),
    token: z.literal('local').optional().describe('local: whoever holds the state directory\'s bearer token (apiary ui, client config, token mode)'),
  })
  .refine((s) => [s.user, s.group, s.authenticated, s.token].filter((v) => v !== undefined).length === 1, { message: 'set exactly one of user, group, authenticated, token' });

export const AccessRule = z.strictObject({
  servers: z.array(serverGlob).min(1, { error: 'must name at least one server (or "*")' }).describe('The servers the rule covers: names or globs ("*" for all)'),
  tools: z.array(nameGlob).optional().describe('The tools it covers (names or globs); without tools, prompts and resources: everything of those servers'),
  prompts: z.array(nameGlob).optional().describe('The prompts it covers (names or globs)'),
  resources: z.array(uriGlob).optional().describe('The resources it covers (URIs or globs)'),
  effect: z.enum(ACCESS_EFFECTS).describe('Allow or Deny; a Deny that matches wins over every Allow'),
});

export const AccessPolicySpec = z.strictObject({
  subjects: z.array(AccessSubject).min(1, { error: 'must name at least one subject' }).describe('Who the rules apply to: user, group, authenticated: true, or token: local'),
  rules: z.array(AccessRule).min(1, { error: 'must have at least one rule' }).describe('What they may (Allow) or may not (Deny) use'),
});

export const AccessPolicyManifest = apiaryKind('AccessPolicy', ObjectMeta, AccessPolicySpec.describe('Subjects and the rules that apply to them'))
  .describe('Which callers may use which servers, tools, prompts and resources; Deny wins over Allow, and with auth mode oidc nothing is allowed until a policy allows it');

export type ObjectMeta = z.infer<typeof ObjectMeta>;
export type GitRepositoryManifest = z.infer<typeof GitRepositoryManifest>;
export type GitRepositorySpec = z.infer<typeof GitRepositorySpec>;
export type GatewayManifest = z.infer<typeof GatewayManifest>;
export type GatewaySpec = z.infer<typeof GatewaySpec>;
export type AccessPolicyManifest = z.infer<typeof AccessPolicyManifest>;
export type AccessRule = z.infer<typeof AccessRule>;
export type AccessSubject = z.infer<typeof AccessSubject>;
export type AuthMode = (typeof AUTH_MODES)[number];
export type RateLimit = z.infer<typeof RateLimit>;
export type GatewayRateLimits = z.infer<typeof GatewayRateLimits>;
export type ServerRateLimits = z.infer<typeof ServerRateLimits>;
export type EnvVar = z.infer<typeof EnvVar>;
export type EnvFromSource = z.infer<typeof EnvFromSource>;
export type MCPServerSpec = z.infer<typeof MCPServerSpec>;
export type Sandbox = z.infer<typeof Sandbox>;
export type HealthCheck = z.infer<typeof HealthCheck>;
export type MCPServerManifest = z.infer<typeof MCPServerManifest>;
export type ApiarySecretManifest = z.infer<typeof ApiarySecretManifest>;
export type KubernetesSecretManifest = z.infer<typeof KubernetesSecretManifest>;
export type SecretManifest = ApiarySecretManifest | KubernetesSecretManifest;
export type Transport = (typeof TRANSPORTS)[number];
export type RestartPolicy = (typeof RESTART_POLICIES)[number];

// Our env entries are Kubernetes EnvVars: a Kubernetes runtime can pass them on.
export const envVarIsKubernetesShaped = (e: EnvVar): V1EnvVar => e;

/** The schema for each (apiVersion, kind) apiary accepts. */
export const MANIFEST_SCHEMAS = [
  { apiVersion: API_GROUP_VERSION, kind: 'MCPServer', schema: MCPServerManifest },
  { apiVersion: API_GROUP_VERSION, kind: 'Secret', schema: ApiarySecretManifest },
  { apiVersion: 'v1', kind: 'Secret', schema: KubernetesSecretManifest },
  { apiVersion: API_GROUP_VERSION, kind: 'GitRepository', schema: GitRepositoryManifest },
  { apiVersion: API_GROUP_VERSION, kind: 'Gateway', schema: GatewayManifest },
  { apiVersion: API_GROUP_VERSION, kind: 'AccessPolicy', schema: AccessPolicyManifest },
] as const;
