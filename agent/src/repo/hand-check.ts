/**
 * Predicates for parsed JSON checked by hand before zod (repo/tree.ts, backup/walk-cache.ts): each
 * caller keeps the same rules as its zod schema, never looser, and sends what it does not accept
 * to zod, which decides; by hand costs a fraction of zod's time on paths every backup takes.
 */
export const uint = (x: unknown, max = Number.MAX_SAFE_INTEGER): boolean => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 && x <= max;
export const str = (x: unknown, re: RegExp): boolean => typeof x === 'string' && re.test(x);
export const optional = (x: unknown, ok: (x: unknown) => boolean): boolean => x === undefined || ok(x);
export const plainObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
