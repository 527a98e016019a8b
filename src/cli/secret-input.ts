/**
 * Reads a secret value for `secret set`: from --from-file, from stdin when it
 * is not a terminal, or from a hidden prompt. Never from argv.
 */
import { readFile } from 'node:fs/promises';
import { SecretValue } from '../crypto/secret-value.js';
import { ApiaryError, messageOf } from '../errors.js';

export async function readSecretValue(options: { fromFile?: string; label: string }): Promise<SecretValue> {
  let text: string;
  if (options.fromFile !== undefined) {
    text = await readFile(options.fromFile, 'utf8').catch((cause: unknown) => {
      throw new ApiaryError('Io', `cannot read ${options.fromFile}: ${messageOf(cause)}`, { cause });
    });
  } else if (process.stdin.isTTY === true) {
    text = await hiddenPrompt(`Value for ${options.label} (input hidden): `);
  } else {
    text = (await readStream(process.stdin)).replace(/\r?\n$/, '');
  }
  if (text.length === 0) throw new ApiaryError('Usage', `refusing an empty value for ${options.label}`);
  return new SecretValue(text);
}

export async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** A prompt that echoes nothing; Ctrl-C aborts, backspace edits. */
export function hiddenPrompt(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  return new Promise((resolve, reject) => {
    let value = '';
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const finish = (error?: ApiaryError): void => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.removeListener('data', onData);
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish();
        if (ch === '\u0003') return finish(new ApiaryError('Usage', 'aborted'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
