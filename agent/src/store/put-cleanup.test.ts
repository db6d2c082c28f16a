import { mkdtemp } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sha256Hex } from '@medvault/protocol';
import { DirStore } from './dir-store.js';
import { setFaults } from './faults.js';

// a failing disk: removing the temp file of a failed write fails too (EIO seen with an ext4 shut down mid-backup)
const failRm = vi.hoisted(() => ({ on: false }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const orig = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...orig,
    rm: (async (p: string, o?: object) => {
      if (failRm.on && String(p).endsWith('.tmp')) throw Object.assign(new Error(`EIO: i/o error, unlink '${p}'`), { code: 'EIO', errno: -5, syscall: 'unlink' });
      return orig.rm(p, o);
    }) as typeof orig.rm,
  };
});

describe('DirStore on a failing disk', () => {
  afterEach(() => {
    failRm.on = false;
    setFaults(undefined);
  });

  it('put and replace reject with the storage error naming the object when the temp file cannot be removed either (not the bare EIO of the cleanup)', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'mv-store-')), 'repo');
    const store = new DirStore(dir);
    await store.init();
    const data = randomBytes(2 << 20); // a pack: O_DIRECT where the file system has it
    const name = sha256Hex(data);
    failRm.on = true;
    setFaults('match=put.fsync,action=eio');
    const put = await store.put('pack', name, data).catch((e: unknown) => e);
    expect(put).toMatchObject({ code: 'MV_ERR_STORAGE_FAILED' });
    expect((put as Error).message).toContain(`${name}: cannot write: EIO: injected fault at put.fsync`);
    const replace = await store.replace('lock', 'writer', Buffer.from('{}')).catch((e: unknown) => e);
    expect(replace).toMatchObject({ code: 'MV_ERR_STORAGE_FAILED' });
    expect((replace as Error).message).toContain('writer: cannot replace: EIO: injected fault at put.fsync');
    failRm.on = false;
    setFaults(undefined);
    expect(await store.put('pack', name, data)).toBe(true); // the next run writes it
  });
});
