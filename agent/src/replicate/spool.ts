/**
 * The event spool: backup-log entries, snapshot events and order statuses wait here until JetStream
 * acknowledges them, so none is lost while NATS or the controller is down. Any agent process may
 * append (one O_APPEND write per event); the daemon flushes. The cursor is the byte offset of the
 * first event not yet acknowledged, replaced atomically after each flush; an event published but
 * not yet under the cursor at a crash is published again with the same message id, which
 * JetStream's duplicate window absorbs. A line torn by a kill or power cut mid-append was never
 * acknowledged to its writer (add() had not returned): the next append ends it first, and flush
 * skips it, so it cannot swallow or hold up the events after it.
 */
import { closeSync, fstatSync, fsyncSync, mkdirSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { canonicalJson, subjects, type EventType, type Message } from '@medvault/protocol';
import type { Link } from './link.js';
import { readFileIfExists, writeFileAtomic } from '../state/journal.js';

interface Spooled {
  id: string;
  event: EventType;
  body: string;
}

export class Spool {
  private readonly file: string;
  private readonly cursorFile: string;
  constructor(stateDir: string, private readonly site: string) {
    mkdirSync(stateDir, { recursive: true });
    this.file = join(stateDir, 'events.jsonl');
    this.cursorFile = join(stateDir, 'events.cursor');
  }

  /**
   * Durably queues `message` as event `event` (fsync before return). `id`: a stable id (message id
   * `<site>.ev.<id>`), so a resend after a crash is deduplicated; default a fresh UUID.
   */
  add(event: EventType, message: Message, id: string = randomUUID()): void {
    const line = `${JSON.stringify({ id, event, body: canonicalJson(message) } satisfies Spooled)}\n`;
    const fd = openSync(this.file, 'a+', 0o600);
    try {
      const size = fstatSync(fd).size;
      const last = Buffer.alloc(1);
      const torn = size > 0 && readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a;
      writeSync(fd, torn ? `\n${line}` : line);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Bytes of events not yet acknowledged. */
  pendingBytes(): number {
    try {
      return statSync(this.file).size - this.cursor();
    } catch {
      return 0;
    }
  }

  /** Publishes every queued event in order; stops at the first failure (rethrown). */
  async flush(link: Pick<Link, 'publish'>): Promise<number> {
    let offset = this.cursor();
    const text = this.readFrom(offset);
    let flushed = 0;
    let consumed = 0;
    for (const line of text.split('\n').slice(0, -1)) {
      consumed += Buffer.byteLength(line) + 1;
      if (line.trim() === '') continue;
      let e: Spooled;
      try {
        e = JSON.parse(line) as Spooled;
      } catch {
        continue; // torn mid-append: see the top of this file
      }
      await link.publish(subjects.event(this.site, e.event), Buffer.from(e.body), { msgID: `${this.site}.ev.${e.id}` });
      flushed++;
      if (flushed % 100 === 0) writeFileAtomic(this.cursorFile, String(offset + consumed));
    }
    offset += consumed;
    if (consumed > 0) writeFileAtomic(this.cursorFile, String(offset));
    return flushed;
  }

  private cursor(): number {
    const n = Number(readFileIfExists(this.cursorFile) ?? '0');
    return Number.isSafeInteger(n) && n >= 0 ? n : 0;
  }

  private readFrom(offset: number): string {
    let fd: number;
    try {
      fd = openSync(this.file, 'r');
    } catch {
      return '';
    }
    try {
      const size = statSync(this.file).size;
      const buf = Buffer.alloc(Math.max(0, size - offset));
      let read = 0;
      while (read < buf.length) {
        const n = readSync(fd, buf, read, buf.length - read, offset + read);
        if (n === 0) break;
        read += n;
      }
      return buf.subarray(0, read).toString('utf8');
    } finally {
      closeSync(fd);
    }
  }
}
