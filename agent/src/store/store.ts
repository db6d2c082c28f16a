/**
 * store/: dumb, immutable byte storage addressed by (kind, name). It knows nothing of packs,
 * keys or encryption; repo/ gives the bytes meaning. Wrappers (read-only, faults) share this interface.
 */
import { MedvaultError, codes, HASH_RE, sha256Hex } from '@medvault/protocol';

/** What a repository stores: the replicated object kinds plus the local writer lock. */
export const storeKinds = ['config', 'key', 'pack', 'index', 'snapshot', 'lock'] as const;
export type StoreKind = (typeof storeKinds)[number];

/** Kinds whose name MUST be the SHA-256 hex of the exact bytes. */
export const contentAddressed: ReadonlySet<StoreKind> = new Set(['key', 'pack', 'index', 'snapshot']);

export interface StoreEntry {
  name: string;
  size: number;
}

export interface ReadableStore {
  /** The object's bytes, or a byte range of them; undefined when it does not exist. */
  get(kind: StoreKind, name: string, range?: { offset: number; length: number }): Promise<Buffer | undefined>;
  has(kind: StoreKind, name: string): Promise<boolean>;
  /** Every object of `kind`, in no particular order. */
  list(kind: StoreKind): AsyncIterable<StoreEntry>;
  /**
   * Optional hint: these packs will be read soon, in this order (a restore knows its next chunks).
   * A remote store starts fetching them; a local disk needs no hint.
   */
  prefetch?(kind: 'pack', names: readonly string[]): void;
}

export interface Store extends ReadableStore {
  /**
   * Stores `data` atomically and durably under (kind, name), never overwriting: returns false when
   * the name already exists (the existing object is kept). For content-addressed kinds the name
   * MUST equal sha256(data), else MV_ERR_DATA_CORRUPT and nothing is written. Keeps no reference
   * to `data` once settled: the writer frees a pack's buffer right after its put (release).
   */
  put(kind: StoreKind, name: string, data: Uint8Array): Promise<boolean>;
  /** Removes an object; absent is not an error. Only pruning and lock release use this. */
  delete(kind: StoreKind, name: string): Promise<void>;
  /** Atomically replaces a lock object (the holder refreshing it); no other kind is ever replaced. */
  replace(kind: 'lock', name: string, data: Uint8Array): Promise<void>;
  /** Removes leftovers of interrupted writes; only the writer-lock holder calls it. Returns how many. */
  sweep(): Promise<number>;
}

const LOCK_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Refuses names that could escape the layout or do not fit the kind. */
export function validateName(kind: StoreKind, name: string): void {
  const ok = contentAddressed.has(kind) ? HASH_RE.test(name) : kind === 'config' ? name === 'config' : LOCK_NAME_RE.test(name);
  if (!ok) throw new MedvaultError(codes.MESSAGE_INVALID, `invalid ${kind} name ${JSON.stringify(name).slice(0, 80)}`);
}

/** Buffers whose SHA-256 was just computed (the crypto pool hashes a pack before it is put), so put need not hash them again. */
const hashed = new WeakMap<Uint8Array, string>();
/** Records that `data` hashes to `hash` (call only with a hash computed from these very bytes, which then MUST NOT change). */
export function hashedAs(data: Uint8Array, hash: string): void {
  hashed.set(data, hash);
}

/** Checks validity of name and, for content-addressed kinds, that it is the hash of `data` (unless hashedAs said so). */
export function validatePut(kind: StoreKind, name: string, data: Uint8Array): void {
  validateName(kind, name);
  if (contentAddressed.has(kind) && hashed.get(data) !== name) {
    const actual = sha256Hex(data);
    if (actual !== name) throw new MedvaultError(codes.DATA_CORRUPT, `${kind} ${name}: bytes hash to ${actual}`);
  }
}
