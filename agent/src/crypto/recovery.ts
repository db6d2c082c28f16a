/**
 * The organisation's recovery key: an X25519 key pair (raw 32 bytes, base64url). Master keys are
 * sealed to its public half with HPKE (RFC 9180: DHKEM-X25519-HKDF-SHA256, HKDF-SHA256, AES-256-GCM).
 */
import { CipherSuite, DhkemX25519HkdfSha256, HkdfSha256, Aes256Gcm } from '@hpke/core';
import { MedvaultError, codes } from '@medvault/protocol';

const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
const B64_KEY_RE = /^[A-Za-z0-9_-]{43}$/;

function rawKey(b64: string, what: string): Buffer {
  const raw = B64_KEY_RE.test(b64) ? Buffer.from(b64, 'base64url') : Buffer.alloc(0);
  if (raw.length !== 32) throw new MedvaultError(codes.KEY_INVALID, `${what}: not a 32-byte base64url key`);
  return raw;
}

/** A fresh recovery key pair; the private half is meant to be kept offline by IT. */
export async function generateRecoveryKeyPair(): Promise<{ publicKey: string; privateKey: string }> {
  const kp = await suite.kem.generateKeyPair();
  return {
    publicKey: Buffer.from(await suite.kem.serializePublicKey(kp.publicKey)).toString('base64url'),
    privateKey: Buffer.from(await suite.kem.serializePrivateKey(kp.privateKey)).toString('base64url'),
  };
}

/** Seals `secret` to the recovery public key; `info` binds it to its context (the repository). */
export async function sealToRecovery(publicKey: string, secret: Uint8Array, info: Uint8Array): Promise<{ enc: Buffer; ct: Buffer }> {
  const pk = await suite.kem.deserializePublicKey(rawKey(publicKey, 'recovery public key'));
  const r = await suite.seal({ recipientPublicKey: pk, info }, secret);
  return { enc: Buffer.from(r.enc), ct: Buffer.from(r.ct) };
}

/** Opens a sealed secret with the recovery private key; MV_ERR_KEY_INVALID when it is the wrong key. */
export async function openWithRecovery(privateKey: string, sealed: { enc: Uint8Array; ct: Uint8Array }, info: Uint8Array): Promise<Buffer> {
  try {
    const sk = await suite.kem.deserializePrivateKey(rawKey(privateKey, 'recovery private key'));
    return Buffer.from(await suite.open({ recipientKey: sk, enc: sealed.enc, info }, sealed.ct));
  } catch (cause) {
    if (cause instanceof MedvaultError) throw cause;
    throw new MedvaultError(codes.KEY_INVALID, 'the recovery private key does not open this repository', { cause });
  }
}
