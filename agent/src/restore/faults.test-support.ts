/** Test-only: a snapshot of given files in a fresh repository, and what a restore left in its target. */
import { expect } from 'vitest';
import { mkdirSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { testRepo, tempDir } from '../repo/testing.js';
import { Archiver } from '../backup/archiver.js';
import { RESTORE_TEMP } from './restorer.js';

/** Every path under `dir`, relative, sorted. */
export function walk(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).map((e) => join(e.parentPath, e.name).slice(dir.length + 1)).sort();
}
/** The restore's temp files left under `dir`. */
export const temps = (dir: string) => walk(dir).filter((p) => RESTORE_TEMP.test(p.split('/').pop()!));

/** A backup of `files` (relative path → bytes) into a fresh test repository. */
export async function backedUp(files: Record<string, Buffer>) {
  const t = await testRepo();
  const src = await tempDir('mv-fault-src-');
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(join(src, name, '..'), { recursive: true });
    writeFileSync(join(src, name), data);
  }
  const b = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
  expect(b.partial).toBe(false);
  return { t, src, snapshot: b.snapshot };
}
