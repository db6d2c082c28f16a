/** The appliance's local key: a file of exactly 32 random bytes, mode 0600, that wraps master keys. */
import { readFile, open, mkdir, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { MedvaultError, codes } from '@medvault/protocol';
import { KEY_BYTES } from './keys.js';

/**
 * Reads and validates a local key file; MV_ERR_KEY_INVALID when missing, not 32 bytes, or open to
 * anyone but its owner (group or other permission bits: a key others can read protects nothing).
 */
export async function readLocalKey(file: string): Promise<Buffer> {
  let b: Buffer;
  try {
    const mode = (await stat(file)).mode & 0o777;
    if (mode & 0o077) throw new MedvaultError(codes.KEY_INVALID, `${file}: the local key is open to others (mode ${mode.toString(8).padStart(4, '0')}); run chmod 600 ${file}`);
    b = await readFile(file);
  } catch (cause) {
    if (cause instanceof MedvaultError) throw cause;
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT')
      throw new MedvaultError(codes.KEY_INVALID, `${file}: there is no local key: run medvault-agent init first (a new appliance), or, if this appliance's key was lost, open its repositories with --recovery-key FILE`, { cause });
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
