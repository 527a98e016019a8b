/**
 * Parses one manifest file's text into documents: each either a valid
 * resource or a list of located errors. One bad document never hides the
 * good ones beside it.
 */
import { LineCounter, parseAllDocuments, isMap, isScalar, type Document } from 'yaml';
import { MANIFEST_SCHEMAS, type GatewayManifest, type GatewayRateLimits, type MCPServerManifest } from '../api/manifests.js';
import { secretBearing } from '../api/expansion.js';
import { referencedNames } from '../api/remote.js';
import { KINDS, type Kind } from '../api/names.js';
import { closest } from '../util/suggest.js';
import type { ManifestError } from './errors.js';
import { checkManifest } from './check-manifest.js';
import { locate, type Position } from './locate.js';
import { gatewayUrlFields } from './access.js';
import { slowRateWarnings } from './rate-limits.js';
import type { Resource, SourceRef } from './resource.js';

/** An http(s) URL with a user (and maybe a password) before the host: what redactUrl shows as ***. */
const CREDENTIALS_IN_URL = /^https?:\/\/([^/@]*)@/i;

export interface ParsedDocument {
  source: SourceRef;
  /** Known once the document names a kind apiary understands. */
  kind?: Kind;
  /** Known once metadata.name is a string, even if the document is invalid. */
  name?: string;
  /** Where metadata.name is, for conflict reports. */
  namePosition?: Position;
  resource?: Resource;
  errors: ManifestError[];
  warnings: ManifestError[];
  /** The document's own text, comments included. */
  text: string;
}

const MAX_ALIASES = 100;
const SECRET_MAPS = ['encryptedData', 'stringData', 'data'] as const;

export function parseManifestText(text: string, path: string, file: string): ParsedDocument[] {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [];
  const results: ParsedDocument[] = [];
  list.forEach((doc, index) => {
    const parsed = parseDocument(doc, text, lineCounter, { path, file, index });
    if (parsed !== undefined) results.push(parsed);
  });
  return results;
}

function documentText(doc: Document, text: string): string {
  const [start, , end] = doc.range ?? [0, 0, text.length];
  return text.slice(start, end);
}

function isEmptyDocument(doc: Document): boolean {
  if (doc.errors.length > 0) return false;
  return doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null);
}

function parseDocument(
  doc: Document,
  text: string,
  lc: LineCounter,
  where: { path: string; file: string; index: number },
): ParsedDocument | undefined {
  if (isEmptyDocument(doc)) return undefined;
  const start = lc.linePos(doc.contents?.range?.[0] ?? doc.range?.[0] ?? 0);
  const source: SourceRef = { ...where, line: start.line, col: start.col };
  const result: ParsedDocument = { source, errors: [], warnings: [], text: documentText(doc, text) };
  const error = (pos: Position, message: string, field?: string): void => {
    result.errors.push({ file: where.file, line: pos.line, col: pos.col, message, ...(field ? { field } : {}) });
  };

  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const pos = e.linePos?.[0] ?? { line: start.line, col: start.col };
      error({ line: pos.line, col: pos.col }, `YAML syntax error: ${yamlMessage(e.message)}`);
    }
    return result;
  }
  if (!isMap(doc.contents)) {
    error(start, 'document must be a mapping with apiVersion, kind, metadata');
    return result;
  }

  let input: unknown;
  try {
    input = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (e) {
    error(start, `YAML error: ${yamlMessage(e instanceof Error ? e.message : String(e))}`);
    return result;
  }
  const object = input as Record<string, unknown>;
  const metadata = object['metadata'];
  if (metadata !== null && typeof metadata === 'object' && typeof (metadata as Record<string, unknown>)['name'] === 'string') {
    result.name = (metadata as Record<string, string>)['name'];
    result.namePosition = locate(doc, ['metadata', 'name'], lc);
  }

  const schema = chooseSchema(object, (path, message) => error(locate(doc, path, lc), message, path.join('.')));
  if (schema === undefined) {
    const kind = object['kind'];
    if (typeof kind === 'string' && (KINDS as readonly string[]).includes(kind)) result.kind = kind as Kind;
    return result;
  }
  result.kind = schema.kind;

  const parsed = checkManifest(schema.apiVersion, schema.kind, input);
  if (!parsed.success) {
    for (const p of parsed.problems) {
      error(locate(doc, p.path, lc, { atKey: p.atKey }), p.message);
    }
  }
  if (schema.kind === 'Secret') checkSecretMaps(object, doc, lc, error, result);
  if (schema.kind === 'MCPServer' && parsed.success) {
    warnVariableReferences(parsed.data as MCPServerManifest, doc, lc, result);
    const url = (parsed.data as MCPServerManifest).spec.remote?.url;
    // https://$(USER):$(TOKEN)@host is the way to do it: names of variables bound to a Secret, no value in the file.
    const userinfo = url === undefined ? undefined : CREDENTIALS_IN_URL.exec(url)?.[1];
    if (userinfo !== undefined && !/^(?:\$\([A-Za-z_][A-Za-z0-9_]*\)|:)*$/.test(userinfo)) {
      const pos = locate(doc, ['spec', 'remote', 'url'], lc);
      result.warnings.push({ file: where.file, line: pos.line, col: pos.col, field: 'spec.remote.url', message: 'spec.remote.url: credentials in the URL are readable by anyone who reads this file (get and describe show them as ***); put them in a Secret and write $(VAR) in their place, with VAR bound in spec.env' });
    }
  }
  if (schema.kind === 'GitRepository' && parsed.success) {
    const url = (parsed.data as { spec: { url: string } }).spec.url;
    if (CREDENTIALS_IN_URL.test(url)) {
      const pos = locate(doc, ['spec', 'url'], lc);
      result.warnings.push({ file: where.file, line: pos.line, col: pos.col, field: 'spec.url', message: 'spec.url: credentials in the URL are readable by anyone who reads this file (apiary never shows them); prefer a git credential helper or an SSH URL' });
    }
  }
  if (schema.kind === 'Gateway' && parsed.success) {
    warnUnusedOidc(parsed.data as GatewayManifest, doc, lc, result);
    for (const { path, url } of gatewayUrlFields((parsed.data as GatewayManifest).spec)) {
      if (!CREDENTIALS_IN_URL.test(url)) continue;
      const pos = locate(doc, path, lc);
      const field = path.join('.');
      result.warnings.push({ file: where.file, line: pos.line, col: pos.col, field, message: `${field}: credentials in the URL are readable by anyone who reads this file (get, describe and the console show them as ***)` });
    }
  }
  if ((schema.kind === 'Gateway' || schema.kind === 'MCPServer') && parsed.success) {
    result.warnings.push(...slowRateWarnings((parsed.data as { spec?: { rateLimits?: GatewayRateLimits } }).spec?.rateLimits, doc, lc, where.file));
  }
  if (result.errors.length === 0 && parsed.success && result.name !== undefined) {
    result.resource = { kind: schema.kind, name: result.name, manifest: parsed.data, source } as Resource;
    // A policy decision names the rule's own line, the place to edit.
    if (result.resource.kind === 'AccessPolicy') result.resource.ruleLines = result.resource.manifest.spec.rules.map((_, i) => locate(doc, ['spec', 'rules', i], lc).line);
    if (result.resource.kind === 'Gateway') result.resource.perToolAt = (result.resource.manifest.spec?.rateLimits?.perTool ?? []).map((_, i) => locate(doc, ['spec', 'rateLimits', 'perTool', i], lc));
  }
  return result;
}

type SchemaEntry = (typeof MANIFEST_SCHEMAS)[number];

function chooseSchema(
  object: Record<string, unknown>,
  error: (path: string[], message: string) => void,
): SchemaEntry | undefined {
  const apiVersion = object['apiVersion'];
  const kind = object['kind'];
  if (apiVersion === undefined) error(['apiVersion'], 'apiVersion: required field is missing');
  if (kind === undefined) error(['kind'], 'kind: required field is missing');
  if (apiVersion === undefined || kind === undefined) return undefined;
  if (typeof kind !== 'string' || !(KINDS as readonly string[]).includes(kind)) {
    const suggestion = typeof kind === 'string' ? closest(kind, KINDS) : undefined;
    error(
      ['kind'],
      `kind: unknown kind ${JSON.stringify(kind)}; expected ${KINDS.slice(0, -1).join(', ')} or ${KINDS.at(-1)!}${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`,
    );
    return undefined;
  }
  const entry = MANIFEST_SCHEMAS.find((s) => s.apiVersion === apiVersion && s.kind === kind);
  if (entry === undefined) {
    const accepted = MANIFEST_SCHEMAS.filter((s) => s.kind === kind).map((s) => s.apiVersion);
    error(['apiVersion'], `apiVersion: unknown apiVersion ${JSON.stringify(apiVersion)} for kind ${kind}; expected ${accepted.join(' or ')}`);
  }
  return entry;
}

/**
 * `$(VAR)` in command and args is expanded as Kubernetes does (api/expansion.ts).
 * Two uses deserve a word where they are written: a variable bound to a
 * secret, whose value then sits in the command line, readable by every local
 * user in the process list (/proc/PID/cmdline); and a name spec.env does not
 * declare, which stays as written (a typo, most likely).
 */
function warnVariableReferences(manifest: MCPServerManifest, doc: Document, lc: LineCounter, result: ParsedDocument): void {
  const spec = manifest.spec;
  const fromEnvFrom = (spec.envFrom ?? []).length > 0;
  const secret = secretBearing((spec.env ?? []).map((e) => ({ name: e.name, ...(e.value !== undefined ? { value: e.value } : {}), fromSecret: e.valueFrom !== undefined })));
  const declared = new Set([...(spec.env ?? []).map((e) => e.name), ...((spec.transport ?? 'stdio') !== 'stdio' ? ['PORT'] : [])]);
  const fields: [(string | number)[], string][] = [...(spec.command !== undefined ? [[['spec', 'command'], spec.command] as [(string | number)[], string]] : []), ...(spec.args ?? []).map((a, i): [(string | number)[], string] => [['spec', 'args', i], a])];
  for (const [path, text] of fields) {
    const field = path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i > 0 ? '.' : ''}${p}`)).join('');
    for (const name of referencedNames(text)) {
      const message = secret.has(name) || (fromEnvFrom && !declared.has(name))
        ? `${field}: "$(${name})" puts ${secret.has(name) ? `a secret (spec.env ${name})` : `${name}, which can only come from envFrom's secrets,`} into the command line, where every local user can read it in the process list; where the server can read ${name} from its environment, drop the argument`
        : declared.has(name)
          ? undefined
          : `${field}: "$(${name})" is passed as written: spec.env declares no ${name} (write $$(${name}) for a literal "$(${name})")`;
      if (message === undefined) continue;
      const pos = locate(doc, path, lc);
      result.warnings.push({ file: result.source.file, line: pos.line, col: pos.col, field, message });
    }
  }
}

/** An oidc block under another mode is kept but not used: worth a word, not an error (switching modes back and forth is normal). */
function warnUnusedOidc(manifest: GatewayManifest, doc: Document, lc: LineCounter, result: ParsedDocument): void {
  const auth = manifest.spec?.auth;
  if (auth?.oidc === undefined || auth.mode === 'oidc') return;
  const pos = locate(doc, ['spec', 'auth', 'oidc'], lc, { atKey: true });
  result.warnings.push({ file: result.source.file, line: pos.line, col: pos.col, field: 'spec.auth.oidc', message: `spec.auth.oidc: not used while spec.auth.mode is ${auth.mode ?? 'token (the default)'}` });
}

function checkSecretMaps(
  object: Record<string, unknown>,
  doc: Document,
  lc: LineCounter,
  error: (pos: Position, message: string) => void,
  result: ParsedDocument,
): void {
  const firstSeenIn = new Map<string, string>();
  for (const map of SECRET_MAPS) {
    const values = object[map];
    if (values === null || typeof values !== 'object' || Array.isArray(values)) continue;
    for (const key of Object.keys(values)) {
      const earlier = firstSeenIn.get(key);
      if (earlier !== undefined) {
        error(
          locate(doc, [map, key], lc, { atKey: true }),
          `${map}.${key}: key "${key}" is also set in ${earlier}; a key may appear in only one of encryptedData, stringData and data`,
        );
      } else {
        firstSeenIn.set(key, map);
      }
    }
    if (map !== 'encryptedData' && Object.keys(values).length > 0) {
      const pos = locate(doc, [map], lc, { atKey: true });
      result.warnings.push({
        file: result.source.file,
        line: pos.line,
        col: pos.col,
        message: `${map} holds unencrypted values; ${result.source.path === '-' ? 'once written, "apiary seal FILE" encrypts them' : `run "apiary seal ${result.source.file}" to encrypt them`}`,
        code: 'PlaintextValues',
      });
    }
  }
}

/** yaml's pretty messages carry a position suffix and a source excerpt; we print our own. */
function yamlMessage(message: string): string {
  const firstLine = message.split('\n')[0] ?? message;
  return firstLine.replace(/ at line \d+, column \d+:?$/, '');
}
