/** The stdio reader's framing: newline-delimited messages out of arbitrary chunks, at most a cap per message. */
import { describe, expect, it } from 'vitest';
import { LineReader, MAX_MESSAGE_BYTES } from '../src/mcp/line-reader.js';

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');

describe('LineReader', () => {
  it('puts a message split across many chunks back together, multi-byte characters included', () => {
    const reader = new LineReader();
    const message = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { text: 'héllo wörld ✓ '.repeat(50) } });
    const all = bytes(`${message}\n`);
    const lines: string[] = [];
    // One byte at a time: every multi-byte character is cut somewhere.
    for (let i = 0; i < all.length; i++) {
      const read = reader.push(all.subarray(i, i + 1));
      expect(read.oversized).toBe(false);
      lines.push(...read.lines);
    }
    expect(lines).toEqual([message]);
  });

  it('reads many messages in one chunk, drops a trailing \\r, and keeps the unfinished rest for the next chunk', () => {
    const reader = new LineReader();
    const first = reader.push(bytes('{"a":1}\n{"b":2}\r\n\n{"c":'));
    expect(first).toEqual({ lines: ['{"a":1}', '{"b":2}', ''], oversized: false });
    expect(reader.push(bytes('3}\n{"d":4}\n'))).toEqual({ lines: ['{"c":3}', '{"d":4}'], oversized: false });
    expect(reader.push(bytes(''))).toEqual({ lines: [], oversized: false });
  });

  it(`caps a message at ${MAX_MESSAGE_BYTES} bytes: one byte more without a newline is oversized, in one chunk or many`, () => {
    const exact = new LineReader(8);
    expect(exact.push(bytes('12345678\n'))).toEqual({ lines: ['12345678'], oversized: false });

    const inOne = new LineReader(8);
    expect(inOne.push(bytes('{"ok":1}\n123456789'))).toEqual({ lines: ['{"ok":1}'], oversized: true });

    const inMany = new LineReader(8);
    expect(inMany.push(bytes('1234'))).toEqual({ lines: [], oversized: false });
    expect(inMany.push(bytes('5678'))).toEqual({ lines: [], oversized: false });
    expect(inMany.push(bytes('9'))).toEqual({ lines: [], oversized: true });

    const withNewline = new LineReader(8);
    expect(withNewline.push(bytes('123456789\n{"ok":1}\n'))).toEqual({ lines: [], oversized: true });
  });

  it('after an oversized message it reads nothing more: the stream has lost its framing', () => {
    const reader = new LineReader(4);
    expect(reader.push(bytes('12345')).oversized).toBe(true);
    expect(reader.push(bytes('\n{"a":1}\n'))).toEqual({ lines: [], oversized: false });
  });

  it('holds at most the cap however much is written without a newline', () => {
    const reader = new LineReader();
    const chunk = Buffer.alloc(64 * 1024, 0x78);
    let oversizedAt = -1;
    for (let i = 0; i < 100 && oversizedAt === -1; i++) if (reader.push(chunk).oversized) oversizedAt = i;
    expect(oversizedAt).toBe(MAX_MESSAGE_BYTES / chunk.length);
    expect(reader.buffered).toBe(0);
  });
});
