import { describe, expect, it } from 'vitest';
import { MIN_REDACTED_LENGTH, redactValue, SecretRedactor, type SecretMatch } from '../src/api/secret-redactor.js';

const TOKEN = 'sk-live-4f9a2c81d7e3b6a0';
const redactor = SecretRedactor.build([
  { secret: 'api', key: 'token', value: TOKEN },
  { secret: 'api', key: 'pin', value: '1234' },
])!;
const MARK = '[redacted: secret api/token]';

describe('SecretRedactor', () => {
  it('replaces a value written plainly, JSON-escaped, URL-encoded and base64 at any offset', () => {
    expect(redactor.redact(`the key is ${TOKEN}.`).text).toBe(`the key is ${MARK}.`);
    expect(redactor.redact(encodeURIComponent(`a=${TOKEN}&`)).text).not.toContain(TOKEN);
    for (const prefix of ['', 'x', 'xy', 'xyz', 'hello world ']) {
      for (const suffix of ['', '!', '!!', '!!!']) {
        const blob = Buffer.from(`${prefix}${TOKEN}${suffix}`).toString('base64');
        const out = redactor.redact(blob);
        expect(out.found.length, `${prefix}|${suffix}`).toBe(1);
        // Every character holding any of the value's bits is gone; those holding the prefix's or suffix's alone stay.
        const [from, to] = [Math.floor((8 * prefix.length) / 6), Math.ceil((8 * (prefix.length + TOKEN.length)) / 6)];
        expect(out.text, `${prefix}|${suffix}`).toBe(`${blob.slice(0, from)}${MARK}${blob.slice(to)}`);
        const urlSafe = blob.replaceAll('+', '-').replaceAll('/', '_');
        expect(redactor.redact(urlSafe).text).toBe(`${urlSafe.slice(0, from)}${MARK}${urlSafe.slice(to)}`);
      }
    }
  });

  it('leaves values shorter than the minimum alone (they occur in ordinary text)', () => {
    expect(MIN_REDACTED_LENGTH).toBe(6);
    expect(redactor.redact('pin 1234').text).toBe('pin 1234');
    expect(SecretRedactor.build([{ secret: 's', key: 'k', value: 'short' }])).toBeUndefined();
  });

  it('catches a value split across two text items, and strings anywhere in a message', () => {
    const found: SecretMatch[] = [];
    const message = {
      jsonrpc: '2.0',
      id: 1,
      result: {
        content: [
          { type: 'text', text: `start ${TOKEN.slice(0, 10)}` },
          { type: 'text', text: `${TOKEN.slice(10)} end` },
          { type: 'resource', resource: { uri: 'file:///x', text: TOKEN } },
        ],
        structuredContent: { nested: [TOKEN] },
      },
    };
    const out = redactValue(redactor, message, found);
    expect(JSON.stringify(out)).not.toContain(TOKEN.slice(0, 10));
    expect(JSON.stringify(out)).not.toContain(TOKEN.slice(10));
    expect(out.result.content[0]).toEqual({ type: 'text', text: `start ${MARK}` });
    expect(out.result.content[1]).toEqual({ type: 'text', text: `${MARK} end` });
    expect(found.map((m) => `${m.secret}/${m.key}`)).toEqual(['api/token', 'api/token', 'api/token']);
    const clean = { result: { content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] } };
    expect(redactValue(redactor, clean, [])).toBe(clean);
  });
});

describe('overlapping values', () => {
  it('a value that starts inside another is redacted whole, not left a tail', () => {
    const both = SecretRedactor.build([
      { secret: 's', key: 'a', value: 'abcdef12' },
      { secret: 's', key: 'b', value: 'ef123456' },
    ])!;
    expect(both.redact('xxabcdef123456yy').text).toBe('xx[redacted: secret s/a]yy');
  });
});
