/**
 * Catalogs of installable servers in the MCP Registry's server.json form:
 * the small one bundled with apiary, any server.json file or folder of them,
 * and a registry's `/v0.1/servers` API. An entry that does not validate is
 * reported with where it came from and which field is wrong, and skipped;
 * one bad entry never hides the others.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ApiaryError, messageOf } from '../errors.js';
import { namesApiary } from '../util/package-dir.js';
import type { RegistryAnswer, RegistryCache } from './registry-cache.js';
import { fieldPath, ServerJson } from './server-json.js';

/** The most apiary reads of one registry page: a registry answering more is refused, never held in memory. */
export const REGISTRY_PAGE_LIMIT_BYTES = 4 * 1024 * 1024;

export interface CatalogEntry {
  server: ServerJson;
  /** Where it came from: "bundled", a file path, or a registry URL. */
  source: string;
}

export interface CatalogProblem {
  /** The file (or URL, with the entry's index) the entry came from. */
  where: string;
  field: string;
  message: string;
}

export interface CatalogListing {
  entries: CatalogEntry[];
  problems: CatalogProblem[];
}

/** Entries from a file or registry that take the name of a bundled entry: left out, since the bundled one is vetted (it ships with apiary, and a test starts it). */
export interface CatalogShadow {
  name: string;
  /** The file or registry URL they came from. */
  source: string;
  versions: string[];
  bundledVersion: string;
}

/** What `loadCatalog` found: the entries, the ones skipped, and the ones left out for a bundled name. */
export interface LoadedCatalog extends CatalogListing {
  shadowed: CatalogShadow[];
}

export interface CatalogOptions {
  /** Include the catalog bundled with apiary (default true). */
  bundled?: boolean;
  /** server.json files, or folders of them. */
  paths?: readonly string[];
  /** Registry base URLs (the official one: https://registry.modelcontextprotocol.io). */
  registries?: readonly string[];
  /** At most this many pages of 100 from each registry (default 5). */
  registryPages?: number;
  fetch?: typeof fetch;
  /** Registry answers kept for a while (the console's); none by default, so a CLI verb reads afresh. */
  cache?: RegistryCache;
}

/** The folder of server.json files shipped with apiary: beside its package.json, found from the running script. */
export function bundledCatalogDir(): string | undefined {
  const starts = [process.argv[1] ? dirname(resolve(process.argv[1])) : undefined, process.cwd()].filter((s): s is string => s !== undefined);
  for (const start of starts) {
    for (let dir = start; ; dir = dirname(dir)) {
      if (existsSync(join(dir, 'catalog')) && namesApiary(join(dir, 'package.json'))) return join(dir, 'catalog');
      if (dirname(dir) === dir) break;
    }
  }
  return undefined;
}

/** Every entry of every source asked for; with `search`, registries are asked to search and files are filtered the same way. */
export async function loadCatalog(options: CatalogOptions, search?: string): Promise<LoadedCatalog> {
  const listing: CatalogListing = { entries: [], problems: [] };
  const add = (more: CatalogListing): void => {
    listing.entries.push(...more.entries);
    listing.problems.push(...more.problems);
  };
  if (options.bundled !== false) {
    const dir = bundledCatalogDir();
    if (dir !== undefined) add(await readPath(dir, 'bundled'));
  }
  for (const path of options.paths ?? []) add(await readPath(resolve(path)));
  for (const url of options.registries ?? []) add(await registryListing(url, search, options));
  const { entries, shadowed } = withoutShadows(listing.entries);
  return { entries: search !== undefined ? ranked(entries.filter((e) => matches(e.server, search)), search) : entries, problems: listing.problems, shadowed };
}

/**
 * A name the bundled catalog has is the bundled entry's: an entry from
 * elsewhere with that name (at any version, a higher one included) is left
 * out and reported, so a registry cannot swap its package in under a vetted
 * name. Leaving the bundled catalog out is how to choose the other.
 */
function withoutShadows(entries: readonly CatalogEntry[]): { entries: CatalogEntry[]; shadowed: CatalogShadow[] } {
  const bundled = new Map<string, string>();
  for (const e of entries) {
    const newest = bundled.get(e.server.name);
    if (e.source === 'bundled' && (newest === undefined || compareVersions(e.server.version, newest) > 0)) bundled.set(e.server.name, e.server.version);
  }
  const shadows = new Map<string, CatalogShadow>();
  const kept: CatalogEntry[] = [];
  for (const e of entries) {
    const bundledVersion = bundled.get(e.server.name);
    if (e.source === 'bundled' || bundledVersion === undefined) {
      kept.push(e);
      continue;
    }
    const key = `${e.server.name}\n${e.source}`;
    const shadow = shadows.get(key) ?? { name: e.server.name, source: e.source, versions: [], bundledVersion };
    shadow.versions.push(e.server.version);
    shadows.set(key, shadow);
  }
  return { entries: kept, shadowed: [...shadows.values()] };
}

/** A shadowed name in words (the CLI adds how to choose the other). */
export function shadowWarning(shadow: CatalogShadow): string {
  return `${shadow.source} has ${shadow.name} ${shadow.versions.join(', ')}, the name of an entry bundled with apiary; the bundled one (${shadow.bundledVersion}) is used`;
}

function words(search: string): string[] {
  return search.toLowerCase().split(/\s+/).filter(Boolean);
}

/**
 * Case-insensitive, on the name, title and description; every word must
 * appear. Of a name's reverse-DNS owner only its last part counts
 * (`io.github.brave` is `brave`): every name on GitHub holds "git", so a
 * search for git would otherwise find every server. A word with a dot or a
 * slash is looked for in the whole name (a full name pasted).
 */
export function matches(server: ServerJson, search: string): boolean {
  const [owner = '', last = ''] = server.name.toLowerCase().split('/');
  const text = `${owner.split('.').pop() ?? ''} ${last} ${server.title ?? ''} ${server.description}`.toLowerCase();
  const name = server.name.toLowerCase();
  return words(search).every((word) => (/[./]/.test(word) ? name.includes(word) : text.includes(word)));
}

/**
 * Matches in the order a person means them, as package searches rank: the
 * entry a word names (its short name, or its title, is the search) first,
 * then those whose name and title hold every word, then the rest (found in
 * a description or an owner's name); the catalog's own order within each.
 */
function ranked(entries: readonly CatalogEntry[], search: string): CatalogEntry[] {
  const wanted = words(search);
  const rank = (server: ServerJson): number => {
    const short = shortName(server.name);
    const title = (server.title ?? '').toLowerCase();
    if (wanted.join(' ') === short || wanted.join('-') === short || wanted.join(' ') === title) return 0;
    const nameAndTitle = `${server.name.split('/').pop() ?? ''} ${title}`.toLowerCase();
    return wanted.every((word) => nameAndTitle.includes(word)) ? 1 : 2;
  };
  return entries.map((entry, index) => ({ entry, index, rank: rank(entry.server) })).sort((a, b) => a.rank - b.rank || a.index - b.index).map((r) => r.entry);
}

async function readPath(path: string, label?: string): Promise<CatalogListing> {
  const info = await stat(path).catch(() => undefined);
  if (info === undefined) return { entries: [], problems: [{ where: path, field: '(the file)', message: 'no such file or folder' }] };
  if (!info.isDirectory()) return readFileEntries(path, label ?? path);
  const listing: CatalogListing = { entries: [], problems: [] };
  for (const name of (await readdir(path)).sort()) {
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    const more = await readFileEntries(join(path, name), label ?? join(path, name));
    listing.entries.push(...more.entries);
    listing.problems.push(...more.problems);
  }
  return listing;
}

/** A file holds one server.json, or a registry listing ({ servers: [{ server }] }) saved from the API. */
async function readFileEntries(file: string, source: string): Promise<CatalogListing> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    return { entries: [], problems: [{ where: file, field: '(the file)', message: `not JSON: ${messageOf(err)}` }] };
  }
  const servers = (value as { servers?: unknown }).servers;
  if (Array.isArray(servers)) return validateAll(servers.map((s) => (s as { server?: unknown }).server ?? s), (i) => `${file} servers[${i}]`, source);
  return validateAll([value], () => file, source);
}

function validateAll(values: readonly unknown[], where: (index: number) => string, source: string): CatalogListing {
  const listing: CatalogListing = { entries: [], problems: [] };
  values.forEach((value, index) => {
    const parsed = ServerJson.safeParse(value);
    if (parsed.success) listing.entries.push({ server: parsed.data, source });
    else for (const issue of parsed.error.issues.slice(0, 5)) listing.problems.push({ where: where(index), field: fieldPath(issue.path), message: issue.message });
  });
  return listing;
}

/** A registry's listing, from the cache when there is one. */
function registryListing(base: string, search: string | undefined, options: CatalogOptions): Promise<CatalogListing> {
  const load = (): Promise<RegistryAnswer> => readRegistry(base, search, options);
  if (options.cache === undefined) return load().then((answer) => answer.listing);
  return options.cache.get(JSON.stringify([base, search ?? null, options.registryPages ?? null]), load);
}

/** A registry's `/v0.1/servers` list (latest versions), page by page; with `search`, the registry searches. */
async function readRegistry(base: string, search: string | undefined, options: CatalogOptions): Promise<RegistryAnswer> {
  const listing: CatalogListing = { entries: [], problems: [] };
  let cursor: string | undefined;
  let seen = 0;
  let bytes = 0;
  for (let page = 0; page < (options.registryPages ?? 5); page++) {
    const url = new URL('v0.1/servers', base.endsWith('/') ? base : `${base}/`);
    url.searchParams.set('limit', '100');
    url.searchParams.set('version', 'latest');
    if (search !== undefined) url.searchParams.set('search', search);
    if (cursor !== undefined) url.searchParams.set('cursor', cursor);
    let body: { servers?: unknown; metadata?: { nextCursor?: unknown } };
    try {
      const text = await readPage(options.fetch ?? fetch, url);
      bytes += Buffer.byteLength(text);
      body = JSON.parse(text) as typeof body;
    } catch (err) {
      throw new ApiaryError('Io', `cannot read the registry at ${url.origin}${url.pathname}: ${messageOf(err)}`);
    }
    if (body === null || typeof body !== 'object' || !Array.isArray(body.servers)) throw new ApiaryError('Io', `${url.origin}${url.pathname} did not answer with a server list ({ servers: [...] })`);
    const offset = seen;
    seen += body.servers.length;
    const more = validateAll(
      body.servers.map((s) => (s as { server?: unknown } | null)?.server),
      (i) => `${url.origin}${url.pathname} servers[${offset + i}]`,
      base,
    );
    listing.entries.push(...more.entries);
    listing.problems.push(...more.problems);
    cursor = typeof body.metadata?.nextCursor === 'string' && body.metadata.nextCursor !== '' ? body.metadata.nextCursor : undefined;
    if (cursor === undefined) break;
  }
  return { listing, bytes };
}

/**
 * One page's text, read as it streams and given up (the request aborted) as
 * soon as it passes the limit: a registry's answer has no size of its own
 * (one of 1.5 GB took the controller to 3.2 GB), so its Content-Length is
 * checked first and the bytes counted after.
 */
async function readPage(get: typeof fetch, url: URL): Promise<string> {
  const abort = new AbortController();
  const response = await get(url, { headers: { Accept: 'application/json' }, signal: AbortSignal.any([abort.signal, AbortSignal.timeout(15_000)]) });
  const tooBig = new Error(`the answer is over ${REGISTRY_PAGE_LIMIT_BYTES / 1024 / 1024} MiB, the most apiary reads of one page`);
  try {
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    if (Number(response.headers.get('content-length') ?? 0) > REGISTRY_PAGE_LIMIT_BYTES) throw tooBig;
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = response.body?.getReader();
    for (let read = await reader?.read(); read !== undefined && !read.done; read = await reader?.read()) {
      size += read.value.byteLength;
      if (size > REGISTRY_PAGE_LIMIT_BYTES) throw tooBig;
      chunks.push(read.value);
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    // Whatever was not read is not wanted: the connection closes rather than stream on.
    abort.abort();
  }
}

/**
 * The entry a name means: the full name (`io.github.x/weather`) or its part
 * after the slash when only one entry has it; the newest version unless one
 * is asked for. Ambiguity and absence are errors that list the candidates.
 */
export function findEntry(entries: readonly CatalogEntry[], name: string, version?: string): CatalogEntry {
  const exact = entries.filter((e) => e.server.name === name);
  const byShort = exact.length > 0 ? exact : entries.filter((e) => e.server.name.split('/')[1] === name || shortName(e.server.name) === name);
  const names = [...new Set(byShort.map((e) => e.server.name))];
  if (names.length === 0) throw new ApiaryError('NotFound', `no catalog entry named "${name}"`, { hints: ['List them with: apiary catalog list', `Or search: apiary catalog search ${name}`] });
  if (names.length > 1) throw new ApiaryError('Usage', `"${name}" matches ${names.length} entries: ${names.join(', ')}; use the full name`);
  const versions = byShort.filter((e) => version === undefined || e.server.version === version);
  if (versions.length === 0) {
    throw new ApiaryError('NotFound', `${names[0]} has no version ${version}; the catalog has ${byShort.map((e) => e.server.version).join(', ')}`);
  }
  return versions.sort((a, b) => compareVersions(b.server.version, a.server.version))[0]!;
}

/** How an entry runs, in a word: `npm/stdio`, `remote/streamable-http`. */
export function transportOf(server: ServerJson): string {
  const pkg = server.packages?.[0];
  if (pkg !== undefined) return `${pkg.registryType}/${pkg.transport.type}`;
  const remote = server.remotes?.[0];
  return remote !== undefined ? `remote/${remote.type}` : '-';
}

/** io.github.modelcontextprotocol/server-everything -> everything: a server name people would pick. */
export function shortName(name: string): string {
  const last = name.split('/').pop() ?? name;
  const cleaned = last
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^(mcp-server-|server-|mcp-)/, '')
    .replace(/(-mcp-server|-server|-mcp)$/, '')
    .replace(/-+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return cleaned === '' ? 'server' : /^[a-z0-9]/.test(cleaned) ? cleaned : `s-${cleaned}`.slice(0, 63);
}

/** Compares dotted versions number by number (1.10 > 1.9); text parts compare as text. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/);
  const pb = b.split(/[.+-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const nx = Number(x);
    const ny = Number(y);
    const order = Number.isInteger(nx) && Number.isInteger(ny) && x !== '' && y !== '' ? nx - ny : x.localeCompare(y);
    if (order !== 0) return order;
  }
  return 0;
}
