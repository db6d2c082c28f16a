/** Test-only: a byte-exact fingerprint of a tree (type, content hash, link target) by relative path. */
import { createHash } from 'node:crypto';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export async function fingerprintTree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (abs: string, rel: string) => {
    for (const name of await readdir(abs)) {
      const a = join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = await lstat(a);
      if (st.isSymbolicLink()) out.set(r, `link:${await readlink(a)}`);
      else if (st.isDirectory()) {
        out.set(r, 'dir');
        await walk(a, r);
      } else out.set(r, `file:${st.mode.toString(8)}:${createHash('sha256').update(await readFile(a)).digest('hex')}`);
    }
  };
  await walk(root, '');
  return out;
}
