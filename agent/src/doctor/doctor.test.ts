import { describe, expect, it } from 'vitest';
import type { AgentConfig } from '../config.js';
import { diagnose, type DoctorHost, type PathInfo } from './doctor.js';
import { mountOf } from '../platform/filesystems.js';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { realHost } from './host.js';

const GiB = 1024 ** 3;
const dir = (over: Partial<PathInfo> = {}): PathInfo => ({ exists: true, isDir: true, mode: 0o40700, uid: 0, dev: 1, readable: true, writable: true, ...over });
const file = (over: Partial<PathInfo> = {}): PathInfo => ({ ...dir(), isDir: false, mode: 0o100600, ...over });

const config: AgentConfig = {
  file: '/etc/medvault/agent.toml', site: 'clinic-a', state_dir: '/var/lib/medvault', key_file: '/run/credentials/local.key',
  recovery_public_key: 'A'.repeat(43), controller_public_key: 'B'.repeat(43), restore_roots: [],
  nats: { servers: ['tls://ctl:4222'], ca_file: '/etc/medvault/ca.pem', nkey_file: '/run/credentials/site.nk' },
  disks: [{ path: '/mnt/b1/medvault' }],
  stores: [{ name: 'records', type: 'files', path: '/srv/records', continuous: false, rpo_s: 60, rescan_s: 900, schedule: { full: '0 2 * * 0', incremental: '0 2 * * *' } }],
};

/** A genuine nkey user seed (made for this test by @nats-io/nkeys createUser; it opens nothing). */
const SITE_SEED = 'SUANX5WA3JAV542ITJTYITNMDQSWGB4TS3WDTPR7UHQZFXOKVYSAHGC3MY';

function host(over: Partial<DoctorHost> = {}, paths: Record<string, PathInfo> = {}): DoctorHost {
  const all: Record<string, PathInfo> = {
    '/var/lib/medvault': dir(), '/run/credentials/local.key': file(), '/run/credentials/site.nk': file(),
    '/mnt/b1/medvault': dir({ dev: 2 }), '/srv/records': dir({ dev: 1 }), ...paths,
  };
  const h: Omit<DoctorHost, 'filesystemOf'> = {
    stat: (p) => all[p] ?? { exists: false, isDir: false, mode: 0, uid: -1, dev: -1, readable: false, writable: false },
    readSmall: (p) => (p.endsWith('local.key') ? Buffer.alloc(32) : p.endsWith('.nk') ? Buffer.from(`${SITE_SEED}\n`) : undefined),
    writeProbe: () => undefined,
    unreadable: () => ({ looked: 120, unreadable: [] }),
    filesystems: async () => [
      { device: '/dev/sda1', mount: '/', type: 'ext4', sizeBytes: 100 * GiB, freeBytes: 50 * GiB },
      { device: '/dev/sdb1', mount: '/mnt/b1', type: 'ext4', sizeBytes: 2000 * GiB, freeBytes: 1500 * GiB },
    ],
    blockDevices: async () => [{ name: 'sda', type: 'disk', sizeBytes: 100 * GiB, mount: '', fsType: '', removable: false, model: 'SSD' }, { name: 'sdb1', type: 'part', sizeBytes: 2000 * GiB, mount: '/mnt/b1', fsType: 'ext4', removable: true, model: 'USB' }],
    smart: async () => 'passed',
    clockSynchronized: async () => true,
    now: () => Date.UTC(2026, 5, 1),
    which: (p) => `/usr/bin/${p}`,
    probeNats: async () => ({ reachable: true, serverVersion: '2.9.10', tlsRequired: true, jetstream: true, tls: { ok: true, validTo: Date.UTC(2027, 0, 1) } }),
    ...over,
  };
  return { filesystemOf: async (p) => mountOf(p, await h.filesystems()), ...h, ...over };
}

const problems = (fs: Awaited<ReturnType<typeof diagnose>>) => fs.filter((f) => f.status !== 'ok');

describe('doctor', () => {
  it('finds nothing wrong on a healthy appliance and names the suitable backup disk', async () => {
    const f = await diagnose(config, host());
    expect(problems(f)).toEqual([]);
    expect(f.find((x) => x.check === 'disks-found')!.message).toMatch(/suitable backup disks: \/mnt\/b1 \(\/dev\/sdb1, 1\.5 TiB free\)/);
    expect(f.find((x) => x.check === 'tls')!.message).toMatch(/TLS verified .* valid for 214 more days/);
  });

  it('a backup disk that is a system folder bind-mounted elsewhere is on the system file system (same device, its own mount point)', async () => {
    const f = await diagnose(config, host({}, { '/': dir({ dev: 7 }), '/mnt/b1/medvault': dir({ dev: 7 }) }));
    expect(problems(f).map((x) => `${x.status} ${x.check}: ${x.message}`)).toEqual(['warn disk: backup disk is on the system filesystem /']);
  });

  it('gives each problem a fix', async () => {
    const f = await diagnose(config, host({
      smart: async () => 'failed',
      clockSynchronized: async () => false,
      writeProbe: () => 'EROFS: read-only file system',
      unreadable: () => ({ looked: 40, unreadable: ['/srv/records/locked'] }),
      probeNats: async () => ({ reachable: true, tlsRequired: true, tls: { ok: false, error: 'self-signed certificate' } }),
      filesystems: async () => [{ device: '/dev/sdb1', mount: '/mnt/b1', type: 'ext4', sizeBytes: 2000 * GiB, freeBytes: 0.5 * GiB }],
    }, { '/run/credentials/local.key': file({ mode: 0o100644 }) }));
    const p = problems(f);
    expect(p.map((x) => `${x.status} ${x.check}`).sort()).toEqual(['fail disk', 'fail key', 'fail smart', 'fail space', 'fail store', 'fail tls', 'warn clock']);
    // a nearly empty share of a big disk is still too little: the line says why, and what the percentage is
    expect(p.find((x) => x.check === 'space')!.message).toBe('512.0 MiB free of 2.0 TiB (0% free) on /mnt/b1: less than 1 GiB left for backups');
    for (const x of p) expect(x.fix, `${x.check}: ${x.message}`).toBeTruthy();
    expect(p.find((x) => x.check === 'key')!.fix).toBe('chmod 600 /run/credentials/local.key');
    expect(p.find((x) => x.check === 'smart')!.message).toMatch(/FAILED/);
    expect(p.find((x) => x.check === 'store')!.message).toMatch(/\/srv\/records\/locked/);
  });

  it('does not ask SMART about a backup disk on a file system without a block device (tmpfs, overlay, NFS)', async () => {
    for (const [device, type] of [['tmpfs', 'tmpfs'], ['overlay', 'overlay'], ['nas:/export/backup', 'nfs4'], ['none', 'ramfs']] as const) {
      const asked: string[] = [];
      const f = await diagnose(config, host({
        smart: async (d) => (asked.push(d), undefined),
        filesystems: async () => [{ device: '/dev/sda1', mount: '/', type: 'ext4', sizeBytes: 100 * GiB, freeBytes: 50 * GiB }, { device, mount: '/mnt/b1', type, sizeBytes: 20 * GiB, freeBytes: 10 * GiB }],
      }));
      expect(asked).toEqual([]);
      expect(f.filter((x) => x.check === 'smart').map((x) => [x.status, x.subject, x.message])).toEqual([['ok', '/mnt/b1/medvault', `SMART: not applicable (${type})`]]);
    }
  });

  it('gives a small disk\'s space in MiB, not as "0.0 GiB free of 0.0 GiB"', async () => {
    const f = await diagnose(config, host({ filesystems: async () => [{ device: 'tmpfs', mount: '/mnt/b1', type: 'tmpfs', sizeBytes: 30 * 1024 ** 2, freeBytes: 27 * 1024 ** 2 }] }));
    expect(f.find((x) => x.check === 'space')!.message).toBe('27.0 MiB free of 30.0 MiB (90% free) on /mnt/b1: less than 1 GiB left for backups');
  });

  it('the real host reads a record whose name is not UTF-8 (it is not "not readable")', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mv-doctor-'));
    try {
      mkdirSync(join(dir, 'sub'));
      writeFileSync(Buffer.concat([Buffer.from(`${dir}/sub/caf`), Buffer.from([0xe9]), Buffer.from('.txt')]), 'x');
      writeFileSync(join(dir, 'plain.txt'), 'y');
      expect(realHost.unreadable(dir, 5, 100)).toEqual({ looked: 3, unreadable: [] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says when the key is missing, smartctl absent, NATS unreachable and the backups share the records\' disk', async () => {
    const f = await diagnose(config, host({ smart: async () => undefined, probeNats: async () => ({ reachable: false, error: 'connect ECONNREFUSED' }) }, {
      '/run/credentials/local.key': { exists: false, isDir: false, mode: 0, uid: -1, dev: -1, readable: false, writable: false },
      '/mnt/b1/medvault': dir({ dev: 1 }),
    }));
    const by = (c: string) => problems(f).filter((x) => x.check === c).map((x) => x.message);
    expect(by('key')).toEqual(['local key is missing']);
    expect(by('smart')).toEqual(['smartctl is not installed: disk health is not watched']);
    expect(by('nats')).toEqual(['cannot reach NATS: connect ECONNREFUSED']);
    expect(by('disk')).toEqual(['backup disk is on the same filesystem as record store records: one disk failure loses both']);
  });
});
