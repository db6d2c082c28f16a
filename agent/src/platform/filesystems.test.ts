import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskProbe, diskStates } from '../daemon/disks.js';
import { realHost } from '../doctor/host.js';
import { filesystemOf } from './filesystems.js';

const MiB = 1024 ** 2;

describe('the file system a backup disk lives on', () => {
  it('is unknown for a path that is not there (an unplugged disk), and the heartbeat leaves its figures out', async () => {
    const gone = join(tmpdir(), `mv-fs-gone-${process.pid}`, 'medvault');
    expect(await filesystemOf(gone)).toBeUndefined();
    const [d] = await new DiskProbe(Date.now).report([{ path: gone, ok: false, error: 'not there' }]);
    expect(d).not.toHaveProperty('freeBytes');
  });

  it('a disk opened at start and unplugged since is not usable in the status file, and usable again once back', async () => {
    const disk = mkdtempSync(join(tmpdir(), 'mv-fs-disk-'));
    writeFileSync(join(disk, 'config'), 'x');
    const opened = [{ disk, repo: { id: 'r1' } }, { disk: '/mnt/never', error: '/mnt/never: the backup disk is not there (unplugged or not mounted)' }];
    expect(await diskStates(opened)).toEqual([{ path: disk, repo: 'r1', ok: true }, { path: '/mnt/never', ok: false, error: opened[1]!.error }]);
    renameSync(disk, `${disk}.away`);
    expect((await diskStates(opened))[0]).toEqual({ path: disk, repo: 'r1', ok: false, error: 'the backup disk is not there (unplugged or not mounted)' });
    renameSync(`${disk}.away`, disk);
    expect((await diskStates(opened))[0]!.ok).toBe(true);
  });

  // systeminformation's list holds no tmpfs (nor NFS, CIFS, FUSE): such a disk was reported with
  // the root file system's figures, and doctor said it was on the system file system
  it.skipIf(process.getuid?.() !== 0)('a tmpfs disk has its own size, free space and mount point, in the heartbeat and in doctor', async () => {
    const mnt = mkdtempSync(join(tmpdir(), 'mv-fs-tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', mnt]);
    try {
      const disk = join(mnt, 'medvault');
      mkdirSync(disk);
      const before = (await filesystemOf(disk))!;
      expect(before).toMatchObject({ mount: mnt, type: 'tmpfs', sizeBytes: 64 * MiB });
      writeFileSync(join(disk, 'fill'), Buffer.alloc(16 * MiB, 1));
      expect(before.freeBytes - (await filesystemOf(disk))!.freeBytes).toBeGreaterThanOrEqual(16 * MiB);
      const [d] = await new DiskProbe(Date.now).report([{ path: disk, ok: true }]);
      expect(d).toMatchObject({ mount: mnt, sizeBytes: 64 * MiB });
      expect(d!.freeBytes).toBeLessThan(49 * MiB);
      expect(await realHost.filesystemOf(disk)).toMatchObject({ mount: mnt, type: 'tmpfs' });
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  it.skipIf(process.getuid?.() !== 0)('a disk mounted over another mount on the same point (an automount) is named by the one on top, and a path with a space', async () => {
    const mnt = join(mkdtempSync(join(tmpdir(), 'mv-fs-stack-')), 'backup disk');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'mv-under', mnt]);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'mv-on-top', mnt]);
      try {
        expect(await filesystemOf(mnt)).toMatchObject({ device: 'mv-on-top', mount: mnt, type: 'tmpfs', sizeBytes: 8 * MiB });
      } finally {
        execFileSync('umount', [mnt]);
      }
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});
