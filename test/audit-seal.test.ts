import { createHmac, createSecretKey, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { auditRecordJson, auditTime, recordOf, toolsApprovalRecord, toolsDriftRecord, type AuditRecord, type AuditSubject } from '../src/api/audit.js';
import { ChainKey, macOf, sealLine } from '../src/state/audit-chain.js';
import { AuditLog } from '../src/state/audit-log.js';
import { verifyAudit } from '../src/state/audit-read.js';
import { auditCall, auditLogWith } from './helpers/audit.js';

/** Texts a caller controls, with what JSON must escape or keep: quotes, controls, non-ASCII, a lone surrogate, a long run. */
const TEXTS = ['echo', 'a "quoted" \\ name', 'tab\there\nnewline\u0000nul\u001f', 'd\u00e9j\u00e0 \u2603 \u{1F41D}', 'lone \ud83d surrogate', '\u2028\u2029', 'x'.repeat(300), ''];

/** The records of many requests, varied in every field recordOf keeps. */
function records(): AuditRecord[] {
  const out: AuditRecord[] = [];
  const subjects: AuditSubject[] = [{ kind: 'token' }, { kind: 'none' }, { kind: 'user', user: 'alice', groups: [] }, { kind: 'user', user: TEXTS[3]!, groups: TEXTS }];
  let i = 0;
  for (const text of TEXTS) {
    for (const subject of subjects) {
      i++;
      const args = i % 5 === 0 ? Object.fromEntries(Array.from({ length: 70 }, (_, k) => [`${text}${k}`, k])) : { [text]: text, n: i / 7, big: 1e21, neg: -0, ok: true, none: null, list: [text], obj: { text } };
      out.push(
        recordOf(
          { method: ['tools/call', 'prompts/get', 'resources/read', text][i % 4]!, id: i % 3 === 0 ? text : i % 3 === 1 ? i : null, params: { name: text, uri: `${text}?q=1`, arguments: args } },
          {
            time: auditTime(Date.UTC(2026, 11, 5) + i * 997),
            subject,
            ...(i % 2 === 0 ? { client: text } : {}),
            server: i % 2 === 0 ? 'mini' : text,
            decision: i % 3 === 0 ? 'deny' : 'allow',
            ...(i % 3 === 0 ? { rule: `${text} (policies.yaml:${i})` } : {}),
            durationMs: [0.1234567, Number.NaN, Number.POSITIVE_INFINITY, 12, 1e-7][i % 5]!,
            outcome: i % 3 === 0 ? 'denied' : 'ok',
            ...(i % 4 === 0 ? { code: [-32603, Number.NaN][i % 2]! } : {}),
          },
        ),
      );
    }
  }
  return out;
}

describe('sealing an audit record', () => {
  it('writes the JSON that JSON.stringify wrote, byte for byte, for every record recordOf makes', () => {
    const all = records();
    expect(all.length).toBeGreaterThan(30);
    for (const record of all) expect(auditRecordJson(record)).toBe(JSON.stringify(record));
    expect(auditRecordJson(all[3]!, '"seq":4,')).toBe(`{"seq":4,${JSON.stringify(all[3]).slice(1)}`);
  });

  it("writes the drift and approval records' fields (in recordOf's order)", () => {
    const drift = toolsDriftRecord({ time: auditTime(0), server: 'mini', tools: ['echo', TEXTS[1]!], withheld: true });
    const approval = toolsApprovalRecord({ time: auditTime(0), server: 'mini', tools: ['echo'], subject: { kind: 'user', user: 'bob', groups: ['dev'] } });
    for (const record of [drift, approval]) expect(JSON.parse(auditRecordJson(record))).toEqual(record);
  });

  it('makes the macs createHmac makes, for any key and text', () => {
    const keys = [randomBytes(32), randomBytes(64), randomBytes(100), randomBytes(7)];
    for (const key of keys) {
      const chain = new ChainKey(key);
      for (const prev of ['genesis', 'head', createHmac('sha256', key).update('x').digest('hex')]) {
        for (const body of [...TEXTS, 'y'.repeat(100_000), '\u{1F41D}'.repeat(30_000)]) {
          const expected = createHmac('sha256', key).update(prev).update('\n').update(body).digest('hex');
          expect(chain.mac(prev, body)).toBe(expected);
          expect(macOf(createSecretKey(key), prev, body)).toBe(expected);
        }
      }
    }
  });

  it('seals the lines the previous writer sealed (JSON.stringify, then createHmac)', () => {
    const key = randomBytes(32);
    const all = records();
    const batch = new ChainKey(key).sealBatch('genesis', 41, all);
    let prev = 'genesis';
    const lines = all.map((record, i) => {
      const body = `{"seq":${41 + i},${JSON.stringify(record).slice(1)}`;
      prev = createHmac('sha256', key).update(prev).update('\n').update(body).digest('hex');
      return `${body.slice(0, -1)},"mac":"${prev}"}\n`;
    });
    expect(batch.data.toString('utf8')).toBe(lines.join(''));
    expect(batch.macs.at(-1)).toBe(prev);
    expect(batch.ends.at(-1)).toBe(batch.data.length);
    expect(sealLine(key, 'genesis', 41, all[0]!).line).toBe(lines[0]);
  });

  it('leaves out of the file whatever is put on a record besides its fields', async () => {
    const layout = await auditLogWith(2);
    const log = await AuditLog.open(layout);
    log.append({ ...auditCall(3), token: 'CANARY-token-value', subject: { kind: 'user', user: 'bob', claims: 'CANARY-claims' } } as AuditRecord);
    await log.close();
    expect(await readFile(layout.auditFile, 'utf8')).not.toContain('CANARY');
    expect(await verifyAudit(layout)).toMatchObject({ ok: true, records: 3 });
  });
});

describe('auditTime', () => {
  it('is what toISOString writes, across seconds, for fractions and out of the usual range', () => {
    const start = Date.UTC(2026, 11, 31, 23, 59, 58, 990);
    const times = [...Array.from({ length: 3000 }, (_, i) => start + i * 1.37), 0, 999, 1000, 8.64e15, -1, -1500, 253402300799999, 253402300800000];
    for (const ms of times) expect(auditTime(ms), String(ms)).toBe(new Date(ms).toISOString());
    expect(() => auditTime(Number.NaN)).toThrow(RangeError);
  });
});
