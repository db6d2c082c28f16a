/**
 * The controller's Ed25519 signing key at `<state_dir>/controller.key` (PKCS#8 PEM, mode 0600).
 * It signs orders and receipts; agents pin its public half (`medvault-controller key`).
 */
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MedvaultError, codes, exportSigningKey, generateSigningKey, importSigningKey, type SigningKey } from '@medvault/protocol';

export function keyFile(stateDir: string): string {
  return join(stateDir, 'controller.key');
}

/**
 * Creates the key file if it is missing (never overwrites one) and returns the key.
 * `created` says whether a new key was made.
 */
export function initSigningKey(stateDir: string): { key: SigningKey; created: boolean; file: string } {
  const file = keyFile(stateDir);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  try {
    writeFileSync(file, exportSigningKey(generateSigningKey()), { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
    return { key: loadSigningKey(stateDir), created: true, file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new MedvaultError(codes.STORAGE_FAILED, `${file}: cannot create the signing key`, { cause: err });
    }
    return { key: loadSigningKey(stateDir), created: false, file };
  }
}

/** Loads the key; refuses a missing, unreadable, group/world-readable or malformed key file. */
export function loadSigningKey(stateDir: string): SigningKey {
  const file = keyFile(stateDir);
  let pem: string;
  try {
    if ((statSync(file).mode & 0o077) !== 0) {
      throw new MedvaultError(codes.KEY_INVALID, `${file}: signing key must not be readable by group or others (chmod 600)`);
    }
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof MedvaultError) throw err;
    throw new MedvaultError(codes.KEY_INVALID, `${file}: cannot read the signing key (run medvault-controller init)`, { cause: err });
  }
  return importSigningKey(pem);
}
