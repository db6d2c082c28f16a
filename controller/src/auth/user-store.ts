/**
 * People's accounts in the JetStream KV bucket MV_USERS, the system of record (several controllers
 * share it). Every change is a compare-and-set on the entry's revision, so two logins racing with
 * the same TOTP code cannot both succeed.
 */
import { MedvaultError, codes } from '@medvault/protocol';
import type { KvBucket } from '../bus.js';
import { MIN_PASSWORD_LENGTH, hashPassword } from './password.js';
import type { Role } from './roles.js';
import { newRecoveryCodes } from './recovery-codes.js';
import { newTotpSecret } from './totp.js';
import { USER_RE, userRecordSchema, type UserRecord } from './user-record.js';

export const USERS_BUCKET = 'MV_USERS';

export class UserStore {
  constructor(private readonly kv: KvBucket) {}

  /** The account and its revision; undefined when there is none. Throws on a corrupt entry. */
  async get(name: string): Promise<{ user: UserRecord; revision: number } | undefined> {
    if (!USER_RE.test(name)) return undefined;
    const e = await this.kv.get(name);
    if (!e) return undefined;
    let raw: unknown;
    try {
      raw = JSON.parse(new TextDecoder().decode(e.value));
    } catch (cause) {
      throw new MedvaultError(codes.MESSAGE_INVALID, `${USERS_BUCKET}/${name}: not JSON`, { cause });
    }
    const p = userRecordSchema.safeParse(raw);
    if (!p.success) throw new MedvaultError(codes.MESSAGE_INVALID, `${USERS_BUCKET}/${name}: ${p.error.issues[0]!.path.join('.')}: ${p.error.issues[0]!.message}`);
    return { user: p.data, revision: e.revision };
  }

  /**
   * Creates an account with a new TOTP secret and ten single-use recovery codes (returned once, in
   * `newRecoveryCodes`; only their hashes are stored); MV_ERR_CONFLICT if the name is taken.
   */
  async add(name: string, role: Role, password: string, now: number): Promise<UserRecord & { newRecoveryCodes: string[] }> {
    if (!USER_RE.test(name)) throw new MedvaultError(codes.CONFIG_INVALID, `user name ${JSON.stringify(name)}: lowercase letters, digits, . _ -, at most 64`);
    if (password.length < MIN_PASSWORD_LENGTH) throw new MedvaultError(codes.CONFIG_INVALID, `password must have at least ${MIN_PASSWORD_LENGTH} characters`);
    const rc = newRecoveryCodes();
    const user: UserRecord = userRecordSchema.parse({
      v: 1,
      name,
      role,
      passwordHash: await hashPassword(password),
      totpSecret: newTotpSecret(),
      createdAt: now,
      failures: 0,
      recoveryCodes: rc.hashes,
    });
    await this.kv.create(name, encodeUser(user)).catch((err) => {
      if (err instanceof MedvaultError && err.code === codes.CONFLICT) throw new MedvaultError(codes.CONFLICT, `user ${name} already exists`);
      throw err;
    });
    return { ...user, newRecoveryCodes: rc.plain };
  }

  /** Writes `user` if its entry is still at `revision`; MV_ERR_CONFLICT otherwise. */
  async save(user: UserRecord, revision: number): Promise<number> {
    return this.kv.update(user.name, encodeUser(userRecordSchema.parse(user)), revision);
  }

  /** New recovery codes for `name`, replacing all unused ones; returns them (shown once). */
  async renewRecoveryCodes(name: string): Promise<string[]> {
    for (let attempt = 0; ; attempt++) {
      const e = await this.get(name);
      if (!e) throw new MedvaultError(codes.NOT_FOUND, `no user ${name}`);
      const rc = newRecoveryCodes();
      try {
        await this.save({ ...e.user, recoveryCodes: rc.hashes }, e.revision);
        return rc.plain;
      } catch (err) {
        if (attempt >= 3 || !(err instanceof MedvaultError && err.code === codes.CONFLICT)) throw err;
      }
    }
  }

  async list(): Promise<UserRecord[]> {
    const out: UserRecord[] = [];
    for (const k of await this.kv.keys()) {
      const e = await this.get(k);
      if (e) out.push(e.user);
    }
    return out;
  }
}

function encodeUser(u: UserRecord): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(u));
}
