/**
 * FastCDC content-defined chunking (Xia et al. 2016, normalized chunking level 2), streaming.
 *
 * 1. A chunk starts with h = 0; its first `min` bytes are taken without hashing.
 * 2. Each further byte b: h = (h << 1) + gear[b] (32 bits); the gear table comes from the repository
 *    key, so boundaries do not fingerprint content.
 * 3. Cut after the byte when (h & mask) == 0, using a harder mask (log2(avg)+2 high bits) before
 *    `avg` bytes and an easier one (log2(avg)-2 bits) after; always cut at `max`.
 * 4. The end of input ends the last chunk (an empty input yields no chunk).
 * Boundaries depend only on the bytes since the previous boundary, so an insertion moves only the
 * chunks around it. Step 2-3's loop runs in the fsx addon (gearScan): in JavaScript it was a third
 * of the backup main thread's CPU (perf, bench data set's initial backup).
 */
import { gearScan, release } from '../platform/fsx.js';
export interface ChunkerParams {
  min: number;
  avg: number;
  max: number;
}

function highMask(bits: number): number {
  return ((2 ** bits - 1) * 2 ** (32 - bits)) | 0;
}

export class Chunker {
  private pieces: Buffer[] = [];
  private len = 0;
  /** [h, cut]: the hash so far, and whether gearScan's last call cut. */
  private readonly state = new Int32Array(2);
  private readonly maskS: number;
  private readonly maskL: number;

  /**
   * `frees`: every buffer pushed is the caller's own, starting at the start of its ArrayBuffer, and
   * the chunker frees it (release) once its last byte is copied into a chunk; every chunk then spans
   * its own ArrayBuffer (so the crypto pool transfers it uncopied). A file's 1 MiB reads left to the
   * collector made external garbage of every byte read: the bench data set's initial backup ran 80
   * full collections (mark-compact) on a 12 MiB heap, ~2 s of CPU on V8's helper threads.
   */
  constructor(
    private readonly gear: Uint32Array,
    private readonly p: ChunkerParams,
    private readonly frees = false,
  ) {
    const bits = Math.round(Math.log2(p.avg));
    this.maskS = highMask(bits + 2);
    this.maskL = highMask(bits - 2);
  }

  /** Feeds `buf` (which the caller MUST NOT modify afterwards); returns the chunks it completed. */
  push(buf: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const { min, avg, max } = this.p;
    let pos = 0;
    while (pos < buf.length) {
      if (this.len < min) {
        const take = Math.min(min - this.len, buf.length - pos);
        this.pieces.push(buf.subarray(pos, pos + take));
        this.len += take;
        pos += take;
        continue;
      }
      const endS = Math.min(buf.length, pos + Math.max(0, avg - this.len));
      const endL = Math.min(buf.length, pos + (max - this.len));
      const i = gearScan(this.gear, buf, pos, endS, endL, this.maskS, this.maskL, this.state);
      const cut = this.state[1] === 1;
      const l = this.len + i - pos;
      this.pieces.push(buf.subarray(pos, i));
      pos = i;
      if (cut || l >= max) {
        out.push(this.take());
      } else {
        this.len = l;
      }
    }
    return out;
  }

  /** Ends the input; returns the last chunk, if any. */
  end(): Buffer[] {
    return this.len > 0 ? [this.take()] : [];
  }

  private take(): Buffer {
    const ps = this.pieces;
    const one = ps.length === 1 ? ps[0]! : undefined;
    let c: Buffer;
    if (one && (!this.frees || (one.byteOffset === 0 && one.length === one.buffer.byteLength))) c = one;
    else {
      c = Buffer.allocUnsafeSlow(ps.reduce((n, p) => n + p.length, 0)); // this.len lags at a cut
      let o = 0;
      for (const p of ps) o += p.copy(c, o);
      // a buffer whose last byte is copied now is used up (the chunks before it were copies too)
      if (this.frees) for (const p of ps) if (p.byteOffset + p.length === p.buffer.byteLength) release(new Uint8Array(p.buffer));
    }
    this.pieces = [];
    this.len = 0;
    this.state[0] = 0;
    return c;
  }
}
