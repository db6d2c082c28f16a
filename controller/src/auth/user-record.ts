/**
 * A person's account as stored in the MV_USERS KV bucket (key = user name). Validated on every
 * read: the bucket is data from the network like any other.
 */
import { z } from 'zod';
import { roles } from './roles.js';

export const USER_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const userName = z.string().regex(USER_RE, 'a user name: lowercase letters, digits, . _ -, at most 64');

export const userRecordSchema = z.strictObject({
  v: z.literal(1),
  name: userName,
  role: z.enum(roles),
  /** argon2id PHC string. */
  passwordHash: z.string().startsWith('$argon2id$'),
  /** TOTP secret, base32. */
  totpSecret: z.string().regex(/^[A-Z2-7]{16,128}$/),
  createdAt: z.number().int().nonnegative(),
  /** The last TOTP step accepted: a code for this step or an earlier one is refused. */
  lastTotpStep: z.number().int().optional(),
  /** Failed logins in a row since the last success or lock. */
  failures: z.number().int().nonnegative(),
  lockedUntil: z.number().int().nonnegative().optional(),
  /** SHA-256 (hex) of each unused recovery code; a code is removed when used (single use). */
  recoveryCodes: z.array(z.string().regex(/^[0-9a-f]{64}$/)).max(20).optional(),
});

export type UserRecord = z.infer<typeof userRecordSchema>;
