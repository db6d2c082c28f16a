/** The appliance's local key: a file of exactly 32 random bytes, mode 0600, that wraps master keys. */
import { readFile, open, mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { MedvaultError, codes } from '@medvault/protocol';
import { KEY_BYTES } from './keys.js';

/** Reads and validates a local key file; MV_ERR_KEY_INVALID when missing or not 32 bytes. */
export async function readLocalKey(file: string): Promise<Buffer> {
  let b: Buffer;
  try {
    b = await readFile(file);
  } catch (cause) {
    throw new MedvaultError(codes.KEY_INVALID, `${file}: cannot read the local key`, { cause });
  }
  if (b.length !== KEY_BYTES) throw new MedvaultError(codes.KEY_INVALID, `${file}: a local key is exactly ${KEY_BYTES} bytes, found ${b.length}`);
  return b;
}

/** Creates a new local key file (mode 0600) unless one exists; returns the key in the file. */
export async function createLocalKey(file: string): Promise<Buffer> {
  await mkdir(dirname(file), { recursive: true });
  let fh;
  try {
    fh = await open(file, 'wx', 0o600);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'EEXIST') return readLocalKey(file);
    throw new MedvaultError(codes.STORAGE_FAILED, `${file}: cannot create the local key`, { cause });
  }
  const key = randomBytes(KEY_BYTES);
  try {
    await fh.writeFile(key);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return key;
}
