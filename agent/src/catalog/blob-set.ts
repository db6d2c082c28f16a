/**
 * BlobIdSet: which blob ids a repository holds, in memory, so deduplication asks no LevelDB get
 * per chunk. Keeps the first 128 bits of each id (ids are keyed HMAC-SHA256 values: two distinct
 * ids share a 128-bit prefix with probability 2^-128 per pair) in an open-addressing table of
 * 16 bytes per slot, at most 70% full: ~20-45 bytes per blob (1 M blobs: 20-45 MB).
 */
const WORDS = 4;

export class BlobIdSet {
  private table = new Uint32Array(1024 * WORDS);
  private count = 0;
  /** The all-zero prefix marks a free slot, so that (improbable) prefix is kept aside. */
  private zero = false;

  get size(): number {
    return this.count + (this.zero ? 1 : 0);
  }

  add(id: string): void {
    const k = key(id);
    if (k[0] === 0 && k[1] === 0 && k[2] === 0 && k[3] === 0) {
      this.zero = true;
      return;
    }
    if ((this.count + 1) * 10 > (this.table.length / WORDS) * 7) this.grow();
    if (this.place(this.table, k)) this.count++;
  }

  has(id: string): boolean {
    const k = key(id);
    if (k[0] === 0 && k[1] === 0 && k[2] === 0 && k[3] === 0) return this.zero;
    const t = this.table;
    const mask = t.length / WORDS - 1;
    for (let i = k[0]! & mask; ; i = (i + 1) & mask) {
      const o = i * WORDS;
      if (t[o] === 0 && t[o + 1] === 0 && t[o + 2] === 0 && t[o + 3] === 0) return false;
      if (t[o] === k[0] && t[o + 1] === k[1] && t[o + 2] === k[2] && t[o + 3] === k[3]) return true;
    }
  }

  /** Puts `k` into `t` unless there; true when added. */
  private place(t: Uint32Array, k: ArrayLike<number>): boolean {
    const mask = t.length / WORDS - 1;
    for (let i = k[0]! & mask; ; i = (i + 1) & mask) {
      const o = i * WORDS;
      if (t[o] === 0 && t[o + 1] === 0 && t[o + 2] === 0 && t[o + 3] === 0) {
        t[o] = k[0]!;
        t[o + 1] = k[1]!;
        t[o + 2] = k[2]!;
        t[o + 3] = k[3]!;
        return true;
      }
      if (t[o] === k[0] && t[o + 1] === k[1] && t[o + 2] === k[2] && t[o + 3] === k[3]) return false;
    }
  }

  private grow(): void {
    const old = this.table;
    this.table = new Uint32Array(old.length * 2);
    for (let o = 0; o < old.length; o += WORDS) if (old[o] || old[o + 1] || old[o + 2] || old[o + 3]) this.place(this.table, old.subarray(o, o + WORDS));
  }
}

const scratch = new Uint32Array(WORDS);
/** The id's first 128 bits as four words (a shared scratch array: use before the next call). */
function key(id: string): Uint32Array {
  for (let w = 0; w < WORDS; w++) scratch[w] = parseInt(id.slice(w * 8, w * 8 + 8), 16) >>> 0;
  return scratch;
}
