/**
 * The only way bytes become messages. `decode` parses JSON, refuses unknown or unexpected types,
 * validates every member against its schema and returns a typed message, or throws
 * MV_ERR_MESSAGE_INVALID naming what was wrong. Nothing from the network or disk skips it.
 */
import { MedvaultError, codes } from './errors.js';
import { type MessageOf, type MessageType, messageTypes } from './messages.js';

/** Larger messages are refused before parsing (object parts carry their bytes outside the JSON). */
export const MAX_MESSAGE_BYTES = 256 * 1024;

export function decode<T extends MessageType>(bytes: Uint8Array | string, ...expected: T[]): MessageOf<T> {
  const size = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.byteLength;
  if (size > MAX_MESSAGE_BYTES) throw invalid(`message of ${size} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  let value: unknown;
  try {
    value = JSON.parse(typeof bytes === 'string' ? bytes : new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (cause) {
    throw invalid('message is not UTF-8 JSON', cause);
  }
  return validate(value, ...expected);
}

/** Validates an already parsed value; same contract as decode. */
export function validate<T extends MessageType>(value: unknown, ...expected: T[]): MessageOf<T> {
  const type = (value as { type?: unknown } | null)?.type;
  if (typeof type !== 'string' || !Object.hasOwn(messageTypes, type)) {
    throw invalid(`unknown message type ${JSON.stringify(type)}`);
  }
  if (expected.length > 0 && !(expected as string[]).includes(type)) {
    throw invalid(`expected ${expected.join(' or ')}, got ${type}`);
  }
  const parsed = messageTypes[type as MessageType].safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw invalid(`${type}: ${issue.path.join('.') || '(message)'}: ${issue.message}`);
  }
  return parsed.data as MessageOf<T>;
}

function invalid(message: string, cause?: unknown): MedvaultError {
  return new MedvaultError(codes.MESSAGE_INVALID, message, { cause });
}
