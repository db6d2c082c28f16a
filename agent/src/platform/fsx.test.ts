import { closeSync, existsSync, lstatSync, mkdtempSync, openSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { getXattrs, mknod, release, renameNoReplace, setTimes, setXattr, syncfs } from './fsx.js';

describe('fsx addon', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mv-fsx-'));
  it('reads and writes extended attributes on byte paths, without following symlinks', () => {
    const f = Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0x66, 0xff, 0x6f])]);
    writeFileSync(f, 'x');
    setXattr(f, 'user.mv.test', Buffer.from([0, 1, 2, 255]));
    expect(getXattrs(f)).toEqual([['user.mv.test', Buffer.from([0, 1, 2, 255])]]);
    symlinkSync(f, join(dir, 'link'));
    expect(getXattrs(join(dir, 'link'))).toEqual([]);
  });
  it('sets times to the nanosecond', () => {
    const f = join(dir, 'ns');
    writeFileSync(f, 'x');
    setTimes(f, 1_700_000_000_000_000_001n, 1_700_000_000_123_456_789n);
    expect(statSync(f, { bigint: true }).mtimeNs).toBe(1_700_000_000_123_456_789n);
  });
  it('makes FIFOs without opening them, and throws errno-coded errors naming the call', () => {
    mknod(join(dir, 'fifo'), 0o010640, 0n);
    expect(lstatSync(join(dir, 'fifo')).isFIFO()).toBe(true);
    expect(() => getXattrs(join(dir, 'missing'))).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'llistxattr' }));
    expect(() => mknod(join(dir, 'fifo'), 0o010640, 0n)).toThrow(/EEXIST/);
  });
  it('renames without replacing: an existing name is refused with EEXIST and both files stay', () => {
    writeFileSync(join(dir, 'a'), 'new');
    writeFileSync(join(dir, 'b'), 'old');
    expect(() => renameNoReplace(join(dir, 'a'), join(dir, 'b'))).toThrow(expect.objectContaining({ code: 'EEXIST', syscall: 'renameat2' }));
    expect(readFileSync(join(dir, 'b'), 'utf8')).toBe('old');
    renameNoReplace(join(dir, 'a'), join(dir, 'c'));
    expect([existsSync(join(dir, 'a')), readFileSync(join(dir, 'c'), 'utf8')]).toEqual([false, 'new']);
  });
  it('syncfs resolves on a healthy file system and rejects with an errno code (a writeback error: restore/faults.test.ts)', async () => {
    const fd = openSync(dir, 'r');
    await expect(syncfs(fd)).resolves.toBeUndefined();
    closeSync(fd);
    await expect(syncfs(-1)).rejects.toMatchObject({ code: 'EBADF', syscall: 'syncfs' });
  });
  it('release frees a buffer that spans its memory, and leaves a slice of shared memory alone', () => {
    const own = Buffer.allocUnsafeSlow(1 << 20);
    const before = process.memoryUsage().arrayBuffers;
    release(own);
    expect(own.length).toBe(0);
    expect(before - process.memoryUsage().arrayBuffers).toBe(1 << 20);
    const a = Buffer.from('pooled');
    const b = Buffer.from('neighbour'); // small buffers share one of Node's pool blocks
    release(a);
    expect([a.toString(), b.toString()]).toEqual(['pooled', 'neighbour']);
  });
});
