import { describe, expect, it } from 'vitest';
import {
  canonicalJson, checkOrder, codes, decode, decodePart, encode, encodePartHeader, exportPublicKey, exportSigningKey,
  generateSigningKey, importPublicKey, importSigningKey, makeOrder, objectParts, parseObjectSubject, signMessage,
  subjects, verifyMessage, fileIssue, formatIssue, formatCount, formatTable, printable, progressPercent, progressWork, PART_SIZE, type OrderRequest,
} from './index.js';

describe('fileIssue', () => {
  it('says why a config file cannot be read in plain words, naming it once', () => {
    const err = (code: string) => Object.assign(new Error(`${code}: some system text, open '/etc/x.toml'`), { code });
    expect(formatIssue(fileIssue('/etc/x.toml', err('ENOENT')))).toBe('config file /etc/x.toml does not exist');
    expect(formatIssue(fileIssue('/etc/x.toml', err('EISDIR')))).toBe('config file /etc/x.toml is a directory, not a file');
    expect(formatIssue(fileIssue('/etc/x.toml', err('EACCES')))).toMatch(/^config file \/etc\/x.toml cannot be read: permission denied \(/);
    expect(formatIssue(fileIssue('/etc/x.toml', err('EIO')))).toBe("config file /etc/x.toml cannot be read: EIO: some system text, open '/etc/x.toml'");
  });
});

describe('formatCount', () => {
  it('is singular for exactly one, plural otherwise; irregular plurals are given', () => {
    expect([0, 1, 2].map((n) => formatCount(n, 'snapshot'))).toEqual(['0 snapshots', '1 snapshot', '2 snapshots']);
    expect([1, 3].map((n) => formatCount(n, 'entry', 'entries'))).toEqual(['1 entry', '3 entries']);
  });
});

describe('progress bars', () => {
  it('count files as well as bytes: the bytes all written with a quarter of the files left is not 100%', () => {
    const total = progressWork(75, 16_000_000);
    expect(progressPercent(progressWork(57, 16_000_000), total)).toBeLessThan(95);
    expect(progressPercent(progressWork(0, 0), total)).toBe(0);
    expect(progressPercent(progressWork(75, 16_000_000), total)).toBe(99); // 100% only when the command knows it is done
  });

  it('draw no percentage without a total, and stay below 100% past an estimated one', () => {
    expect(progressPercent(progressWork(10, 1000), undefined)).toBeUndefined();
    expect(progressPercent(progressWork(10, 1000), 0)).toBeUndefined();
    expect(progressPercent(progressWork(20, 5000), progressWork(10, 1000))).toBe(99);
  });
});

describe('formatTable', () => {
  it('makes each column as wide as its widest cell, header included; numbers right; no trailing spaces', () => {
    expect(formatTable([{ header: 'store' }, { header: 'n', right: true }, { header: 'tags' }], [['a-long-store-name', '7', ''], ['b', '1234', 'x,y']])).toEqual([
      'store                 n  tags',
      'a-long-store-name     7',
      'b                  1234  x,y',
    ]);
  });
});

describe('printable', () => {
  it('turns every C0, DEL and C1 control into a visible escape and keeps everything else', () => {
    expect(printable('a\nb\rc\td\u001b]0;pwned\u0007e\u007ff\u0000g\u009bh')).toBe('a\\nb\\rc\\td\\e]0;pwned\\x07e\\x7ff\\x00g\\x9bh');
    const clean = 'Müller-Ärztin – 患者 \ufffd \\n ~ \u00a0';
    expect(printable(clean)).toBe(clean);
    for (let c = 0; c < 0xa0; c++) expect(printable(String.fromCharCode(c))).toMatch(c < 0x20 || c >= 0x7f ? /^\\(n|r|t|e|x[0-9a-f]{2})$/ : /^[\x20-\x7e]$/);
  });
  it('changes nothing when applied again', () => {
    const once = printable('x\n\u001b[31my');
    expect(printable(once)).toBe(once);
  });
  it('keeps the controls it is told to keep', () => {
    expect(printable('a\u001b[2J\nb\tc', '\n')).toBe('a\\e[2J\nb\\tc');
    expect(printable('a\u001b[2J\nb\tc\r', '\n\t')).toBe('a\\e[2J\nb\tc\\r');
  });
});

const request: OrderRequest = {
  site: 'clinic-a', snapshot: 'latest', paths: ['fhir'], target: '/srv/restore', source: 'local', mode: 'new',
  requestedBy: { user: 'tech1', mfa: true },
};

describe('canonical encoding', () => {
  it('sorts keys, drops undefined and is stable', () => {
    expect(canonicalJson({ b: 1, a: [2, { d: undefined, c: 'x' }] })).toBe('{"a":[2,{"c":"x"}],"b":1}');
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(/not finite/);
  });
});

describe('subjects', () => {
  it('builds and parses object subjects and refuses bad tokens', () => {
    const s = subjects.inbox('clinic-a', 'a'.repeat(32), 'pack', 'b'.repeat(64));
    expect(s).toBe(`mv.v1.in.clinic-a.${'a'.repeat(32)}.pack.${'b'.repeat(64)}`);
    expect(parseObjectSubject(s)).toMatchObject({ area: 'in', site: 'clinic-a', kind: 'pack' });
    expect(() => subjects.event('clinic.a', 'heartbeat')).toThrow(/invalid site/);
    expect(() => subjects.control('*', 'order')).toThrow(/invalid site/);
    expect(parseObjectSubject('mv.v1.in.clinic-a.x.pack.y')).toBeUndefined();
  });
});

describe('decode', () => {
  it('refuses unknown types, unknown members and bad shapes', () => {
    expect(() => decode('{"type":"mv.heartbeat.v9"}')).toThrow(/unknown message type/);
    expect(() => decode('not json')).toThrow(/not UTF-8 JSON/);
    expect(() => decode(Buffer.from([0x7b, 0xff, 0x7d]))).toThrow(/not UTF-8 JSON/);
    const r = { type: 'mv.receipt.v1', site: 'clinic-a', repo: 'a'.repeat(32), kind: 'pack', hash: 'b'.repeat(64), size: 1, storedAt: 1 };
    expect(decode(JSON.stringify(r), 'mv.receipt.v1')).toEqual(r);
    expect(() => decode(JSON.stringify({ ...r, extra: 1 }))).toThrow(/extra|Unrecognized/i);
    expect(() => decode(JSON.stringify(r), 'mv.restore-order.v1')).toThrow(/expected mv.restore-order.v1/);
  });

  it('checks object part framing', () => {
    const parts = objectParts({ site: 'clinic-a', repo: 'a'.repeat(32), kind: 'pack', hash: 'b'.repeat(64), size: PART_SIZE * 2 + 5 });
    expect(parts).toHaveLength(3);
    expect(decodePart(encodePartHeader(parts[2]!), 5).part).toBe(2);
    expect(() => decodePart(encodePartHeader(parts[0]!), 5)).toThrow(/does not fit/);
    expect(() => decodePart(undefined, 5)).toThrow(/without Mv-Object/);
    const empty = objectParts({ site: 'clinic-a', repo: 'a'.repeat(32), kind: 'key', hash: 'b'.repeat(64), size: 0 });
    expect(decodePart(encodePartHeader(empty[0]!), 0).parts).toBe(1);
  });
});

describe('signatures', () => {
  const key = generateSigningKey();
  it('round-trips keys and verifies only unaltered messages from the pinned key', () => {
    const again = importSigningKey(exportSigningKey(key));
    expect(again.kid).toBe(key.kid);
    const pinned = importPublicKey(exportPublicKey(key.publicKey));
    const r = signMessage({ type: 'mv.receipt.v1', site: 'clinic-a', size: 3 } as never, key);
    expect(() => verifyMessage(r, pinned)).not.toThrow();
    expect(() => verifyMessage({ ...(r as object), size: 4 } as never, pinned)).toThrow(/altered or forged/);
    expect(() => verifyMessage(r, generateSigningKey().publicKey)).toThrow(/not by the pinned/);
    expect(() => verifyMessage({ ...(r as object), sig: undefined } as never, pinned)).toThrow(/not signed/);
  });
});

describe('checkOrder', () => {
  const key = generateSigningKey();
  const now = Date.UTC(2026, 11, 3, 12);
  const ctx = { site: 'clinic-a', controllerKey: key.publicKey, now, seen: (_id: string) => false };
  const refusal = (value: unknown, over: Partial<typeof ctx> = {}) => {
    const v = checkOrder(value, { ...ctx, ...over });
    return v.ok ? 'accepted' : v.code;
  };

  it('accepts a fresh signed order for this site', () => {
    expect(refusal(makeOrder(request, key, now))).toBe('accepted');
  });
  it('refuses forged, altered, expired, early, replayed, long-lived and other-site orders, saying why', () => {
    const order = makeOrder(request, key, now);
    expect(refusal(makeOrder(request, generateSigningKey(), now))).toBe(codes.SIGNATURE_INVALID);
    expect(refusal({ ...order, target: '/etc' })).toBe(codes.SIGNATURE_INVALID);
    expect(refusal({ ...order, sig: undefined })).toBe(codes.SIGNATURE_INVALID);
    expect(refusal(order, { now: now + 60 * 60_000 })).toBe(codes.ORDER_EXPIRED);
    expect(refusal(order, { now: now - 60 * 60_000 })).toBe(codes.ORDER_NOT_YET_VALID);
    expect(refusal(order, { seen: (id) => id === order.id })).toBe(codes.ORDER_REPLAYED);
    expect(refusal(makeOrder({ ...request, site: 'clinic-b' }, key, now))).toBe(codes.ORDER_SITE);
    const long = signMessage({ ...order, expiresAt: order.issuedAt + 24 * 3600_000 }, key);
    expect(refusal(long)).toBe(codes.ORDER_LIFETIME);
    expect(refusal({ type: 'mv.restore-order.v1' })).toBe(codes.MESSAGE_INVALID);
    const v = checkOrder(order, { ...ctx, site: 'clinic-b' });
    expect(v.ok === false && v.reason).toMatch(/is for site clinic-a, this is site clinic-b/);
  });
  it('survives arbitrary junk', () => {
    for (const junk of [null, 1, 'x', [], {}, { type: 'mv.restore-order.v1', sig: {} }]) expect(checkOrder(junk, ctx).ok).toBe(false);
    expect(encode(makeOrder(request, key, now)).byteLength).toBeLessThan(4096);
  });
});
