/**
 * What the heartbeat says about each backup disk: the filesystem it lives on (mount, size, free:
 * platform/filesystems.ts, statfs on the disk's own path), and SMART health where `smartctl`
 * exists. SMART spawns a process, so its answer is cached (ten times `ttlMs`); a probe that fails
 * (a disk unplugged) leaves the figures out, never throws.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { filesystemOf } from '../platform/filesystems.js';
import type { Heartbeat } from '@medvault/protocol';

export type DiskReport = NonNullable<Heartbeat['disks']>[number];

const smartctl = ['/usr/sbin/smartctl', '/sbin/smartctl', '/usr/bin/smartctl'].find((p) => existsSync(p));

/** smartctl -H: 'passed', 'failed', or 'unknown' (no smartctl, not a block device, no answer). */
function smart(device: string): Promise<DiskReport['smart']> {
  if (!smartctl || !device.startsWith('/dev/')) return Promise.resolve('unknown');
  return new Promise((resolve) => {
    execFile(smartctl, ['-H', '-j', device], { timeout: 10_000 }, (_err, stdout) => {
      try {
        const passed = (JSON.parse(stdout) as { smart_status?: { passed?: boolean } }).smart_status?.passed;
        resolve(passed === true ? 'passed' : passed === false ? 'failed' : 'unknown');
      } catch {
        resolve('unknown');
      }
    });
  });
}

export class DiskProbe {
  private readonly smarts = new Map<string, { at: number; value: DiskReport['smart'] }>();
  constructor(private readonly now: () => number, private readonly ttlMs = 30_000) {}

  /** One report per disk, in the order given. */
  async report(disks: { path: string; ok: boolean; error?: string }[]): Promise<DiskReport[]> {
    const out: DiskReport[] = [];
    for (const d of disks) {
      const fs = await filesystemOf(d.path);
      let s: DiskReport['smart'] | undefined;
      if (fs) {
        const c = this.smarts.get(fs.device);
        if (c && this.now() - c.at < this.ttlMs * 10) s = c.value;
        else {
          s = await smart(fs.device);
          this.smarts.set(fs.device, { at: this.now(), value: s });
        }
      }
      out.push({
        path: d.path.slice(0, 4096), ok: d.ok, ...(d.error ? { error: d.error.slice(0, 2000) } : {}),
        ...(fs ? { mount: fs.mount.slice(0, 4096), sizeBytes: fs.sizeBytes, freeBytes: fs.freeBytes } : {}), ...(s ? { smart: s } : {}),
      });
    }
    return out;
  }
}

/**
 * Each disk as the status file and the heartbeat give it, now: one opened at start is usable only
 * while its repository's `config` file is there, so a disk unplugged or unmounted since reads
 * `ok: false` with why at the next status, not only at the next backup (hours later); one plugged
 * back in reads ok again. The check is an async stat (the thread pool): a hung disk holds up no
 * other work.
 */
export async function diskStates(disks: { disk: string; repo?: { id: string }; error?: string }[]): Promise<{ path: string; repo?: string; ok: boolean; error?: string }[]> {
  return Promise.all(disks.map(async (d) => {
    if (!d.repo) return { path: d.disk, ok: false, ...(d.error ? { error: d.error } : {}) };
    const there = await stat(join(d.disk, 'config')).then(() => true, () => false);
    return { path: d.disk, repo: d.repo.id, ok: there, ...(there ? {} : { error: 'the backup disk is not there (unplugged or not mounted)' }) };
  }));
}
