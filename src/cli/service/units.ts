/**
 * What `apiary service install` writes, rendered purely from a ServiceSpec:
 * a systemd user unit (Linux) or a launchd agent (macOS) that runs
 * `apiary up` at login and starts it again when it fails.
 */
import { ApiaryError } from '../../errors.js';

export interface ServiceSpec {
  /** Absolute path of the Node.js binary (a login session's PATH may not have it: nvm, fnm, Homebrew). */
  node: string;
  /** Absolute path of the CLI's entry script (what bin/apiary runs). */
  entry: string;
  /** The CLI's arguments: up, with absolute --dir (or --git) and --state-dir. */
  args: readonly string[];
  /** PATH for apiary and the servers it starts (npx, uvx, docker...), as the installing shell had it. */
  path: string;
  /** What the unit describes itself as. */
  description: string;
  /** launchd only: the file its output goes to (systemd sends it to the journal). */
  logFile: string;
}

/** The first line of every file install writes: uninstall removes only a file that starts with it. */
export const SYSTEMD_MARKER = '# Written by apiary service install; apiary service uninstall removes it.';
export const LAUNCHD_MARKER = '<!-- Written by apiary service install; apiary service uninstall removes it. -->';
export const LAUNCHD_LABEL = 'dev.apiary';

export function systemdUnit(spec: ServiceSpec): string {
  const command = [spec.node, spec.entry, ...spec.args].map(execWord).join(' ');
  return [
    SYSTEMD_MARKER,
    '[Unit]',
    `Description=${systemdText(spec.description)}`,
    '',
    '[Service]',
    'Type=exec',
    `ExecStart=${command}`,
    `Environment=${quoted(`PATH=${spec.path}`)}`,
    // up stops its servers in order on SIGTERM: only it gets the signal, and the time to do it.
    'KillMode=mixed',
    'TimeoutStopSec=90',
    'Restart=on-failure',
    'RestartSec=5',
    // No core dumps: a core of apiary holds the master key and opened values (bin/apiary's ulimit -c 0).
    'LimitCORE=0',
    '',
    '[Install]',
    'WantedBy=default.target',
    '',
  ].join('\n');
}

/**
 * One argument of ExecStart=, quoted: backslash and quote escaped, `%`
 * doubled (a specifier otherwise) and `$` doubled (ExecStart= expands
 * variables).
 */
function execWord(word: string): string {
  return quoted(word).replace(/\$/g, '$$$$');
}

/**
 * One assignment of Environment=, quoted the same way but for `$`, which
 * means nothing there (systemd.exec: no variable expansion in Environment=).
 */
function quoted(word: string): string {
  refuseControl(word);
  return `"${word.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%')}"`;
}

/** A value systemd reads as free text: specifiers doubled, nothing else special. */
function systemdText(text: string): string {
  refuseControl(text);
  return text.replace(/%/g, '%%');
}

function refuseControl(text: string): void {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(text)) throw new ApiaryError('Usage', `a control character (a newline?) in ${JSON.stringify(text)} cannot be written into a service file`);
}

/**
 * KeepAlive with SuccessfulExit false is launchd's Restart=on-failure: `apiary
 * down` (exit 0) stays down; a crash comes back. RunAtLoad starts it at login.
 */
export function launchdPlist(spec: ServiceSpec): string {
  const strings = (items: readonly string[]): string[] => items.map((item) => `    <string>${xmlText(item)}</string>`);
  const noCore = ['  <dict>', '    <key>Core</key>', '    <integer>0</integer>', '  </dict>'];
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    LAUNCHD_MARKER,
    '<plist version="1.0">',
    '<dict>',
    '  <key>Label</key>',
    `  <string>${LAUNCHD_LABEL}</string>`,
    '  <key>ProgramArguments</key>',
    '  <array>',
    ...strings([spec.node, spec.entry, ...spec.args]),
    '  </array>',
    '  <key>EnvironmentVariables</key>',
    '  <dict>',
    '    <key>PATH</key>',
    `    <string>${xmlText(spec.path)}</string>`,
    '  </dict>',
    '  <key>RunAtLoad</key>',
    '  <true/>',
    '  <key>KeepAlive</key>',
    '  <dict>',
    '    <key>SuccessfulExit</key>',
    '    <false/>',
    '  </dict>',
    '  <key>ExitTimeOut</key>',
    '  <integer>90</integer>',
    '  <key>StandardOutPath</key>',
    `  <string>${xmlText(spec.logFile)}</string>`,
    '  <key>StandardErrorPath</key>',
    `  <string>${xmlText(spec.logFile)}</string>`,
    '  <key>SoftResourceLimits</key>',
    ...noCore,
    '  <key>HardResourceLimits</key>',
    ...noCore,
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
}

function xmlText(text: string): string {
  refuseControl(text);
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
