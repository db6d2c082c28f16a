/**
 * doctor/: `medvault-agent doctor`, what an installer or a remote technician runs on an appliance
 * to learn what is wrong and how to fix it. Each check yields findings (ok, warn, fail), each
 * problem with a fix. The checks read only; the I/O they need comes in through `DoctorHost`.
 */
import { formatBytes, formatCount, nkeySeedProblem } from '@medvault/protocol';
import type { AgentConfig } from '../config.js';
import { mountOf, type Filesystem } from '../platform/filesystems.js';

export type { Filesystem };

export type Severity = 'ok' | 'warn' | 'fail';

export interface Finding {
  /** `config`, `key`, `disk`, `store`, `state`, `smart`, `clock`, `nats`, `tls`, `disks-found`. */
  check: string;
  /** What the finding is about: a path, a URL, a device. */
  subject: string;
  status: Severity;
  message: string;
  /** What to do about it (problems only). */
  fix?: string;
}

/** A block device as the host reports it (systeminformation). */
export interface BlockDevice {
  name: string;
  type: string;
  sizeBytes: number;
  mount: string;
  fsType: string;
  removable: boolean;
  model: string;
}

export interface PathInfo {
  exists: boolean;
  isDir: boolean;
  mode: number;
  uid: number;
  dev: number;
  readable: boolean;
  writable: boolean;
}

/** Everything the checks need from the machine and the network. */
export interface DoctorHost {
  stat(path: string): PathInfo;
  /** Reads a small file (keys); undefined if unreadable. */
  readSmall(path: string): Buffer | undefined;
  /** Writes and removes a probe file in `dir`; the error message, or undefined when it worked. */
  writeProbe(dir: string): string | undefined;
  /** Up to `max` entries under `dir` that this process cannot read (and how many were looked at). */
  unreadable(dir: string, max: number, limit: number): { looked: number; unreadable: string[] };
  /** The machine's disk file systems (candidates for backup disks). */
  filesystems(): Promise<Filesystem[]>;
  /** The file system holding `path` (its own figures, whatever its type); undefined when unreachable. */
  filesystemOf(path: string): Promise<Filesystem | undefined>;
  blockDevices(): Promise<BlockDevice[]>;
  /** 'passed' | 'failed' | 'unknown', or undefined when smartctl is not installed. */
  smart(device: string): Promise<'passed' | 'failed' | 'unknown' | undefined>;
  /** NTP synchronisation as systemd-timesyncd/timedatectl report it; undefined when unknown. */
  clockSynchronized(): Promise<boolean | undefined>;
  now(): number;
  /** Looks for a program in PATH. */
  which(program: string): string | undefined;
  /** TCP reachability, the server's INFO, and the TLS handshake against `caFile` when given. */
  probeNats(url: string, caFile: string | undefined): Promise<NatsProbe>;
}

export interface NatsProbe {
  reachable: boolean;
  error?: string;
  serverVersion?: string;
  tlsRequired?: boolean;
  jetstream?: boolean;
  tls?: { ok: boolean; error?: string; validTo?: number; subject?: string };
}

const GiB = 1024 ** 3;
const pseudoFs = /^(tmpfs|devtmpfs|overlay|squashfs|proc|sysfs|cgroup2?|devpts|mqueue|ramfs|autofs|fuse\.lxcfs|nsfs|tracefs|debugfs|securityfs|pstore|bpf|efivarfs|configfs|hugetlbfs|binfmt_misc)$/;
const systemMounts = new Set(['/', '/boot', '/boot/efi', '/usr', '/var', '/home', '/tmp']);


/** Runs every check; `config` is the validated configuration (config problems are found before). */
export async function diagnose(config: AgentConfig, host: DoctorHost, opts: { user?: string } = {}): Promise<Finding[]> {
  const out: Finding[] = [];
  const add = (f: Finding) => out.push(f);
  const user = opts.user ?? 'medvault';
  add({ check: 'config', subject: config.file, status: 'ok', message: `valid: site ${config.site}, ${formatCount(config.stores.length, 'store')}, ${formatCount(config.disks.length, 'disk')}` });

  // Keys and secrets: present, the right size, readable by nobody else.
  const secret = (check: string, path: string, what: string, expect?: (b: Buffer) => string | undefined, fixMissing?: string) => {
    const s = host.stat(path);
    if (!s.exists) return add({ check, subject: path, status: 'fail', message: `${what} is missing`, fix: fixMissing ?? `put the ${what} at ${path} (mode 0600)` });
    const b = host.readSmall(path);
    if (!b) return add({ check, subject: path, status: 'fail', message: `${what} is not readable by this user`, fix: `run as root or as the service (systemd LoadCredential= hands it to ${user})` });
    const bad = expect?.(b);
    if (bad) return add({ check, subject: path, status: 'fail', message: `${what}: ${bad}`, fix: fixMissing ?? `replace ${path} with the right file` });
    if ((s.mode & 0o077) !== 0) return add({ check, subject: path, status: 'fail', message: `${what} is readable by group or others (mode ${(s.mode & 0o777).toString(8)})`, fix: `chmod 600 ${path}` });
    add({ check, subject: path, status: 'ok', message: `${what} present, mode ${(s.mode & 0o777).toString(8)}` });
  };
  secret('key', config.key_file, 'local key', (b) => (b.length === 32 ? undefined : `expected 32 bytes, found ${b.length}`), `medvault-agent init creates it (or restore it from its backup; without it only the recovery key opens the repositories)`);
  if (config.nats?.nkey_file) secret('key', config.nats.nkey_file, 'site nkey (NATS identity)', (b) => { const p = nkeySeedProblem(b.toString('utf8')); return p ? `not an nkey seed: ${p}` : undefined; }, `copy site.nk from the enrolment bundle (medvault-controller site add) to ${config.nats.nkey_file}, mode 0600`);
  if (!config.controller_public_key) add({ check: 'key', subject: 'controller_public_key', status: 'fail', message: 'controller_public_key is not set: orders and receipts cannot be verified', fix: 'set it to what `medvault-controller key` prints (in the enrolment bundle)' });
  else add({ check: 'key', subject: 'controller_public_key', status: 'ok', message: 'controller key pinned' });

  // State folder.
  const st = host.stat(config.state_dir);
  if (!st.exists) add({ check: 'state', subject: config.state_dir, status: 'warn', message: 'state folder does not exist yet', fix: `deploy/install.sh creates it; or mkdir -m 700 ${config.state_dir} && chown ${user}: ${config.state_dir}` });
  else if (!st.writable) add({ check: 'state', subject: config.state_dir, status: 'fail', message: 'state folder is not writable by this user', fix: `chown -R ${user}: ${config.state_dir}` });
  else if ((st.mode & 0o077) !== 0) add({ check: 'state', subject: config.state_dir, status: 'warn', message: `state folder is open to others (mode ${(st.mode & 0o777).toString(8)})`, fix: `chmod 700 ${config.state_dir}` });
  else add({ check: 'state', subject: config.state_dir, status: 'ok', message: 'state folder private and writable' });

  // Disks found on the machine, and which would make backup disks.
  const fss = await host.filesystems().catch(() => [] as Filesystem[]);
  const devices = await host.blockDevices().catch(() => [] as BlockDevice[]);
  const storeDevs = new Map<number, string>();
  for (const s of config.stores) if (s.type === 'files') {
    const i = host.stat(s.path);
    if (i.exists) storeDevs.set(i.dev, s.name);
  }
  const storeMounts = new Set(config.stores.flatMap((s) => (s.type === 'files' ? [mountOf(s.path, fss)?.mount ?? ''] : [])));
  const suitable = fss.filter((f) => !pseudoFs.test(f.type) && !systemMounts.has(f.mount) && !storeMounts.has(f.mount) && f.sizeBytes >= 8 * GiB);
  const disksOnly = devices.filter((d) => d.type === 'disk' || d.type === 'part');
  add({
    check: 'disks-found', subject: 'host', status: suitable.length > 0 ? 'ok' : 'warn',
    message: `${formatCount(disksOnly.length, 'block device')}${disksOnly.length ? ` (${disksOnly.map((d) => `${d.name} ${formatBytes(d.sizeBytes)}${d.removable ? ' removable' : ''}${d.mount ? ` at ${d.mount}` : ''}`).join(', ')})` : ''}; suitable backup disks: ${suitable.length ? suitable.map((f) => `${f.mount} (${f.device}, ${formatBytes(f.freeBytes)} free)`).join(', ') : 'none'}`,
    ...(suitable.length ? {} : { fix: 'attach a disk of its own for backups (not the system disk, not the records\' disk), format it (mkfs.ext4), mount it under /mnt and add it as [[disks]]' }),
  });

  // the system's file systems by device too: a folder of one bind-mounted elsewhere has its own mount point
  const systemDevs = new Map<number, string>();
  for (const m of systemMounts) {
    const i = host.stat(m);
    if (i.exists && !systemDevs.has(i.dev)) systemDevs.set(i.dev, m);
  }

  // Each configured backup disk: there, writable, its own device, free space, SMART.
  for (const d of config.disks) {
    const i = host.stat(d.path);
    if (!i.exists) {
      add({ check: 'disk', subject: d.path, status: 'fail', message: 'backup disk folder does not exist (disk not mounted?)', fix: `mount the disk, then mkdir -p ${d.path} && chown ${user}: ${d.path} && medvault-agent init` });
      continue;
    }
    const err = host.writeProbe(d.path);
    if (err) add({ check: 'disk', subject: d.path, status: 'fail', message: `backup disk is not writable: ${err}`, fix: `chown -R ${user}: ${d.path}; check it is not mounted read-only (mount -o remount,rw)` });
    else add({ check: 'disk', subject: d.path, status: 'ok', message: 'backup disk writable' });
    const store = storeDevs.get(i.dev);
    if (store) add({ check: 'disk', subject: d.path, status: 'warn', message: `backup disk is on the same filesystem as record store ${store}: one disk failure loses both`, fix: 'put the repository on a separate disk' });
    const fs = await host.filesystemOf(d.path);
    if (fs) {
      const share = fs.sizeBytes > 0 ? fs.freeBytes / fs.sizeBytes : 0;
      const status: Severity = fs.freeBytes < GiB ? 'fail' : share < 0.1 ? 'warn' : 'ok';
      const why = status === 'fail' ? ': less than 1 GiB left for backups' : status === 'warn' ? ': less than 10% free' : '';
      add({ check: 'space', subject: d.path, status, message: `${formatBytes(fs.freeBytes)} free of ${formatBytes(fs.sizeBytes)} (${Math.round(share * 100)}% free) on ${fs.mount}${why}`, ...(status === 'ok' ? {} : { fix: 'prune (medvault-agent forget), or add a larger disk' }) });
      const system = systemMounts.has(fs.mount) ? fs.mount : systemDevs.get(i.dev);
      if (system) add({ check: 'disk', subject: d.path, status: 'warn', message: `backup disk is on the system filesystem ${system}`, fix: 'use a disk of its own for backups' });
      // SMART is a block device's: a file system without one (tmpfs, ramfs, overlay, NFS, CIFS, FUSE) has none to ask
      const smart = fs.device.startsWith('/dev/') ? await host.smart(fs.device) : 'not applicable';
      if (smart === 'not applicable') add({ check: 'smart', subject: d.path, status: 'ok', message: `SMART: not applicable (${fs.type || 'no block device'})` });
      else if (smart === undefined) add({ check: 'smart', subject: fs.device, status: 'warn', message: 'smartctl is not installed: disk health is not watched', fix: 'apt-get install smartmontools' });
      else if (smart === 'failed') add({ check: 'smart', subject: fs.device, status: 'fail', message: 'SMART health check FAILED: the disk is failing', fix: 'replace the disk now; its repository heals from the off-site copy' });
      else if (smart === 'unknown') add({ check: 'smart', subject: fs.device, status: 'warn', message: 'no SMART answer (virtual disk, USB bridge without SAT, or not a block device)', fix: `try smartctl -d sat -H ${fs.device}` });
      else add({ check: 'smart', subject: fs.device, status: 'ok', message: 'SMART health passed' });
    }
  }

  // Record stores: every entry readable (a sample of the tree).
  for (const s of config.stores) {
    if (s.type === 'files') {
      const i = host.stat(s.path);
      if (!i.exists) {
        add({ check: 'store', subject: s.path, status: 'fail', message: `record store ${s.name} does not exist`, fix: 'mount the share or correct stores.path' });
        continue;
      }
      const r = host.unreadable(s.path, 5, 20_000);
      if (r.unreadable.length) add({ check: 'store', subject: s.path, status: 'fail', message: `record store ${s.name}: ${r.unreadable.length === 5 ? 'at least 5' : r.unreadable.length} of ${formatCount(r.looked, 'entry', 'entries')} not readable by this user, e.g. ${r.unreadable.join(', ')}`, fix: `run the agent as its unit (CAP_DAC_READ_SEARCH reads every record), or setfacl -R -m u:${user}:rX ${s.path}` });
      else add({ check: 'store', subject: s.path, status: 'ok', message: `record store ${s.name}: ${formatCount(r.looked, 'entry', 'entries')} checked, all readable` });
    } else {
      const tool = s.type === 'postgres' ? 'pg_dump' : 'mysqldump';
      const at = host.which(tool);
      if (!at) add({ check: 'store', subject: s.name, status: 'fail', message: `${tool} not found for database store ${s.name}`, fix: `apt-get install ${s.type === 'postgres' ? 'postgresql-client' : 'mariadb-client'}` });
      else add({ check: 'store', subject: s.name, status: 'ok', message: `${tool} at ${at}` });
      if (s.password_file) secret('key', s.password_file, `password file of ${s.name}`);
    }
  }

  // Clock: orders carry a 2-minute tolerance and snapshots are named by time.
  const now = host.now();
  if (now < Date.UTC(2024, 0, 1)) add({ check: 'clock', subject: 'system clock', status: 'fail', message: `the clock says ${new Date(now).toISOString()}`, fix: 'set the time (timedatectl set-ntp true); orders will be refused until it is right' });
  const sync = await host.clockSynchronized().catch(() => undefined);
  if (sync === true) add({ check: 'clock', subject: 'system clock', status: 'ok', message: `synchronised (NTP), ${new Date(now).toISOString()}` });
  else add({ check: 'clock', subject: 'system clock', status: 'warn', message: sync === false ? 'not synchronised by NTP' : 'NTP synchronisation unknown', fix: 'timedatectl set-ntp true (systemd-timesyncd), or install chrony; orders allow only 2 minutes of skew' });

  // NATS: reachable, TLS as configured, JetStream on.
  for (const url of config.nats?.servers ?? []) {
    const p = await host.probeNats(url, config.nats?.ca_file);
    if (!p.reachable) {
      add({ check: 'nats', subject: url, status: 'fail', message: `cannot reach NATS: ${p.error ?? 'no answer'}`, fix: 'check the network, DNS and the firewall (TCP 4222 to the controller); off-site replication waits meanwhile' });
      continue;
    }
    add({ check: 'nats', subject: url, status: 'ok', message: `reachable, nats-server ${p.serverVersion ?? '?'}${p.jetstream === false ? '' : ', JetStream'}` });
    if (!config.nats?.ca_file) {
      add({ check: 'tls', subject: url, status: p.tlsRequired ? 'fail' : 'warn', message: p.tlsRequired ? 'the server requires TLS but no nats.ca_file is configured' : 'the link is not encrypted (no nats.ca_file)', fix: 'set nats.ca_file to ca.pem from the enrolment bundle' });
    } else if (p.tls) {
      if (!p.tls.ok) add({ check: 'tls', subject: url, status: 'fail', message: `TLS handshake failed: ${p.tls.error}`, fix: 'the server certificate must be signed by nats.ca_file and name this host; regenerate with deploy/make-ca.sh' });
      else {
        const days = p.tls.validTo !== undefined ? Math.floor((p.tls.validTo - now) / 86_400_000) : undefined;
        add({ check: 'tls', subject: url, status: days !== undefined && days < 30 ? 'warn' : 'ok', message: `TLS verified against ${config.nats.ca_file}${days !== undefined ? `, certificate valid for ${days} more days` : ''}`, ...(days !== undefined && days < 30 ? { fix: 'renew the NATS server certificate' } : {}) });
      }
    } else if (!p.tlsRequired) add({ check: 'tls', subject: url, status: 'fail', message: 'nats.ca_file is set but the server does not offer TLS', fix: 'enable tls {} in the nats-server configuration (medvault-controller nats-config)' });
  }
  return out;
}
