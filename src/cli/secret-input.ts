/**
 * Reads a secret value for `secret set`: from --from-file, from stdin when it
 * is not a terminal, or from a hidden prompt. Never from argv.
 */
import { readFile, stat } from 'node:fs/promises';
import { SecretValue } from '../crypto/secret-value.js';
import { ApiaryError, messageOf } from '../errors.js';

/** Kubernetes' own limit for a Secret, and apiary's for a manifest file. */
const MAX_INPUT_BYTES = 1024 * 1024;

export async function readSecretValue(options: { fromFile?: string; label: string }): Promise<SecretValue> {
  let text: string;
  if (options.fromFile !== undefined) {
    const from = options.fromFile;
    const size = (await stat(from).catch(() => undefined))?.size ?? 0;
    if (size > MAX_INPUT_BYTES) throw new ApiaryError('Usage', `${from} is over 1 MiB; a secret value may be at most 1 MiB`);
    text = await readFile(from, 'utf8').catch((cause: unknown) => {
      throw new ApiaryError('Io', `cannot read ${from}: ${messageOf(cause)}`, { cause });
    });
  } else if (process.stdin.isTTY === true) {
    text = await hiddenPrompt(`Value for ${options.label} (input hidden): `);
  } else {
    text = (await readAll(process.stdin, `the value for ${options.label}`)).replace(/\r?\n$/, '');
  }
  if (text.length === 0) throw new ApiaryError('Usage', `refusing an empty value for ${options.label}`);
  return new SecretValue(text);
}

/** The whole stream as text, or undefined as soon as it passes `limitBytes` (the rest is not read). */
export async function readStream(stream: NodeJS.ReadableStream, limitBytes = MAX_INPUT_BYTES): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += bytes.length;
    if (size > limitBytes) return undefined;
    chunks.push(bytes);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The whole stream as text; over 1 MiB it is a usage error naming `what`. */
export async function readAll(stream: NodeJS.ReadableStream, what: string): Promise<string> {
  const text = await readStream(stream);
  if (text === undefined) throw new ApiaryError('Usage', `${what} is over 1 MiB`);
  return text;
}

/** A prompt that echoes nothing; Ctrl-C aborts, backspace edits. */
export function hiddenPrompt(question: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    let value = '';
    // Echo off before the question shows: whatever is typed once it is visible is never echoed.
    stdin.setRawMode(true);
    process.stderr.write(question);
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
