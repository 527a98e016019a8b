/**
 * A real Chromium for console tests: Debian's package, driven by
 * playwright-core (never a downloaded browser), with the flags that keep it
 * off the network on a closed machine.
 */
import { chromium, type Browser } from 'playwright-core';
import { onPath } from './tools.js';

export const CHROMIUM = process.env['APIARY_CHROMIUM'] ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A Chromium that can be run (a file there that is not executable is none). */
export function hasChromium(): boolean {
  return onPath(CHROMIUM);
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}
