/**
 * Tests that need a program from outside npm (age, git, Chromium, a Secret
 * Service). On a fresh machine without it they are skipped, saying what is
 * missing and how to install it, so `npm test` passes there; under CI a
 * missing tool fails the file instead, so CI always runs them all.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

export interface ToolCheck {
  /** True when the tool is usable here. */
  available: boolean;
  /** `needs <tool>: <install line>`, the reason given when it is not. */
  reason: string;
}

/**
 * Whether `name` (a program on PATH or an absolute path) is here; `probe`
 * replaces the lookup when presence needs more than a file (a Secret Service
 * that answers). Missing with `CI` set throws, so the test file fails loudly.
 */
export function requireTool(name: string, installLine: string, probe: () => boolean = () => onPath(name)): ToolCheck {
  const reason = `needs ${name}: ${installLine}`;
  const available = probe();
  if (!available) {
    if (inCi()) throw new Error(`${reason} (CI must provide it: these tests cannot be skipped there)`);
    // Printed once per file, so a skip on a fresh machine says why.
    process.stderr.write(`skipped: ${reason}\n`);
  }
  return { available, reason };
}

export function inCi(): boolean {
  const ci = process.env['CI'];
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

/** Executable at that path, or found on PATH as `which` would. */
export function onPath(name: string): boolean {
  if (isAbsolute(name)) return executable(name);
  return (process.env['PATH'] ?? '').split(delimiter).some((dir) => dir !== '' && executable(join(dir, name)));
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** How to get each tool the suite uses from outside npm (.ci/run installs them all). */
export const INSTALL = {
  git: 'apt install git (brew install git on macOS); .ci/run installs it',
  age: 'apt install age, which has age-keygen too (brew install age on macOS); .ci/run installs it',
  script: 'apt install bsdutils (util-linux on other distributions), for script(1); .ci/run installs it',
  chromium: 'apt install chromium, or set APIARY_CHROMIUM to a Chromium binary; .ci/run installs it',
  kubectl: 'apt install kubectl from the Kubernetes apt repository (brew install kubectl on macOS)',
  systemdAnalyze: "apt install systemd (Debian's package has /usr/bin/systemd-analyze); .ci/run installs it",
  python3: 'apt install python3 (its plistlib reads property lists as macOS does); .ci/run installs it',
  prometheus: "apt install prometheus (Debian's package: the test starts prometheus itself, not the service); .ci/run installs it",
  secretService: 'apt install dbus gnome-keyring, then run the tests in dbus-run-session with gnome-keyring-daemon --unlock, as .ci/run does',
} as const;

export const needsGit = (): ToolCheck => requireTool('git', INSTALL.git);
export const needsKubectl = (): ToolCheck => requireTool('kubectl', INSTALL.kubectl);
export const needsAge = (): ToolCheck => requireTool('age', INSTALL.age, () => onPath('age') && onPath('age-keygen'));
export const needsScript = (): ToolCheck => requireTool('script', INSTALL.script);
export const needsSystemdAnalyze = (): ToolCheck => requireTool('/usr/bin/systemd-analyze', INSTALL.systemdAnalyze);
export const needsPython = (): ToolCheck => requireTool('python3', INSTALL.python3);
export const needsPrometheus = (): ToolCheck => requireTool('prometheus', INSTALL.prometheus);
