/**
 * What survives a round trip, each condition made for real on disk: hard links (restored as hard
 * links), extended attributes, nanosecond mtimes on files, folders and symlinks, owners (as root),
 * FIFOs and device nodes (recorded without being opened, made again with mknod), sockets
 * (reported, not recreated).
 */
import { chownSync, linkSync, lstatSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Archiver } from '../backup/archiver.js';
import { getXattrs, mknod, setTimes, setXattr } from '../platform/fsx.js';
import { testRepo, tempDir } from '../repo/testing.js';
import { Restorer } from './restorer.js';

const root = process.getuid?.() === 0;

describe('restore fidelity', () => {
  it('keeps hard links, xattrs, nanosecond times, owners, FIFOs and devices; reports sockets', async () => {
    const src = join(await tempDir('mv-fid-'), 'src');
    mkdirSync(join(src, 'dicom', 'series'), { recursive: true });
    writeFileSync(join(src, 'dicom', 'a.dcm'), 'DICM one image, two names');
    linkSync(join(src, 'dicom', 'a.dcm'), join(src, 'dicom', 'a-again.dcm'));
    linkSync(join(src, 'dicom', 'a.dcm'), join(src, 'dicom', 'series', 'a-third.dcm'));
    writeFileSync(join(src, 'consent.pdf'), '%PDF-1.7');
    setXattr(join(src, 'consent.pdf'), 'user.mv.signed-by', Buffer.from('Dr. Haddad'));
    setXattr(join(src, 'dicom'), 'user.mv.modality', Buffer.from([0x43, 0x54, 0x00, 0xff]));
    symlinkSync('consent.pdf', join(src, 'latest-consent'));
    mknod(join(src, 'hl7-feed.fifo'), 0o010640, 0n);
    if (root) {
      mknod(join(src, 'null-device'), 0o020666, (1n << 8n) | 3n);
      chownSync(join(src, 'consent.pdf'), 1234, 5678);
    }
    const sock = createServer();
    await new Promise<void>((r) => sock.listen(join(src, 'ehr.sock'), r));
    const ns = 1_700_000_000_123_456_789n;
    for (const p of ['consent.pdf', 'latest-consent', 'hl7-feed.fifo', 'dicom/series', 'dicom']) setTimes(join(src, p), ns, ns + 1n);

    const t = await testRepo();
    const b = await new Archiver(t.repo).backup({ store: 'records', source: src, job: 'full' });
    sock.close();
    const target = join(await tempDir('mv-fid-out-'), 'out');
    const r = await new Restorer(t.repo).restore({ snapshot: b.snapshot, paths: [], target, mode: 'new' });
    expect(r.failed).toEqual([]);
    expect(r.verified).toBe(r.files);

    const st = (p: string) => lstatSync(join(target, p), { bigint: true });
    // One inode, three names, as before.
    expect(st('dicom/a-again.dcm').ino).toBe(st('dicom/a.dcm').ino);
    expect(st('dicom/series/a-third.dcm').ino).toBe(st('dicom/a.dcm').ino);
    expect(st('dicom/a.dcm').nlink).toBe(3n);
    expect(getXattrs(join(target, 'consent.pdf'))).toEqual([['user.mv.signed-by', Buffer.from('Dr. Haddad')]]);
    expect(getXattrs(join(target, 'dicom'))).toEqual([['user.mv.modality', Buffer.from([0x43, 0x54, 0x00, 0xff])]]);
    for (const p of ['consent.pdf', 'latest-consent', 'hl7-feed.fifo', 'dicom/series', 'dicom']) expect(st(p).mtimeNs, p).toBe(ns + 1n);
    expect(st('latest-consent').isSymbolicLink()).toBe(true);
    expect(st('hl7-feed.fifo').isFIFO()).toBe(true);
    expect(Number(st('hl7-feed.fifo').mode & 0o777n)).toBe(0o640);
    if (root) {
      expect(st('null-device').isCharacterDevice()).toBe(true);
      expect(st('null-device').rdev).toBe(lstatSync('/dev/null', { bigint: true }).rdev);
      expect([st('consent.pdf').uid, st('consent.pdf').gid]).toEqual([1234n, 5678n]);
    }
    expect(r.errors).toEqual([expect.objectContaining({ path: 'ehr.sock', code: 'SKIPPED', message: expect.stringContaining('socket recorded, not recreated') })]);
  });
});
