/**
 * The few errors medvault raises, each with a stable code, a cause and whether retrying can help.
 * Only a program's main.ts maps them to exit codes; everything else throws or returns them.
 */

export const codes = {
  /** A message or file failed validation: wrong type, version, shape or size. */
  MESSAGE_INVALID: 'MV_ERR_MESSAGE_INVALID',
  /** A signature did not verify against the pinned key. */
  SIGNATURE_INVALID: 'MV_ERR_SIGNATURE_INVALID',
  ORDER_SITE: 'MV_ERR_ORDER_SITE',
  ORDER_EXPIRED: 'MV_ERR_ORDER_EXPIRED',
  ORDER_NOT_YET_VALID: 'MV_ERR_ORDER_NOT_YET_VALID',
  ORDER_LIFETIME: 'MV_ERR_ORDER_LIFETIME',
  ORDER_REPLAYED: 'MV_ERR_ORDER_REPLAYED',
  ORDER_TARGET: 'MV_ERR_ORDER_TARGET',
  /** An order's paths climb out of the snapshot ('..', '.', NUL) or are otherwise unsafe. */
  ORDER_PATH: 'MV_ERR_ORDER_PATH',
  /** An audit chain is broken: an entry was edited, inserted or removed. */
  AUDIT_BROKEN: 'MV_ERR_AUDIT_BROKEN',
  /** Repository: a format this reader does not know (magic or version). */
  FORMAT_UNKNOWN: 'MV_ERR_FORMAT_UNKNOWN',
  /** Repository: bytes that failed authentication or did not match their hash. */
  DATA_CORRUPT: 'MV_ERR_DATA_CORRUPT',
  /** A named thing (snapshot, object, site, user, order, path) does not exist. */
  NOT_FOUND: 'MV_ERR_NOT_FOUND',
  /** A key is missing or cannot unwrap the repository. */
  KEY_INVALID: 'MV_ERR_KEY_INVALID',
  /** Configuration or command-line input is wrong. */
  CONFIG_INVALID: 'MV_ERR_CONFIG_INVALID',
  /** Authentication or authorisation of a person failed. */
  AUTH_FAILED: 'MV_ERR_AUTH_FAILED',
  AUTH_FORBIDDEN: 'MV_ERR_AUTH_FORBIDDEN',
  /** Too many failed logins in a row: the account is locked for a while. */
  AUTH_LOCKED: 'MV_ERR_AUTH_LOCKED',
  /** Too many requests from one client; retry later. */
  RATE_LIMITED: 'MV_ERR_RATE_LIMITED',
  /** The thing already exists, or changed underneath a compare-and-set. */
  CONFLICT: 'MV_ERR_CONFLICT',
  /** The repository is locked by another writer. */
  REPO_LOCKED: 'MV_ERR_REPO_LOCKED',
  /** Storage failed (disk full, read-only, I/O error). */
  STORAGE_FAILED: 'MV_ERR_STORAGE_FAILED',
  /** The network or NATS failed or timed out; retrying may help. */
  TRANSPORT_FAILED: 'MV_ERR_TRANSPORT_FAILED',
  /** Restored bytes did not verify against the snapshot. */
  VERIFY_FAILED: 'MV_ERR_VERIFY_FAILED',
  /** A command was stopped by a signal (Ctrl-C, SIGTERM) before it ended. */
  INTERRUPTED: 'MV_ERR_INTERRUPTED',
} as const;

export type ErrorCode = (typeof codes)[keyof typeof codes];

export class MedvaultError extends Error {
  override readonly name = 'MedvaultError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
  }
  /** True when the same call may succeed later (network, busy lock); false for bad input or data. */
  get retryable(): boolean {
    return this.options.retryable ?? false;
  }
}

/** True when `err` is a MedvaultError with `code`. */
export function isError(err: unknown, code?: ErrorCode): err is MedvaultError {
  return err instanceof MedvaultError && (code === undefined || err.code === code);
}
