/**
 * The real machine for `doctor`: files, filesystems and block devices (systeminformation, with
 * node-disk-info's `df` as the fallback for filesystems),
 * smartctl, the clock's NTP state, and a raw NATS probe (TCP, the server's INFO, the TLS handshake).
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, lstatSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync, closeSync, fsyncSync } from 'node:fs';
import { connect as tcpConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { delimiter, join } from 'node:path';
import si from 'systeminformation';
import diskInfo from 'node-disk-info';
import type { BlockDevice, DoctorHost, Filesystem, NatsProbe, PathInfo } from './doctor.js';
import { filesystemOf } from '../platform/filesystems.js';
import { checkNatsServerIdentity } from '@medvault/protocol';

const run = (cmd: string, args: string[], timeoutMs = 10_000) =>
  new Promise<{ code: number | null; stdout: string }>((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout) }));
  });

function can(path: string | Buffer, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

const smartctl = ['/usr/sbin/smartctl', '/sbin/smartctl', '/usr/bin/smartctl'].find((p) => existsSync(p));

/** Reads INFO from a NATS server; upgrades to TLS against `caFile` when given or required. */
export function probeNats(url: string, caFile: string | undefined, timeoutMs = 4000): Promise<NatsProbe> {
  const u = new URL(url.replace(/^(nats|tls):/, 'http:'));
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || 4222);
  return new Promise((resolve) => {
    let done = false;
    let sock: Socket | undefined;
    const finish = (p: NatsProbe) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock?.destroy();
      resolve(p);
    };
    const timer = setTimeout(() => finish({ reachable: false, error: `no answer within ${timeoutMs} ms` }), timeoutMs);
    sock = tcpConnect({ host, port });
    let buf = '';
    sock.on('error', (err) => finish({ reachable: false, error: err.message }));
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      const nl = buf.indexOf('\r\n');
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      sock!.removeAllListeners('data');
      if (!line.startsWith('INFO ')) return finish({ reachable: true, error: `not a NATS server: ${line.slice(0, 80)}` });
      let info: { version?: string; tls_required?: boolean; jetstream?: boolean } = {};
      try {
        info = JSON.parse(line.slice(5));
      } catch {
        // keep what we have
      }
      const base: NatsProbe = { reachable: true, ...(info.version ? { serverVersion: info.version } : {}), tlsRequired: info.tls_required === true, ...(info.jetstream !== undefined ? { jetstream: info.jetstream } : {}) };
      if (!caFile || !info.tls_required) return finish(base);
      let ca: Buffer;
      try {
        ca = readFileSync(caFile);
      } catch (err) {
        return finish({ ...base, tls: { ok: false, error: `cannot read ${caFile}: ${(err as Error).message}` } });
      }
      // As nats.js does (no server name for an IP), verified by the same check as every connection.
      const t = tlsConnect({ socket: sock!, ca, servername: isIP(host) ? '' : host, checkServerIdentity: checkNatsServerIdentity });
      t.on('secureConnect', () => {
        const cert = t.getPeerCertificate();
        t.destroy();
        finish({ ...base, tls: { ok: true, ...(cert.valid_to ? { validTo: Date.parse(cert.valid_to) } : {}), ...(cert.subject?.CN ? { subject: String(cert.subject.CN) } : {}) } });
      });
      t.on('error', (err) => finish({ ...base, tls: { ok: false, error: err.message } }));
    });
  });
}

export const realHost: DoctorHost = {
  stat(path): PathInfo {
    try {
      const s = statSync(path);
      return { exists: true, isDir: s.isDirectory(), mode: s.mode, uid: s.uid, dev: s.dev, readable: can(path, constants.R_OK), writable: can(path, constants.W_OK) };
    } catch {
      return { exists: false, isDir: false, mode: 0, uid: -1, dev: -1, readable: false, writable: false };
    }
  },
  readSmall(path) {
    try {
      return readFileSync(path).subarray(0, 64 * 1024);
    } catch {
      return undefined;
    }
  },
  writeProbe(dir) {
    try {
      const d = mkdtempSync(join(dir, '.medvault-doctor-'));
      const fd = openSync(join(d, 'probe'), 'w', 0o600);
      writeSync(fd, 'medvault doctor write probe\n');
      fsyncSync(fd);
      closeSync(fd);
      rmSync(d, { recursive: true, force: true });
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  },
  unreadable(dir, max, limit) {
    // Names are walked as bytes: one that is not UTF-8 does not survive a string round trip, so
    // it would be looked up under another name and wrongly reported as unreadable.
    const bad: string[] = [];
    let looked = 0;
    const stack = [Buffer.from(dir)];
    while (stack.length && looked < limit && bad.length < max) {
      const d = stack.pop()!;
      let names: Buffer[];
      try {
        names = readdirSync(d, { encoding: 'buffer' });
      } catch {
        bad.push(d.toString());
        continue;
      }
      for (const n of names) {
        if (looked >= limit || bad.length >= max) break;
        const p = Buffer.concat([d, d.at(-1) === 0x2f ? Buffer.alloc(0) : Buffer.from('/'), n]);
        looked++;
        let s;
        try {
          s = lstatSync(p);
        } catch {
          bad.push(p.toString());
          continue;
        }
        if (s.isDirectory()) {
          if (can(p, constants.R_OK | constants.X_OK)) stack.push(p);
          else bad.push(p.toString());
        } else if (s.isFile() && !can(p, constants.R_OK)) bad.push(p.toString());
      }
    }
    return { looked, unreadable: bad };
  },
  async filesystems(): Promise<Filesystem[]> {
    const fss = await si.fsSize().catch(() => []);
    if (fss.length > 0) return fss.map((f) => ({ device: f.fs, mount: f.mount, type: f.type, sizeBytes: Math.round(f.size), freeBytes: Math.round(f.available) }));
    // systeminformation found nothing (unusual /proc, containers): node-disk-info reads df.
    return (await diskInfo.getDiskInfo()).map((d) => ({ device: d.filesystem, mount: d.mounted, type: '', sizeBytes: d.blocks * 1024, freeBytes: d.available * 1024 }));
  },
  filesystemOf,
  async blockDevices(): Promise<BlockDevice[]> {
    return (await si.blockDevices()).map((b) => ({ name: b.name, type: b.type, sizeBytes: b.size, mount: b.mount, fsType: b.fsType, removable: b.removable, model: b.model }));
  },
  async smart(device) {
    if (!smartctl) return undefined;
    if (!device.startsWith('/dev/')) return 'unknown';
    const r = await run(smartctl, ['-H', '-j', device]);
    try {
      const passed = (JSON.parse(r.stdout) as { smart_status?: { passed?: boolean } }).smart_status?.passed;
      return passed === true ? 'passed' : passed === false ? 'failed' : 'unknown';
    } catch {
      return 'unknown';
    }
  },
  async clockSynchronized() {
    if (existsSync('/run/systemd/timesync/synchronized')) return true;
    const r = await run('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'], 3000);
    if (r.code === 0 && /^(yes|no)$/.test(r.stdout.trim())) return r.stdout.trim() === 'yes';
    return undefined;
  },
  now: () => Date.now(),
  which(program) {
    for (const d of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
      const p = join(d, program);
      if (can(p, constants.X_OK)) return p;
    }
    return undefined;
  },
  probeNats,
};
