/**
 * Canonical encoding: the one byte form of a message, used on the wire and for signatures.
 * JSON, UTF-8, object keys sorted by code unit, no white space, `undefined` members omitted.
 * Numbers MUST be finite; encoding anything else (NaN, bigint, functions) throws.
 * decode(encode(m)) deep-equals m, and encode is a function of the value alone.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json | undefined };

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`canonical encoding: number ${value} is not finite`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.keys(value as object)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  throw new TypeError(`canonical encoding: ${typeof value} cannot be encoded`);
}

export function encode(value: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalJson(value));
}
