/**
 * What the heartbeat says about each backup disk: the filesystem it lives on (mount, size, free;
 * systeminformation, falling back to node-disk-info's `df`), and SMART health where `smartctl`
 * exists. The only file that imports either package. Probing spawns processes, so results are
 * cached (`ttlMs`, SMART ten times longer); a probe that fails leaves the figures out, never throws.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import si from 'systeminformation';
import diskInfo from 'node-disk-info';
import type { Heartbeat } from '@medvault/protocol';

export type DiskReport = NonNullable<Heartbeat['disks']>[number];

interface Fs {
  device: string;
  mount: string;
  size: number;
  free: number;
}

/** The longest mount point that contains `path`. */
export function mountOf<T extends { mount: string }>(path: string, fss: T[]): T | undefined {
  let best: T | undefined;
  for (const f of fss) {
    const m = f.mount.endsWith('/') ? f.mount : `${f.mount}/`;
    if ((path === f.mount || path.startsWith(m) || f.mount === '/') && (!best || f.mount.length > best.mount.length)) best = f;
  }
  return best;
}

async function filesystems(): Promise<Fs[]> {
  try {
    const r = await si.fsSize();
    if (r.length > 0) return r.map((f) => ({ device: f.fs, mount: f.mount, size: Math.max(0, Math.round(f.size)), free: Math.max(0, Math.round(f.available)) }));
  } catch {
    // fall through to df
  }
  try {
    return (await diskInfo.getDiskInfo()).map((d) => ({ device: d.filesystem, mount: d.mounted, size: d.blocks * 1024, free: d.available * 1024 }));
  } catch {
    return [];
  }
}

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
  private fss: { at: number; value: Fs[] } | undefined;
  private readonly smarts = new Map<string, { at: number; value: DiskReport['smart'] }>();
  constructor(private readonly now: () => number, private readonly ttlMs = 30_000) {}

  /** One report per disk, in the order given. */
  async report(disks: { path: string; ok: boolean; error?: string }[]): Promise<DiskReport[]> {
    if (!this.fss || this.now() - this.fss.at > this.ttlMs) this.fss = { at: this.now(), value: await filesystems() };
    const out: DiskReport[] = [];
    for (const d of disks) {
      const fs = mountOf(d.path, this.fss.value);
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
        ...(fs ? { mount: fs.mount.slice(0, 4096), sizeBytes: fs.size, freeBytes: fs.free } : {}), ...(s ? { smart: s } : {}),
      });
    }
    return out;
  }
}
