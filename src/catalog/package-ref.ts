/**
 * What a catalog entry may name as a package, by registry type: the type's
 * own rules for identifiers and versions, and the runners apiary starts it
 * with. A catalog is text from anyone, and its identifier ends up in argv:
 * these rules are why it can never be read as an option (nothing may start
 * with "-"), hold a space or a shell word, or pick the program that runs.
 */
import { ApiaryError } from '../errors.js';

/** How apiary starts packages of one registry type. */
interface RegistryRules {
  /** The runners that start it: the first by default; `runtimeHint` may pick another of these, nothing else. */
  runners: readonly string[];
  /** The runner's own options, before any the entry adds. */
  fixedArgs: readonly string[];
  /** Put before the package, so the runner reads it as the package whatever it looks like (npx: `--`). */
  endOfOptions: readonly string[];
  /** The word the runner takes for the package at a version. */
  ref: (identifier: string, version: string | undefined) => string;
  /** Why an identifier is refused, or undefined. */
  identifier: (identifier: string) => string | undefined;
  version: (version: string) => string | undefined;
}

const NPM_NAME = /^(?:@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/;
/** Strict semver (what npm publishes). */
const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;
/** PEP 508 names (compared normalized, so any case). */
const PYPI_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;
/** PEP 440, as the `packaging` library reads versions. */
const PEP440 = /^v?(?:\d+!)?\d+(?:\.\d+)*(?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?\d*)?(?:-\d+|[-_.]?(?:post|rev|r)[-_.]?\d*)?(?:[-_.]?dev[-_.]?\d*)?(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?$/i;
/** Docker's reference grammar (distribution/reference): [domain[:port]/]path[:tag][@digest]. */
const DOMAIN = '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?)';
const PATH = '(?:[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)';
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const IMAGE = new RegExp(`^(?:${DOMAIN}/)?(${PATH})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const IMAGE_TAG = new RegExp(`^${TAG}$`);
/** NuGet ids (NuGet.Packaging's PackageIdValidator) and versions (SemVer 2 with an optional fourth number). */
const NUGET_ID = /^\w+(?:[.-]\w+)*$/;
const NUGET_VERSION = /^\d+(?:\.\d+){1,3}(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;

const quoted = (text: string): string => JSON.stringify(text);

const REGISTRIES: Record<string, RegistryRules> = {
  npm: {
    runners: ['npx'],
    fixedArgs: ['-y'],
    endOfOptions: ['--'],
    ref: (id, v) => (v !== undefined ? `${id}@${v}` : id),
    identifier: (id) =>
      NPM_NAME.test(id) && id.length <= 214 && !['node_modules', 'favicon.ico'].includes(id)
        ? undefined
        : `${quoted(id)} is not an npm package name (lowercase letters, digits, - . _ and an optional @scope/, starting with a letter or digit, at most 214 characters)`,
    version: (v) => (SEMVER.test(v) ? undefined : `${quoted(v)} is not an npm version (semver: 1.2.3, 1.2.3-beta.1)`),
  },
  pypi: {
    runners: ['uvx'],
    fixedArgs: [],
    endOfOptions: [],
    ref: (id, v) => (v !== undefined ? `${id}==${v}` : id),
    identifier: (id) => (PYPI_NAME.test(id) ? undefined : `${quoted(id)} is not a PyPI project name (letters, digits, - . _, starting and ending with a letter or digit)`),
    version: (v) => (PEP440.test(v) ? undefined : `${quoted(v)} is not a PyPI version (PEP 440: 1.2, 1.2.3rc1, 1.2.post1)`),
  },
  oci: {
    runners: ['docker', 'podman'],
    fixedArgs: ['run', '-i', '--rm'],
    endOfOptions: [],
    // An identifier that names its tag or digest already is used as it is.
    ref: (id, v) => (v !== undefined && !imageHasVersion(id) ? `${id}:${v}` : id),
    identifier: (id) =>
      IMAGE.test(id) && (IMAGE.exec(id)?.[1] ?? '').length <= 255 ? undefined : `${quoted(id)} is not an image reference ([registry/]name[:tag][@digest], lowercase name)`,
    version: (v) => (IMAGE_TAG.test(v) ? undefined : `${quoted(v)} is not an image tag (letters, digits, _ . -, at most 128, starting with a letter, digit or _)`),
  },
  nuget: {
    runners: ['dnx'],
    fixedArgs: [],
    endOfOptions: [],
    ref: (id, v) => (v !== undefined ? `${id}@${v}` : id),
    identifier: (id) =>
      NUGET_ID.test(id) && id.length <= 100 ? undefined : `${quoted(id)} is not a NuGet package id (letters, digits and _, with . or - between them, at most 100 characters)`,
    version: (v) => (NUGET_VERSION.test(v) ? undefined : `${quoted(v)} is not a NuGet version (1.2.3, 1.2.3.4, 1.2.3-beta)`),
  },
};

function imageHasVersion(identifier: string): boolean {
  const match = IMAGE.exec(identifier);
  return match?.[2] !== undefined || match?.[3] !== undefined;
}

/** The registry types apiary can start, in the words of an error. */
export const RUNNABLE_TYPES = Object.keys(REGISTRIES);

export function isRunnable(registryType: string): boolean {
  return REGISTRIES[registryType] !== undefined;
}

/** The fields of a package that name what runs. */
export interface PackageRef {
  registryType: string;
  identifier: string;
  version?: string | undefined;
  runtimeHint?: string | undefined;
}

/** Each field of a package apiary would not run as it is, with why; none for a registry type apiary does not run (it is never started). */
export function packageRefProblems(pkg: PackageRef): { field: 'identifier' | 'version' | 'runtimeHint'; message: string }[] {
  const rules = REGISTRIES[pkg.registryType];
  if (rules === undefined) return [];
  const problems: { field: 'identifier' | 'version' | 'runtimeHint'; message: string }[] = [];
  const identifier = rules.identifier(pkg.identifier);
  if (identifier !== undefined) problems.push({ field: 'identifier', message: identifier });
  const version = pkg.version !== undefined ? rules.version(pkg.version) : undefined;
  if (version !== undefined) problems.push({ field: 'version', message: version });
  if (pkg.runtimeHint !== undefined && !rules.runners.includes(pkg.runtimeHint)) {
    problems.push({ field: 'runtimeHint', message: `${quoted(pkg.runtimeHint)} is not a runner apiary starts ${pkg.registryType} packages with (${rules.runners.join(', ')})` });
  }
  return problems;
}

/** How a package starts: the runner, its options, then the entry's runtime arguments, then the package (after an end of options where the runner has one). */
export interface RunnerWords {
  command: string;
  /** The words before the entry's runtime arguments. */
  before: string[];
  /** The words after them: the end of options (if any) and the package. */
  package: string[];
}

/** The runner words for a package that passed `packageRefProblems`; anything else is refused here too, so no path skips the check. */
export function runnerWords(pkg: PackageRef): RunnerWords {
  const rules = REGISTRIES[pkg.registryType];
  if (rules === undefined) throw new ApiaryError('Usage', `apiary does not run ${pkg.registryType} packages (it runs ${RUNNABLE_TYPES.join(', ')})`);
  const problems = packageRefProblems(pkg);
  if (problems.length > 0) throw new ApiaryError('Usage', problems.map((p) => `${p.field}: ${p.message}`).join('; '));
  return { command: pkg.runtimeHint ?? rules.runners[0]!, before: [...rules.fixedArgs], package: [...rules.endOfOptions, rules.ref(pkg.identifier, pkg.version)] };
}
