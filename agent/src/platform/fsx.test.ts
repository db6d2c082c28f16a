import { closeSync, constants, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash, randomFillSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import fsxAddon from '@medvault/fsx';
import { aligned, getXattrs, grown, mknod, release, renameNoReplace, scanDir, setTimes, setXattr, syncfs, writeDirect } from './fsx.js';

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
  it('scanDir lists a folder with byte names and the lstat of each entry, as Node gives it; never follows a symlink', async () => {
    const d = join(dir, 'scan');
    mkdirSync(d);
    const odd = Buffer.concat([Buffer.from(`${d}/`), Buffer.from([0x66, 0xff, 0x0a, 0x20])]);
    writeFileSync(odd, 'hello');
    setTimes(odd, 5n, 123n); // within the first second of 1970: no leading zeros
    mkdirSync(join(d, 'sub'));
    symlinkSync('sub', join(d, 'link'));
    mknod(join(d, 'fifo'), 0o010600, 0n);
    const { names, nums, text } = await scanDir(d);
    const list = names.toString('latin1').split('\0').slice(0, -1).map((n) => Buffer.from(n, 'latin1'));
    expect(list.map((n) => n.toString('latin1')).sort()).toEqual([Buffer.from([0x66, 0xff, 0x0a, 0x20]).toString('latin1'), 'fifo', 'link', 'sub'].sort());
    const lines = text.split('\n');
    list.forEach((n, i) => {
      const st = lstatSync(Buffer.concat([Buffer.from(`${d}/`), n]), { bigint: true });
      expect([...nums.subarray(i * 6, i * 6 + 6)]).toEqual([0, Number(st.mode), Number(st.uid), Number(st.gid), Number(st.size), Number(st.nlink)]);
      expect(lines[i]).toBe([st.mtimeNs, st.ctimeNs, st.ino, st.dev, st.rdev].join(' '));
    });
    expect(lines[list.findIndex((n) => n.includes(0xff))]!.split(' ')[0]).toBe('123');
    await expect(scanDir(join(d, 'link'))).rejects.toMatchObject({ code: 'ENOTDIR', syscall: 'scandir' }); // O_NOFOLLOW with O_DIRECTORY
    await expect(scanDir(join(d, 'missing'))).rejects.toMatchObject({ code: 'ENOENT', syscall: 'scandir' });
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
  it('release leaves a buffer that writeDirect is still writing: the file gets its bytes (its memory was freed under the write: a segfault)', async () => {
    const data = randomFillSync(Buffer.allocUnsafeSlow(64 << 20));
    const want = createHash('sha256').update(data).digest('hex');
    const f = join(dir, 'direct');
    const fd = openSync(f, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT, 0o600);
    try {
      const writing = writeDirect(fd, data, 0);
      release(data);
      expect(data.length).toBe(1 << 26); // still there
      await writing;
    } finally {
      closeSync(fd);
    }
    expect(createHash('sha256').update(readFileSync(f)).digest('hex')).toBe(want);
    release(data); // written: freed now
    expect(data.length).toBe(0);
  });
  it('writeDirect writes the exact bytes from a buffer at a 4096-byte boundary (in place) and from any other (bounced), of any length', async () => {
    const f = join(dir, 'direct-sizes');
    for (const size of [1, 4095, 4096, 4097, (3 << 20) + 5, 8 << 20])
      for (const at of [0, 1]) {
        const b = aligned(size + at).subarray(at); // at 1: one byte past the boundary
        randomFillSync(b);
        const fd = openSync(f, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_DIRECT, 0o600);
        try {
          await writeDirect(fd, b, 8192);
        } finally {
          closeSync(fd);
        }
        const got = readFileSync(f);
        expect(got.length, `${size} bytes at +${at}`).toBe(8192 + size);
        expect(got.subarray(8192).equals(b), `${size} bytes at +${at}`).toBe(true);
      }
  });
  it('writeDirect refuses a position that is not a whole multiple of 4096 (4096.5 was taken as 4096), negative or not a number', () => {
    const fd = openSync(join(dir, 'direct-pos'), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_DIRECT, 0o600);
    try {
      for (const at of [4096.5, 100, -4096, NaN, Infinity, 2 ** 60]) expect(() => writeDirect(fd, Buffer.alloc(1), at), String(at)).toThrow(/position aligned to 4096/);
    } finally {
      closeSync(fd);
    }
  });
  it('aligned gives bytes at a 4096-byte boundary, in the buffer given when it has room, else in a new one (the one given freed)', () => {
    const a = aligned(5 << 20);
    expect([a.length, a.byteOffset]).toEqual([5 << 20, fsxAddon.alignGap(a.buffer)]);
    const b = aligned(1 << 20, a.buffer);
    expect(b.buffer).toBe(a.buffer);
    expect(b.byteOffset).toBe(a.byteOffset);
    const c = aligned(6 << 20, b.buffer); // no room: a new one
    expect(c.buffer).not.toBe(a.buffer);
    expect([a.length, b.length, c.length]).toEqual([0, 0, 6 << 20]); // the old one was freed
  });
  it('grown keeps a buffer large enough, and frees the one it outgrows (restore threads kept each outgrown read buffer)', () => {
    const small = Buffer.allocUnsafeSlow(1 << 20);
    const big = grown(small, 3 << 20);
    expect([small.length, big.length]).toEqual([0, 3 << 20]);
    expect(grown(big, 5)).toBe(big);
  });
});
