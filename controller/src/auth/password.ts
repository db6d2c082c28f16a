/** Password hashing with argon2id (memory-hard; OWASP's 19 MiB, 2 passes, 1 lane). */
import argon2 from 'argon2';

export const MIN_PASSWORD_LENGTH = 12;

export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 });
}

/** False for a wrong password or a malformed hash; never throws for those. */
export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}

let dummy: Promise<string> | undefined;
/** Spends the time a real verification would, so unknown user names cannot be told apart by timing. */
export async function verifyNothing(password: string): Promise<false> {
  dummy ??= hashPassword('medvault-timing-equaliser');
  await verifyPassword(await dummy, password);
  return false;
}
