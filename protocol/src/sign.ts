/**
 * Ed25519 signatures over canonical encodings. The signer removes `sig`, encodes the rest
 * canonically and signs those bytes; a verifier does the same with the key it pinned at enrolment.
 * Only orders and receipts are signed (they make an agent act or believe something is off site).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { encode } from './canonical.js';
import { MedvaultError, codes } from './errors.js';
import type { Signature } from './messages.js';

export interface SigningKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** Key id: first 16 hex characters of SHA-256 over the raw 32-byte Ed25519 public key. */
export function keyId(publicKey: KeyObject): string {
  const raw = publicKey.export({ format: 'jwk' }).x!;
  return createHash('sha256').update(Buffer.from(raw, 'base64url')).digest('hex').slice(0, 16);
}

export function generateSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { kid: keyId(publicKey), privateKey, publicKey };
}

/** PEM (PKCS#8) of a private key, for the controller's key file. */
export function exportSigningKey(key: SigningKey): string {
  return key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

export function importSigningKey(pem: string): SigningKey {
  try {
    const privateKey = createPrivateKey(pem);
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`key type ${privateKey.asymmetricKeyType}`);
    const publicKey = createPublicKey(privateKey);
    return { kid: keyId(publicKey), privateKey, publicKey };
  } catch (cause) {
    throw new MedvaultError(codes.KEY_INVALID, 'not an Ed25519 private key in PEM form', { cause });
  }
}

/** The public half as base64url of the raw 32 bytes: what an agent pins. */
export function exportPublicKey(publicKey: KeyObject): string {
  return publicKey.export({ format: 'jwk' }).x!;
}

export function importPublicKey(raw: string): KeyObject {
  if (!/^[A-Za-z0-9_-]{43}$/.test(raw)) throw new MedvaultError(codes.KEY_INVALID, 'pinned public key must be 43 base64url characters');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw }, format: 'jwk' });
}

/** Returns a copy of `message` with `sig` set over everything else. */
export function signMessage<T extends { sig?: Signature }>(message: T, key: SigningKey): T {
  const { sig: _drop, ...body } = message;
  const value = sign(null, encode(body), key.privateKey).toString('base64url');
  return { ...(body as T), sig: { alg: 'ed25519', kid: key.kid, value } };
}

/**
 * Throws MV_ERR_SIGNATURE_INVALID unless `message.sig` is a valid signature by `publicKey` over
 * the rest of the message. A missing signature, another key id or any changed member all fail.
 */
export function verifyMessage(message: { sig?: Signature }, publicKey: KeyObject): void {
  const { sig, ...body } = message;
  if (!sig) throw new MedvaultError(codes.SIGNATURE_INVALID, 'message is not signed');
  if (sig.kid !== keyId(publicKey)) {
    throw new MedvaultError(codes.SIGNATURE_INVALID, `signed by key ${sig.kid}, not by the pinned controller key ${keyId(publicKey)}`);
  }
  let ok = false;
  try {
    ok = verify(null, encode(body), publicKey, Buffer.from(sig.value, 'base64url'));
  } catch {
    ok = false;
  }
  if (!ok) throw new MedvaultError(codes.SIGNATURE_INVALID, 'signature does not verify: the message was altered or forged');
}
