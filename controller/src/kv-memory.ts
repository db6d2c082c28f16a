/** The in-memory twin of KvBucket: same contract (revisions, compare-and-set), for tests. */
import { MedvaultError, codes } from '@medvault/protocol';
import type { KvBucket } from './bus.js';

export class MemoryKv implements KvBucket {
  private readonly entries = new Map<string, { value: Uint8Array; revision: number }>();
  private seq = 0;

  async get(key: string) {
    const e = this.entries.get(key);
    return e ? { value: e.value.slice(), revision: e.revision } : undefined;
  }

  async create(key: string, value: Uint8Array) {
    if (this.entries.has(key)) throw new MedvaultError(codes.CONFLICT, `${key} already exists`);
    this.entries.set(key, { value: value.slice(), revision: ++this.seq });
    return this.seq;
  }

  async update(key: string, value: Uint8Array, revision: number) {
    if (this.entries.get(key)?.revision !== revision) throw new MedvaultError(codes.CONFLICT, `${key} changed meanwhile`, { retryable: true });
    this.entries.set(key, { value: value.slice(), revision: ++this.seq });
    return this.seq;
  }

  async keys() {
    return [...this.entries.keys()].sort();
  }
}
