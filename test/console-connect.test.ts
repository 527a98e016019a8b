/** The console's waiting logins: one per server, a second click gets the same URL, a failure before the URL is the answer, a cancel ends the wait. */
import { describe, expect, it } from 'vitest';
import { PendingLogins } from '../src/console/connect-api.js';
import { createLogger, type LogRecord } from '../src/util/logger.js';

function logins(): { logins: PendingLogins; logs: LogRecord[] } {
  const logs: LogRecord[] = [];
  return { logins: new PendingLogins(createLogger((r) => logs.push(r))), logs };
}

describe('PendingLogins', () => {
  it('answers a second start with the login already waiting, and starts anew once it is over', async () => {
    const { logins: pending } = logins();
    let finish: () => void = () => undefined;
    let started = 0;
    const login = (open: (url: string) => void): Promise<void> => {
      started++;
      open(`https://as.example/authorize?n=${started}`);
      return new Promise<void>((resolve) => (finish = resolve));
    };
    expect(await pending.start('hosted', login)).toBe('https://as.example/authorize?n=1');
    expect(await pending.start('hosted', login)).toBe('https://as.example/authorize?n=1');
    expect(started).toBe(1);
    finish();
    await new Promise((resolve) => setImmediate(resolve));
    expect(await pending.start('hosted', login)).toBe('https://as.example/authorize?n=2');
  });

  it('answers with the error when the login fails before it has a URL, and a cancel aborts the waiting one', async () => {
    const { logins: pending, logs } = logins();
    await expect(pending.start('hosted', () => Promise.reject(new Error('cannot reach 127.0.0.1:9')))).rejects.toThrow('cannot reach 127.0.0.1:9');
    let aborted = false;
    const url = await pending.start('other', (open, signal) => {
      open('https://as.example/authorize');
      return new Promise<void>((_, reject) => signal.addEventListener('abort', () => ((aborted = true), reject(new Error('cancelled')))));
    });
    expect(url).toBe('https://as.example/authorize');
    pending.cancelAll();
    await new Promise((resolve) => setImmediate(resolve));
    expect(aborted).toBe(true);
    expect(logs.map((l) => `${l.level} ${l.msg} ${String(l['server'])}`)).toEqual([
      'warn a login started from the console did not finish hosted',
      'warn a login started from the console did not finish other',
    ]);
  });
});
