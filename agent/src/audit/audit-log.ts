/**
 * audit/: the agent's tamper-evident audit trail: every order (accepted or refused, and why),
 * restore, key use, start and configuration change, as a hash chain (protocol audit.ts) in
 * `<state_dir>/audit.jsonl`, one mv.audit.v1 entry per line, fsynced before `record` returns.
 * Each entry is also queued on the event spool, so the chain is replicated to the controller
 * (`mv.v1.ev.<site>.audit`, spool id `audit.<chain>.<seq>`) and survives the appliance; the heartbeat
 * carries the head, which anchors the replicated copy against entries removed at its end. `<chain>`
 * (the first 16 hex digits of the chain's first entry's hash) tells chains apart: a replaced
 * appliance starts a new chain at seq 1, whose entries must not be taken for resends of the old one.
 *
 * Several processes may append (the daemon, a CLI restore): each append takes `audit.jsonl.lock`
 * (O_EXCL, holding the holder's pid; a lock whose process is gone, or older than 30 s, is stale), re-reads the head from the file's last line, appends
 * and fsyncs, so the chain never forks. An edited, inserted or removed line is found by `verify`
 * (locally) and by `medvault-controller audit verify --site` (on the replicated copy).
 */
import { closeSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { chainEntry, verifyChain, type AuditEntry, type AuditRecord, type ChainHead, type ChainReport } from '@medvault/protocol';

export type AgentAuditInput = Omit<AuditRecord, 'site' | 'at'> & { at?: number };

export interface AuditSink {
  record(r: AgentAuditInput): AuditEntry;
}

export class AuditLog implements AuditSink {
  private fd: number;
  private last: ChainHead | undefined;
  private chain: string | undefined;

  private constructor(
    readonly file: string,
    private readonly site: string,
    private readonly now: () => number,
    private readonly replicate: ((e: AuditEntry, spoolId: string) => void) | undefined,
    startReport: ChainReport,
  ) {
    this.fd = openSync(file, 'a+', 0o600);
    this.last = startReport.head;
    this.startReport = startReport;
  }

  /** How the chain looked when opened (a broken chain is reported by the caller, loudly). */
  readonly startReport: ChainReport;

  static open(stateDir: string, site: string, opts: { now?: () => number; replicate?: (e: AuditEntry, spoolId: string) => void } = {}): AuditLog {
    mkdirSync(stateDir, { recursive: true });
    const file = join(stateDir, 'audit.jsonl');
    return new AuditLog(file, site, opts.now ?? Date.now, opts.replicate, verifyFile(file, site));
  }

  get head(): ChainHead | undefined {
    return this.last;
  }

  /** Appends one entry (fsync) and queues it for replication. */
  record(r: AgentAuditInput): AuditEntry {
    const unlock = lock(`${this.file}.lock`);
    let e: AuditEntry;
    try {
      // Another process may have appended since: continue from the file's last entry.
      this.last = lastHead(this.fd) ?? this.last;
      e = chainEntry(this.last, { ...r, site: this.site, at: r.at ?? this.now() });
      writeSync(this.fd, `${JSON.stringify(e)}\n`);
      fsyncSync(this.fd);
    } finally {
      unlock();
    }
    this.last = { seq: e.seq, hash: e.hash };
    this.chain ??= chainId(this.fd);
    this.replicate?.(e, `audit.${this.chain ?? e.hash.slice(0, 16)}.${e.seq}`);
    return e;
  }

  /** Verifies the file as it is now; `head`: a head known from elsewhere (the replicated copy). */
  verify(head?: ChainHead): ChainReport {
    return verifyFile(this.file, this.site, head);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Reads and verifies an agent audit file; a torn last line (crash mid-write) counts as garbled. */
export function verifyFile(file: string, site: string, head?: ChainHead): ChainReport {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const values = text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as unknown;
      } catch {
        return { unparsable: l.slice(0, 200) };
      }
    });
  return verifyChain(values, { site, ...(head ? { head } : {}) });
}

/** Entries of a verified or unverified file, for export. */
export function readEntries(file: string): unknown[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter((l) => l !== '').map((l) => {
    try {
      return JSON.parse(l) as unknown;
    } catch {
      return { unparsable: l.slice(0, 200) };
    }
  });
}

/** The chain's id: the first 16 hex digits of the hash of the file's first entry. */
function chainId(fd: number): string | undefined {
  const buf = Buffer.alloc(64 * 1024);
  const n = readSync(fd, buf, 0, buf.length, 0);
  const first = buf.subarray(0, n).toString('utf8').split('\n')[0] ?? '';
  try {
    const v = JSON.parse(first) as { hash?: unknown };
    return typeof v.hash === 'string' ? v.hash.slice(0, 16) : undefined;
  } catch {
    return undefined;
  }
}

/** The seq and hash of the last complete line of the open file, if it is an entry. */
function lastHead(fd: number): ChainHead | undefined {
  const size = fstatSync(fd).size;
  if (size === 0) return undefined;
  const len = Math.min(size, 64 * 1024);
  const buf = Buffer.alloc(len);
  readSync(fd, buf, 0, len, size - len);
  const lines = buf.toString('utf8').split('\n').filter((l) => l !== '');
  try {
    const v = JSON.parse(lines.at(-1) ?? '') as { seq?: unknown; hash?: unknown };
    return typeof v.seq === 'number' && typeof v.hash === 'string' ? { seq: v.seq, hash: v.hash } : undefined;
  } catch {
    return undefined;
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** A holder keeps the lock for one append; one older than this is left by a process that died. */
const LOCK_STALE_MS = 30_000;

/**
 * Takes an O_EXCL lock file holding this process's pid, waiting for a live holder (up to 40 s,
 * past LOCK_STALE_MS). A lock whose pid names no process (killed, -9, mid-append) is taken over
 * at once; so is one older than LOCK_STALE_MS (a pid reused after a power cut).
 */
function lock(file: string): () => void {
  const deadline = Date.now() + LOCK_STALE_MS + 10_000;
  for (;;) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      try {
        writeSync(fd, String(process.pid));
      } finally {
        closeSync(fd);
      }
      return () => {
        try {
          unlinkSync(file);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (staleLock(file)) {
        try {
          unlinkSync(file);
        } catch {
          // released meanwhile
        }
        continue;
      }
      if (Date.now() > deadline) throw new Error(`${file}: audit log locked by another process for over ${Math.round((LOCK_STALE_MS + 10_000) / 1000)} s`);
      Atomics.wait(sleeper, 0, 0, 20);
    }
  }
}

/** Whether the lock's holder is gone: its pid names no process, or the lock is older than LOCK_STALE_MS. */
function staleLock(file: string): boolean {
  try {
    if (Date.now() - statSync(file).mtimeMs > LOCK_STALE_MS) return true;
    const pid = Number(readFileSync(file, 'utf8'));
    // empty: its holder has just made it and is writing its pid
    if (!Number.isSafeInteger(pid) || pid <= 0) return false;
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Opens the log, appends one entry (queued for replication on the spool), closes: for CLI commands. */
export function appendAudit(stateDir: string, site: string, r: AgentAuditInput, replicate?: (e: AuditEntry, spoolId: string) => void): AuditEntry {
  const log = AuditLog.open(stateDir, site, replicate ? { replicate } : {});
  try {
    return log.record(r);
  } finally {
    log.close();
  }
}
