/**
 * audit/: the controller's tamper-evident audit trail (HIPAA 164.312(b)): every login (good or
 * bad), order, approval, break-glass access, key use, enrolment and configuration change, as a
 * hash chain (protocol audit.ts) on `mv.v1.audit.controller` in MV_AUDIT, the system of record.
 *
 * `record` appends exactly one entry or throws: callers treat a failure to audit as a failure of
 * the action (fail closed). Appends are serialised in this process and guarded across controllers
 * by JetStream's expected-last-subject-sequence, so the chain never forks; on a conflict the head
 * is re-read and the append retried. Commands that run while NATS may be down (site enrolment) queue
 * their entries in `<state_dir>/audit-pending.jsonl`; the next controller that starts appends them.
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  MedvaultError, chainEntry, codes, decode, encode, isError, streams, subjects, type AuditEntry, type AuditRecord, type ChainHead,
} from '@medvault/protocol';
import type { Bus } from '../bus.js';
import type { Log } from '../log.js';

export type AuditInput = Omit<AuditRecord, 'at' | 'site'> & { at?: number };

/** What the rest of the controller needs: append one entry. */
export interface AuditSink {
  record(r: AuditInput): Promise<AuditEntry>;
}

/** Collects entries in memory (a valid chain): for unit tests that check what was audited. */
export class MemoryAudit implements AuditSink {
  readonly entries: AuditEntry[] = [];
  constructor(private readonly clock: () => number = Date.now) {}
  async record(r: AuditInput): Promise<AuditEntry> {
    const e = chainEntry(this.entries.at(-1), { ...r, at: r.at ?? this.clock() });
    this.entries.push(e);
    return e;
  }
}

interface Head extends ChainHead {
  /** Stream sequence of the head entry (0 when the chain is empty). */
  streamSeq: number;
}

export class AuditTrail implements AuditSink {
  private head: Head | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly d: { bus: Pick<Bus, 'publish' | 'lastOnSubject'>; clock: () => number; log: Log }) {}

  /** Appends one entry; resolves once JetStream has stored it. */
  record(r: AuditInput): Promise<AuditEntry> {
    const p = this.queue.then(() => this.append(r));
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async loadHead(): Promise<Head> {
    const m = await this.d.bus.lastOnSubject(streams.audit.name, subjects.controllerAudit());
    if (!m) return { seq: 0, hash: '', streamSeq: 0 };
    const e = decode(m.data, 'mv.audit.v1');
    return { seq: e.seq, hash: e.hash, streamSeq: m.seq };
  }

  private async append(r: AuditInput): Promise<AuditEntry> {
    for (let attempt = 0; ; attempt++) {
      this.head ??= await this.loadHead();
      const prev = this.head.seq === 0 ? undefined : this.head;
      const entry = chainEntry(prev, { ...r, at: r.at ?? this.d.clock() });
      try {
        const ack = await this.d.bus.publish(subjects.controllerAudit(), encode(entry), {
          msgId: `controller.audit.${entry.seq}.${entry.hash.slice(0, 16)}`,
          expectLastSubjectSeq: this.head.streamSeq,
        });
        this.head = { seq: entry.seq, hash: entry.hash, streamSeq: ack.seq };
        const level = r.result === 'ok' ? 'info' : 'warn';
        this.d.log[level]({ audit: entry.seq, action: entry.action, actor: entry.actor.id, object: entry.object, result: entry.result }, 'audit');
        return entry;
      } catch (err) {
        this.head = undefined;
        if (isError(err, codes.CONFLICT) && attempt < 10) continue;
        throw err;
      }
    }
  }

  /** Appends the entries queued by offline commands in `stateDir`, oldest first, then removes the queue. */
  async drainPending(stateDir: string): Promise<number> {
    const file = pendingFile(stateDir);
    if (!existsSync(file)) return 0;
    const taken = `${file}.draining`;
    renameSync(file, taken);
    let n = 0;
    for (const line of readFileSync(taken, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      let r: AuditInput;
      try {
        r = JSON.parse(line) as AuditInput;
      } catch {
        this.d.log.warn({ line: line.slice(0, 200) }, 'unreadable pending audit entry');
        continue;
      }
      await this.record({ ...r, detail: { ...r.detail, queuedAt: r.at ?? null } , at: this.d.clock() });
      n++;
    }
    rmSync(taken, { force: true });
    return n;
  }
}

export function pendingFile(stateDir: string): string {
  return join(stateDir, 'audit-pending.jsonl');
}

/**
 * Queues an entry for the next controller start (for commands that need no NATS). fsync not needed:
 * O_APPEND of one line. A line torn by a command killed mid-append is ended first, so it cannot
 * swallow this entry (drainPending skips the torn one, which no command was told was queued).
 */
export function queueAudit(stateDir: string, r: AuditInput & { at: number }): void {
  try {
    const fd = openSync(pendingFile(stateDir), 'a+', 0o600);
    try {
      const size = fstatSync(fd).size;
      const last = Buffer.alloc(1);
      const torn = size > 0 && readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a;
      writeSync(fd, `${torn ? '\n' : ''}${JSON.stringify(r)}\n`);
    } finally {
      closeSync(fd);
    }
  } catch (cause) {
    throw new MedvaultError(codes.STORAGE_FAILED, `${pendingFile(stateDir)}: cannot queue the audit entry`, { cause });
  }
}
