/**
 * Where a path really leads, and whether it lies in a folder: restore orders are confined to the
 * restore roots with these, and an in-place restore finds the record stores it writes into.
 */
import { existsSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';

/** `p` made absolute with every symlink of its existing ancestors resolved; the missing rest is kept as written. */
export function realPathOf(p: string): string {
  let existing = resolve(p);
  const rest: string[] = [];
  while (!existsSync(existing)) {
    rest.unshift(existing.slice(dirname(existing).length + 1));
    existing = dirname(existing);
  }
  return resolve(realpathSync(existing), ...rest);
}

/** Whether absolute path `p` is `root` or lies inside it (by name: resolve symlinks first). */
export function isWithin(p: string, root: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}
