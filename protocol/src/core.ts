/**
 * The part of the protocol that loads no message schema: the errors and the SHA-256 of objects.
 * The agent's crypto pool threads import only this (`@medvault/protocol/core`): zod and the
 * schemas cost each thread ~11 MiB of RSS. The barrel (index.ts) exports all of it too.
 */
import { createHash } from 'node:crypto';

export * from './errors.js';

/** The lowercase hex SHA-256 of the chunks, concatenated: every content-addressed object's name. */
export function sha256Hex(...chunks: Uint8Array[]): string {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return h.digest('hex');
}
