/**
 * A key file (`keys/<sha256>`): magic "MVKY", version, then JSON holding the master key twice:
 * wrapped by the local key (AES-256-GCM, AAD = repo id) and sealed to the recovery public key (HPKE).
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { MedvaultError, codes, REPO_RE } from '@medvault/protocol';
import { magic, header, checkHeader, HEADER_BYTES, parseJson } from './format.js';
import { seal, open } from '../crypto/aead.js';

/**
 * HPKE (crypto/recovery.ts) is loaded only when a key file is made or opened with the recovery
 * key: its ~40 modules cost every other command ~50 ms of CPU at start.
 */
const recovery = () => import('../crypto/recovery.js');

const b64 = z.string().regex(/^[A-Za-z0-9_-]*$/);
const keyFileSchema = z.strictObject({
  repo: z.string().regex(REPO_RE),
  created: z.number().int(),
  local: z.strictObject({ nonce: b64, ct: b64 }),
  recovery: z.strictObject({ enc: b64, ct: b64 }),
});

/** How to open a repository: its local key, or the organisation's recovery private key. */
export type Unlock = { localKey: Uint8Array } | { recoveryPrivateKey: string };

const info = (repo: string) => Buffer.from(`medvault v1 master key ${repo}`);

export async function encodeKeyFile(repo: string, master: Uint8Array, localKey: Uint8Array, recoveryPublicKey: string, now: number): Promise<Buffer> {
  const iv = randomBytes(12);
  const sealed = await (await recovery()).sealToRecovery(recoveryPublicKey, master, info(repo));
  const json = {
    repo,
    created: now,
    local: { nonce: iv.toString('base64url'), ct: seal(localKey, iv, master, info(repo)).toString('base64url') },
    recovery: { enc: sealed.enc.toString('base64url'), ct: sealed.ct.toString('base64url') },
  };
  return Buffer.concat([header(magic.key), Buffer.from(JSON.stringify(json))]);
}

/** Unwraps the master key; MV_ERR_KEY_INVALID when `unlock` is not a key of this repository. */
export async function decodeKeyFile(b: Uint8Array, repo: string, unlock: Unlock, what: string): Promise<Buffer> {
  checkHeader(b, magic.key, what);
  const r = keyFileSchema.safeParse(parseJson(b.subarray(HEADER_BYTES), what));
  if (!r.success) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: ${r.error.issues[0]?.message}`);
  if (r.data.repo !== repo) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: belongs to repository ${r.data.repo}`);
  let master: Buffer;
  if ('localKey' in unlock) {
    try {
      master = open(unlock.localKey, Buffer.from(r.data.local.nonce, 'base64url'), Buffer.from(r.data.local.ct, 'base64url'), what, info(repo));
    } catch (cause) {
      throw new MedvaultError(codes.KEY_INVALID, `the local key does not open repository ${repo}`, { cause });
    }
  } else {
    master = await (await recovery()).openWithRecovery(unlock.recoveryPrivateKey, { enc: Buffer.from(r.data.recovery.enc, 'base64url'), ct: Buffer.from(r.data.recovery.ct, 'base64url') }, info(repo));
  }
  if (master.length !== 32) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: master key is not 32 bytes`);
  return master;
}
