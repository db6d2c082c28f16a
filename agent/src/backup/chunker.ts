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
 * chunks around it.
 */
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
  private h = 0;
  private readonly maskS: number;
  private readonly maskL: number;

  constructor(
    private readonly gear: Uint32Array,
    private readonly p: ChunkerParams,
  ) {
    const bits = Math.round(Math.log2(p.avg));
    this.maskS = highMask(bits + 2);
    this.maskL = highMask(bits - 2);
  }

  /** Feeds `buf` (which the caller MUST NOT modify afterwards); returns the chunks it completed. */
  push(buf: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const { min, avg, max } = this.p;
    const G = this.gear;
    let pos = 0;
    while (pos < buf.length) {
      if (this.len < min) {
        const take = Math.min(min - this.len, buf.length - pos);
        this.pieces.push(buf.subarray(pos, pos + take));
        this.len += take;
        pos += take;
        continue;
      }
      let h = this.h;
      let i = pos;
      let l = this.len;
      let cut = false;
      const end = buf.length;
      const maskS = this.maskS;
      const maskL = this.maskL;
      const endS = Math.min(end, pos + Math.max(0, avg - l));
      for (; i < endS; i++) {
        h = ((h << 1) + G[buf[i]!]!) | 0;
        if ((h & maskS) === 0) {
          i++;
          cut = true;
          break;
        }
      }
      if (!cut) {
        const endL = Math.min(end, pos + (max - l));
        for (; i < endL; i++) {
          h = ((h << 1) + G[buf[i]!]!) | 0;
          if ((h & maskL) === 0) {
            i++;
            cut = true;
            break;
          }
        }
      }
      l += i - pos;
      this.pieces.push(buf.subarray(pos, i));
      pos = i;
      if (cut || l >= max) {
        out.push(this.take());
      } else {
        this.len = l;
        this.h = h;
      }
    }
    return out;
  }

  /** Ends the input; returns the last chunk, if any. */
  end(): Buffer[] {
    return this.len > 0 ? [this.take()] : [];
  }

  private take(): Buffer {
    const c = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces);
    this.pieces = [];
    this.len = 0;
    this.h = 0;
    return c;
  }
}
