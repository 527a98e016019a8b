/**
 * Values sealed for a team (issue 14): seal and open per value for 1, 5 and
 * 20 recipients (in process, through age-encryption), and `apiary secret
 * reseal` of a directory with 1,000 values, beside the same work done with
 * the real `age` command per value (decrypt, then encrypt to the recipients),
 * which is what a person does without apiary.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateIdentity, openForIdentity, recipientOf, sealForRecipients } from '../src/crypto/age.js';
import { fmtMs, now, type Row } from './stats.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'apiary');
const VALUE = 'ghp_' + 'x'.repeat(36);

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, input?: Buffer | string): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
    child.stdin.end(input ?? '');
  });
}

export async function benchRecipients(): Promise<Row[]> {
  const rows: Row[] = [];
  const me = await generateIdentity();
  for (const count of [1, 5, 20]) {
    const recipients = [await recipientOf(me)];
    while (recipients.length < count) recipients.push(await recipientOf(await generateIdentity()));
    const n = 300;
    let sealed = '';
    let t = now();
    for (let i = 0; i < n; i++) sealed = await sealForRecipients(recipients, 'github', 'token', VALUE);
    const sealMs = (now() - t) / n;
    t = now();
    for (let i = 0; i < n; i++) await openForIdentity(me, 'github', 'token', sealed);
    const openMs = (now() - t) / n;
    rows.push({ measure: `age: seal one value for ${count} recipient(s) / open it`, result: `${fmtMs(sealMs)} / ${fmtMs(openMs)}`, note: `mean of ${n}; ${sealed.length} characters sealed` });
  }

  // A directory of 1,000 values (100 files of 10 keys) sealed for 3 recipients, resealed for 3 others.
  const root = await mkdtemp(join(tmpdir(), 'apiary-bench-reseal-'));
  try {
    const dir = join(root, 'manifests');
    await mkdir(dir, { recursive: true });
    const identityFile = join(root, 'me.age');
    await writeFile(identityFile, `${me}\n`, { mode: 0o600 });
    const team = [await recipientOf(me), await recipientOf(await generateIdentity()), await recipientOf(await generateIdentity())];
    await writeFile(join(dir, 'recipients'), `${team.join('\n')}\n`);
    const tokens: string[] = [];
    for (let f = 0; f < 100; f++) {
      const lines: string[] = [];
      for (let k = 0; k < 10; k++) {
        const token = await sealForRecipients(team, `s${f}`, `k${k}`, `${VALUE}-${f}-${k}`);
        tokens.push(token);
        lines.push(`  k${k}: ${token}`);
      }
      await writeFile(join(dir, `s${f}.yaml`), `apiVersion: apiary.dev/v1alpha1\nkind: Secret\nmetadata:\n  name: s${f}\nencryptedData:\n${lines.join('\n')}\n`);
    }
    const env = { APIARY_DIR: dir, APIARY_STATE_DIR: join(root, 'state'), APIARY_KEY_FILE: join(root, 'key'), APIARY_AGE_IDENTITY_FILE: identityFile };
    let t = now();
    const resealed = await run(BIN, ['secret', 'reseal'], env);
    const resealMs = now() - t;
    if (resealed.code !== 0) throw new Error(`bench: reseal failed: ${resealed.stderr}`);

    // The peer: age -d then age -e per value (50 of them, scaled to 1,000: the rest is the same work).
    const sample = 50;
    const recipientArgs = team.flatMap((r) => ['-r', r]);
    t = now();
    for (const token of tokens.slice(0, sample)) {
      const opened = await run('age', ['-d', '-i', identityFile], {}, Buffer.from(token.slice('apiary:v2:'.length), 'base64url'));
      await run('age', ['-e', ...recipientArgs], {}, opened.stdout);
    }
    const peerMs = ((now() - t) / sample) * 1000;
    rows.push({
      measure: '`apiary secret reseal`: 1,000 values in 100 files, 3 recipients (whole process)',
      result: fmtMs(resealMs),
      note: `peer: the real age, decrypt then encrypt per value: ${fmtMs(peerMs)} for 1,000 (measured on ${sample}, scaled); apiary ${peerMs >= resealMs ? `${(peerMs / resealMs).toFixed(1)}x faster` : `${(resealMs / peerMs).toFixed(1)}x slower`}, and it edits the files in place, all or none`,
    });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  return rows;
}
