/** Writes the private half of a new recovery key pair to a file (mode 0600, never overwriting). */
import { open, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { MedvaultError, codes } from '@medvault/protocol';
import { generateRecoveryKeyPair } from './recovery.js';

/** Returns the public half (base64url) to put in agent.toml as `recovery_public_key`. */
export async function writeRecoveryKeyPair(file: string): Promise<string> {
  const kp = await generateRecoveryKeyPair();
  await mkdir(dirname(file), { recursive: true });
  const fh = await open(file, 'wx', 0o600).catch((cause) => {
    throw new MedvaultError(codes.CONFIG_INVALID, `${file}: cannot create (${(cause as NodeJS.ErrnoException).code}); not overwriting an existing key`, { cause });
  });
  try {
    await fh.writeFile(`${kp.privateKey}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return kp.publicKey;
}
