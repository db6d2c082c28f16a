/**
 * offsite/: this site's repositories as the controller keeps them off site (stream MV_OFFSITE,
 * subject mv.v1.off.<site>.<repo>.<kind>.<hash>, one message per part), read back over the
 * agent's Link with the site's own credentials. OffsiteStore is a ReadableStore, so
 * Repository.open, the Restorer and the Checker work on it unchanged; nothing is staged on disk.
 *
 * Nothing read is trusted: every part's Mv-Object header MUST describe this very object and fit
 * its payload, no part may be missing, and the whole MUST hash to its name (config: to the hash
 * in its subject, and decode as this repository's config); else MV_ERR_DATA_CORRUPT naming it.
 * Whole packs stay in a small LRU, so ranged blob reads do not fetch a pack again; the packs a
 * reader says it needs next (prefetch: the restorer names the packs of its coming chunks) are
 * fetched ahead, a few at a time, each over its own consumer. (Stream order is no guide: the
 * replicator sends packs in listing order, not in the order backups wrote them.)
 */
import { createHash } from 'node:crypto';
import { MedvaultError, OBJECT_HEADER, codes, decodePart, parseObjectSubject, sha256Hex, streams, subjects, type ObjectKind, type ObjectPart } from '@medvault/protocol';
import { MSG_SIZE_HEADER, type Link, type LinkMessage } from '../replicate/link.js';
import { validateName, type ReadableStore, type StoreEntry, type StoreKind } from '../store/store.js';
import { decodeConfig } from '../repo/config-file.js';

const OFF = streams.offsite.name;

/** One object read in bulk (`objects`): its verified bytes, or why it cannot be used. */
export type OffsiteObject = { name: string; size: number; data: Buffer } | { name: string; size: number; problem: string };

export interface OffsiteStoreOptions {
  /** Whole packs kept in memory (default 8: the packs fetched ahead, the one in use and a few before it). */
  cachePacks?: number;
  /** Packs fetched ahead at once on prefetch hints (default 3, at most 4: each read keeps 8 MiB in flight). */
  readAhead?: number;
}

/** The repository ids `site` has off site (those with a config object there). */
export async function listRepos(link: Pick<Link, 'read'>, site: string): Promise<string[]> {
  const repos = new Set<string>();
  for await (const m of link.read(OFF, `${subjects.offsitePattern(site).slice(0, -1)}*.config.*`, { headersOnly: true })) {
    const s = parseObjectSubject(m.subject);
    if (s) repos.add(s.repo);
  }
  return [...repos].sort();
}

export class OffsiteStore implements ReadableStore {
  readonly label: string;
  /** Least recently used first. */
  private readonly packs = new Map<string, Promise<Buffer | undefined>>();
  /** Packs fetched ahead and not yet asked for. */
  private readonly ahead = new Set<string>();
  private configHash: Promise<string | undefined> | undefined;

  constructor(
    private readonly link: Pick<Link, 'read'>,
    readonly site: string,
    readonly repo: string,
    private readonly o: OffsiteStoreOptions = {},
  ) {
    subjects.offsite(site, repo, 'config', '0'.repeat(64)); // validates site and repo
    this.label = `off-site copy of ${site}/${repo}`;
  }

  async *list(kind: StoreKind): AsyncIterable<StoreEntry> {
    if (kind === 'lock') return;
    const seen = new Set<string>();
    for await (const m of this.link.read(OFF, this.filter(kind), { headersOnly: true })) {
      const p = this.partOf(m, Number(m.header(MSG_SIZE_HEADER)));
      if (p.part !== 0 || seen.has(p.hash)) continue;
      seen.add(p.hash);
      yield { name: kind === 'config' ? 'config' : p.hash, size: p.size };
    }
  }

  async has(kind: StoreKind, name: string): Promise<boolean> {
    if (kind === 'lock') return false;
    validateName(kind, name);
    const hash = kind === 'config' ? await this.hashOfConfig() : name;
    if (hash === undefined) return false;
    for await (const _ of this.link.read(OFF, subjects.offsite(this.site, this.repo, kind, hash), { headersOnly: true })) return true;
    return false;
  }

  async get(kind: StoreKind, name: string, range?: { offset: number; length: number }): Promise<Buffer | undefined> {
    if (kind === 'lock') return undefined;
    validateName(kind, name);
    const hash = kind === 'config' ? await this.hashOfConfig() : name;
    if (hash === undefined) return undefined;
    const b = kind === 'pack' ? await this.pack(hash) : await this.fetch(kind, hash);
    return b && range ? b.subarray(range.offset, range.offset + range.length) : b;
  }

  /**
   * Every object of `kind` in one read (the fastest way to copy a repository), each verified as
   * `get` does; a damaged or incomplete one is yielded with its problem instead of its bytes.
   */
  async *objects(kind: ObjectKind): AsyncIterable<OffsiteObject> {
    const open = new Map<string, Assembly>();
    const done = new Set<string>();
    const name = (hash: string) => (kind === 'config' ? 'config' : hash);
    for await (const m of this.link.read(OFF, this.filter(kind))) {
      let p: ObjectPart;
      try {
        p = this.partOf(m, m.data.byteLength);
      } catch (err) {
        const s = parseObjectSubject(m.subject);
        if (s && !done.has(s.hash)) {
          done.add(s.hash);
          open.delete(s.hash);
          yield { name: name(s.hash), size: 0, problem: (err as Error).message };
        }
        continue;
      }
      if (done.has(p.hash)) continue;
      let a = open.get(p.hash);
      if (!a) open.set(p.hash, (a = new Assembly(p, this.what(kind, p.hash))));
      try {
        if (!a.add(p, m.data)) continue;
        open.delete(p.hash);
        done.add(p.hash);
        yield { name: name(p.hash), size: p.size, data: this.verify(kind, p.hash, a) };
      } catch (err) {
        open.delete(p.hash);
        done.add(p.hash);
        yield { name: name(p.hash), size: p.size, problem: (err as Error).message };
      }
    }
    for (const [hash, a] of open) yield { name: name(hash), size: a.head.size, problem: `${this.what(kind, hash)}: ${a.missing()} of ${a.head.parts} parts missing` };
  }

  private filter(kind: ObjectKind): string {
    return `${subjects.offsitePattern(this.site).slice(0, -1)}${this.repo}.${kind}.>`;
  }

  private what(kind: ObjectKind, hash: string): string {
    return `${this.label}: ${kind} ${hash}`;
  }

  private hashOfConfig(): Promise<string | undefined> {
    this.configHash ??= (async () => {
      for await (const m of this.link.read(OFF, this.filter('config'), { headersOnly: true })) return this.partOf(m, Number(m.header(MSG_SIZE_HEADER))).hash;
      return undefined;
    })();
    this.configHash.catch(() => (this.configHash = undefined));
    return this.configHash;
  }

  /** A pack from the LRU, or fetched. */
  private pack(hash: string): Promise<Buffer | undefined> {
    this.ahead.delete(hash);
    return this.cachedPack(hash);
  }

  /**
   * Starts fetching the first few of `names` not held yet, so that at most `readAhead` packs
   * fetched ahead wait unread (more would push packs still in use out of the LRU).
   */
  prefetch(kind: 'pack', names: readonly string[]): void {
    const most = Math.min(4, this.o.readAhead ?? 3);
    for (const name of names) {
      if (this.ahead.size >= most) return;
      if (kind !== 'pack' || this.packs.has(name)) continue;
      validateName('pack', name);
      this.ahead.add(name);
      this.cachedPack(name).catch(() => this.ahead.delete(name));
    }
  }

  private cachedPack(hash: string): Promise<Buffer | undefined> {
    let p = this.packs.get(hash);
    if (p) this.packs.delete(hash);
    else {
      p = this.fetch('pack', hash);
      p.catch(() => this.packs.get(hash) === p && this.packs.delete(hash)); // a failed fetch is tried again next time
    }
    this.packs.set(hash, p);
    for (const old of this.packs.keys()) {
      if (this.packs.size <= (this.o.cachePacks ?? 8)) break;
      this.packs.delete(old);
      this.ahead.delete(old);
    }
    return p;
  }

  /** One object, all parts verified; undefined when it is not off site. */
  private async fetch(kind: ObjectKind, hash: string): Promise<Buffer | undefined> {
    let a: Assembly | undefined;
    for await (const m of this.link.read(OFF, subjects.offsite(this.site, this.repo, kind, hash))) {
      const p = this.partOf(m, m.data.byteLength);
      a ??= new Assembly(p, this.what(kind, hash));
      if (a.add(p, m.data)) return this.verify(kind, hash, a);
    }
    if (!a) return undefined;
    throw new MedvaultError(codes.DATA_CORRUPT, `${this.what(kind, hash)}: ${a.missing()} of ${a.head.parts} parts missing`);
  }

  /** The part header of a message, checked against its subject, this repository and its payload length. */
  private partOf(m: LinkMessage, length: number): ObjectPart {
    const s = parseObjectSubject(m.subject);
    let p: ObjectPart;
    try {
      p = decodePart(m.header(OBJECT_HEADER), length);
    } catch (err) {
      throw new MedvaultError(codes.DATA_CORRUPT, `${this.label}: ${m.subject}: ${(err as Error).message}`, { cause: err });
    }
    if (!s || s.area !== 'off' || s.site !== this.site || s.repo !== this.repo || p.site !== s.site || p.repo !== s.repo || p.kind !== s.kind || p.hash !== s.hash) {
      throw new MedvaultError(codes.DATA_CORRUPT, `${this.label}: ${m.subject}: its part header describes ${p.site}/${p.repo} ${p.kind} ${p.hash}`);
    }
    return p;
  }

  private verify(kind: ObjectKind, hash: string, a: Assembly): Buffer {
    const b = a.bytes();
    const actual = a.hash();
    if (actual !== hash) throw new MedvaultError(codes.DATA_CORRUPT, `${this.what(kind, hash)}: bytes hash to ${actual}`);
    if (kind === 'config' && decodeConfig(b, this.what(kind, hash)).id !== this.repo) {
      throw new MedvaultError(codes.DATA_CORRUPT, `${this.what(kind, hash)}: it is the config of another repository`);
    }
    return b;
  }
}

/**
 * The parts of one object as they arrive (first copy of each part wins), copied once into a buffer
 * of the object's size and hashed as they come: parts arrive in order (one subject, stream order),
 * so by the last one the hash is done; out of order, the whole is hashed at the end.
 */
class Assembly {
  private buf: Buffer | undefined;
  private readonly have = new Set<number>();
  private readonly sha = createHash('sha256');
  private inOrder = 0;
  constructor(readonly head: ObjectPart, private readonly what: string) {}

  /** True once every part is in. */
  add(p: ObjectPart, data: Uint8Array): boolean {
    if (p.size !== this.head.size || p.parts !== this.head.parts || p.partSize !== this.head.partSize) {
      throw new MedvaultError(codes.DATA_CORRUPT, `${this.what}: part ${p.part} says ${p.size} bytes in ${p.parts} parts, part ${this.head.part} ${this.head.size} in ${this.head.parts}`);
    }
    if (this.have.has(p.part)) return this.have.size === this.head.parts;
    this.have.add(p.part);
    this.buf ??= Buffer.allocUnsafeSlow(this.head.size);
    this.buf.set(data, p.part * p.partSize); // decodePart checked the length against the part number
    if (p.part === this.inOrder) (this.inOrder++, this.sha.update(data));
    return this.have.size === this.head.parts;
  }

  missing(): number {
    return this.head.parts - this.have.size;
  }

  bytes(): Buffer {
    return this.buf ?? Buffer.alloc(0);
  }

  /** SHA-256 of the whole, hex. */
  hash(): string {
    return this.inOrder === this.head.parts ? this.sha.digest('hex') : sha256Hex(this.bytes());
  }
}
