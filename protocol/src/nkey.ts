/**
 * NATS nkey seeds: the one credential of a site (`site.nk` from its enrolment bundle) and of the
 * controller (`controller.nk`, made by `medvault-controller init`). Both programs check the seed
 * file here before they connect, so a wrong file is named and what is wrong with it said, instead
 * of failing inside the NATS client as 'invalid encoded key'. No I/O: the caller passes its reader.
 *
 * The format (nats-io/nkeys): base32 (RFC 4648 alphabet, no padding) of 2 prefix bytes (seed, and
 * the role: user), the 32-byte Ed25519 seed and a CRC-16/XMODEM of those 34 bytes (little-endian):
 * 58 characters, starting 'SU'. Nothing here ever echoes the file's content: it is a secret.
 */
import { MedvaultError, codes } from './errors.js';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const SEED_LENGTH = 58;
/** The first two decoded bytes of a user seed: prefix 'seed' (18 << 3) and role 'user' (20 << 3), packed. */
const USER_SEED_PREFIX = [0x95, 0x00] as const;
/** What the second character of an nkey seed says it is (nkeys prefixes, by base32 letter). */
const roles: Record<string, string> = { O: 'an operator', A: 'an account', U: 'a user', N: 'a server', C: 'a cluster', X: 'a curve (xkey)' };

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

function base32Decode(text: string): Uint8Array {
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let bits = 0;
  let value = 0;
  let j = 0;
  for (const c of text) {
    value = ((value << 5) | BASE32.indexOf(c)) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[j++] = (value >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  return out;
}

/**
 * What is wrong with `text` as the content of an nkey user-seed file (surrounding white space is
 * allowed), or undefined when it is one. Says what it found, never what the text is.
 */
export function nkeySeedProblem(text: string): string | undefined {
  const seed = text.trim();
  if (seed === '') return 'the file is empty';
  if (seed.includes('-----BEGIN NATS USER JWT-----')) return 'it is a NATS .creds file (a JWT and a seed); the nkey file holds the seed alone';
  if (/\s/.test(seed)) return 'it holds more than one line or word; an nkey seed is one line';
  if (seed.length === 56 && /^[OAUNCX][A-Z2-7]+$/.test(seed)) return `it holds ${roles[seed[0]!]} public key (${seed[0]}…), not a seed (SU…)`;
  const bad = [...seed].findIndex((c) => !BASE32.includes(c));
  if (bad >= 0) return `character ${bad + 1} of ${seed.length} is not one of A-Z and 2-7, so it is not an nkey seed (58 characters, starting SU)`;
  if (seed.length !== SEED_LENGTH) return `it has ${seed.length} characters; an nkey seed has ${SEED_LENGTH}, starting SU`;
  if (seed[0] !== 'S') return `it does not start with S, so it is not an nkey seed (SU…)`;
  const raw = base32Decode(seed);
  const role = roles[seed[1]!];
  if (raw[0] !== USER_SEED_PREFIX[0] || raw[1] !== USER_SEED_PREFIX[1]) {
    return seed[1] !== 'U' && role ? `it is ${role} seed (S${seed[1]}…), not a user seed (SU…)` : 'its prefix is not that of an nkey user seed (SUA…)';
  }
  const sum = raw[34]! | (raw[35]! << 8);
  if (crc16(raw.subarray(0, 34)) !== sum) return 'its checksum does not match: the seed is damaged or mistyped';
  return undefined;
}

/**
 * The nkey user seed in `file` (its ASCII bytes, as the NATS client's nkeyAuthenticator takes them),
 * read with `read`. Throws MedvaultError MV_ERR_KEY_INVALID naming the file and what is wrong with
 * it when it cannot be read or is not a seed; `hint` (where the right file comes from) is appended.
 */
export function readNkeySeed(file: string, read: (file: string) => string, hint?: string): Uint8Array {
  const fail = (what: string, cause?: unknown) => new MedvaultError(codes.KEY_INVALID, `${file}: ${what}${hint ? `; ${hint}` : ''}`, cause === undefined ? {} : { cause });
  let text: string;
  try {
    text = read(file);
  } catch (cause) {
    const code = (cause as { code?: unknown }).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a folder' : (cause as Error).message;
    throw fail(`cannot read the NATS nkey seed: ${why}`, cause);
  }
  const problem = nkeySeedProblem(text);
  if (problem) throw fail(`not a NATS nkey seed: ${problem}`);
  return new TextEncoder().encode(text.trim());
}
