/** MemStore: the in-memory twin of DirStore, for tests; same contract (store-contract.ts). */
import { type Store, type StoreKind, type StoreEntry, validateName, validatePut } from './store.js';

export class MemStore implements Store {
  readonly objects = new Map<string, Buffer>();

  private key(kind: StoreKind, name: string): string {
    validateName(kind, name);
    return `${kind}/${name}`;
  }
  async get(kind: StoreKind, name: string, range?: { offset: number; length: number }): Promise<Buffer | undefined> {
    const b = this.objects.get(this.key(kind, name));
    if (b === undefined) return undefined;
    return Buffer.from(range ? b.subarray(range.offset, range.offset + range.length) : b);
  }
  async has(kind: StoreKind, name: string): Promise<boolean> {
    return this.objects.has(this.key(kind, name));
  }
  async *list(kind: StoreKind): AsyncIterable<StoreEntry> {
    const prefix = `${kind}/`;
    for (const [k, v] of [...this.objects]) if (k.startsWith(prefix)) yield { name: k.slice(prefix.length), size: v.length };
  }
  async put(kind: StoreKind, name: string, data: Uint8Array): Promise<boolean> {
    validatePut(kind, name, data);
    const k = this.key(kind, name);
    if (this.objects.has(k)) return false;
    this.objects.set(k, Buffer.from(data));
    return true;
  }
  async delete(kind: StoreKind, name: string): Promise<void> {
    this.objects.delete(this.key(kind, name));
  }
  async replace(kind: 'lock', name: string, data: Uint8Array): Promise<void> {
    validatePut(kind, name, data);
    this.objects.set(this.key(kind, name), Buffer.from(data));
  }
  async sweep(): Promise<number> {
    return 0;
  }
}
