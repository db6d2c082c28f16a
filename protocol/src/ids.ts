/**
 * Identifiers shared by agent and controller. Every id is validated where it enters: ids become
 * NATS subject tokens and file names, so they never contain dots, wildcards, slashes or spaces.
 */
import { createHash, randomUUID } from 'node:crypto';

/** A site (one clinic appliance): 1-63 chars, lowercase letters, digits and '-', not starting with '-'. */
export const SITE_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** A repository id: 32 lowercase hex characters (128 random bits). */
export const REPO_RE = /^[0-9a-f]{32}$/;
/** A content hash: SHA-256 of an object's bytes as 64 lowercase hex characters. */
export const HASH_RE = /^[0-9a-f]{64}$/;
/** An order id: a UUID v4. */
export const ORDER_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The kinds of repository object that are replicated off site. */
export const objectKinds = ['config', 'key', 'pack', 'index', 'snapshot'] as const;
export type ObjectKind = (typeof objectKinds)[number];

export function newOrderId(): string {
  return randomUUID();
}

/** SHA-256 of the bytes as lower-case hex: the name of every content-addressed object. */
export function sha256Hex(...chunks: Uint8Array[]): string {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return h.digest('hex');
}
