/**
 * Durable agent state: append-only JSON-lines journals (receipts, order ledger, event spool) and
 * small atomically replaced files (cursors). Survives kill -9 and power loss: a torn last line is
 * dropped at open, and a replaced file is either old or new, never half. Each journal append
 * passes the fault point 'journal.append' (subject: the file), so crash tests can kill the agent
 * at any given line of any journal (MEDVAULT_FAULTS, store/faults.ts).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, truncateSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { MedvaultError, codes } from '@medvault/protocol';
import { faultPoint } from '../store/faults.js';

export class Journal<T> {
  private fd: number;
  private constructor(readonly file: string, readonly records: T[]) {
    this.fd = openSync(file, 'a');
  }

  /** Opens (creating) `file` for appending and reads every complete record; a torn final line is cut off. */
  static open<T>(file: string): Journal<T> {
    mkdirSync(dirname(file), { recursive: true });
    const { records, text, end } = Journal.parse<T>(file);
    if (end < text.length) truncateSync(file, Buffer.byteLength(text.slice(0, end)));
    return new Journal(file, records);
  }

  /** The complete records of `file` without opening it for writing (another process may be appending). */
  static read<T>(file: string): T[] {
    return Journal.parse<T>(file).records;
  }

  private static parse<T>(file: string): { records: T[]; text: string; end: number } {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storage(file, err);
    }
    const end = text.lastIndexOf('\n') + 1;
    const records: T[] = [];
    for (const [i, line] of text.slice(0, end).split('\n').entries()) {
      if (line === '') continue;
      try {
        records.push(JSON.parse(line) as T);
      } catch (cause) {
        throw new MedvaultError(codes.DATA_CORRUPT, `${file}: line ${i + 1} is not JSON`, { cause });
      }
    }
    return { records, text, end };
  }

  /** Appends `items` and returns once they are on stable storage (fsync). */
  append(...items: T[]): void {
    if (items.length === 0) return;
    try {
      faultPoint('journal.append', this.file);
      writeSync(this.fd, items.map((r) => `${JSON.stringify(r)}\n`).join(''));
      fsyncSync(this.fd);
    } catch (err) {
      throw storage(this.file, err);
    }
    this.records.push(...items);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/**
 * Replaces `file` with `text` atomically (temp file, fsync, rename, fsync of the folder). With
 * `durable: false` (a display file rewritten every few seconds, like status.json) the fsyncs are
 * left out: still never half-written, but a crash may leave the previous version. They are
 * synchronous and, on a busy disk, blocked the daemon's replication for a few hundred ms each.
 */
export function writeFileAtomic(file: string, text: string, o: { durable?: boolean } = {}): void {
  const durable = o.durable ?? true;
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    mkdirSync(dirname(file), { recursive: true });
    const fd = openSync(tmp, 'w', 0o600);
    writeSync(fd, text);
    if (durable) fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, file);
    if (!durable) return;
    const dir = openSync(dirname(file), 'r');
    fsyncSync(dir);
    closeSync(dir);
  } catch (err) {
    throw storage(file, err);
  }
}

/** The contents of `file`, or undefined when it does not exist. */
export function readFileIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw storage(file, err);
  }
}

function storage(file: string, cause: unknown): MedvaultError {
  return new MedvaultError(codes.STORAGE_FAILED, `${file}: ${(cause as Error).message}`, { cause });
}
