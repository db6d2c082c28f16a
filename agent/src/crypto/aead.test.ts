import { describe, it, expect } from 'vitest';
import { createCipheriv, randomBytes } from 'node:crypto';
import { seal, sealInto, open, openInPlace, nonce, TAG_BYTES } from './aead.js';

/** What Node's own Cipher gives: the reference sealInto must match byte for byte. */
function reference(key: Buffer, iv: Buffer, plain: Buffer, aad?: Buffer): Buffer {
  const c = createCipheriv('aes-256-gcm', key, iv);
  if (aad) c.setAAD(aad);
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

describe('AES-256-GCM', () => {
  it('sealInto writes exactly what createCipheriv gives, at the offset and nowhere else', () => {
    for (const [n, aad] of [[0, undefined], [1, undefined], [65_536, undefined], [37, Buffer.from('MVPK')], [3_000_001, randomBytes(9)]] as const) {
      const key = randomBytes(32);
      const iv = nonce(0, n);
      const plain = randomBytes(n);
      const out = Buffer.alloc(n + TAG_BYTES + 10, 0xee);
      sealInto(key, iv, plain, out, 7, aad);
      expect(out.subarray(7, 7 + n + TAG_BYTES).equals(reference(key, iv, plain, aad))).toBe(true);
      expect(out.subarray(0, 7).every((b) => b === 0xee) && out.subarray(7 + n + TAG_BYTES).every((b) => b === 0xee)).toBe(true);
      expect(seal(key, iv, plain, aad).equals(reference(key, iv, plain, aad))).toBe(true);
      expect(open(key, iv, seal(key, iv, plain, aad), 'test', aad).equals(plain)).toBe(true);
      const sealed = seal(key, iv, plain, aad);
      const opened = openInPlace(key, iv, sealed, 'test', aad);
      expect(opened.equals(plain) && opened.buffer === sealed.buffer && opened.byteOffset === sealed.byteOffset).toBe(true);
    }
  });

  it('refuses a bad key, nonce or an output too small, writing nothing', () => {
    const out = Buffer.alloc(40, 0xee);
    expect(() => sealInto(randomBytes(16), randomBytes(12), Buffer.alloc(8), out, 0)).toThrow(/bad key/);
    expect(() => sealInto(randomBytes(32), randomBytes(8), Buffer.alloc(8), out, 0)).toThrow(/bad key/);
    expect(() => sealInto(randomBytes(32), randomBytes(12), Buffer.alloc(25), out, 0)).toThrow(/output range/);
    expect(() => sealInto(randomBytes(32), randomBytes(12), Buffer.alloc(8), out, 17)).toThrow(/output range/);
    expect(out.every((b) => b === 0xee)).toBe(true);
  });

  it('a flipped bit fails to open', () => {
    const key = randomBytes(32);
    const sealed = seal(key, nonce(1, 0), randomBytes(100));
    sealed[50]! ^= 1;
    expect(() => open(key, nonce(1, 0), sealed, 'blob x')).toThrow(/blob x: authentication failed/);
    expect(() => openInPlace(key, nonce(1, 0), sealed, 'blob x')).toThrow(/blob x: authentication failed/);
    const good = seal(key, nonce(1, 0), randomBytes(100));
    expect(() => openInPlace(key, nonce(1, 1), good, 'blob y')).toThrow(/blob y: authentication failed/); // wrong nonce
    expect(() => openInPlace(key, nonce(1, 0), good.subarray(0, 15), 'blob z')).toThrow(/too short/);
  });
});
