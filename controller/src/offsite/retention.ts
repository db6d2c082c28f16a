/**
 * RetentionBook: what every snapshot needs off site, projected from the agents' mv.snapshot-needs.v1
 * on MV_EVENTS, and what off-site retention pruned (mv.pruned.v1 on MV_CONTROL). Rebuilt from the
 * streams at every start, like the other projections; never the system of record. Rules:
 *  - The FIRST complete list per snapshot wins. Per part the first message counts; a message for a
 *    part already in, or with another part count, repository or store, is ignored; once every part
 *    is in, the list is frozen. So a compromised appliance can add snapshots, but it cannot shrink
 *    what an old snapshot needs or take a legal-hold tag off it.
 *  - A snapshot's time, for the retention policy, is the stream time (the controller's NATS server)
 *    of its first needs message, never the time the agent claims: a flood of fake snapshots in one
 *    day falls into one day's bucket, whatever times they claim.
 *  - A pruned object stays marked until a later receipt for it (it was needed again and resent).
 * Object keys (objectKey) are interned per site, so a thousand snapshots of one repository cost one
 * string per object plus four bytes per need.
 */
import { decode, parseEventSubject, type ObjectKind, type ObjectRef, type PrunedRecord, type SnapshotNeeds } from '@medvault/protocol';
import type { StoredMessage } from '../bus.js';
import { objectKey, type ObjectId } from '../ingest/assembler.js';

export interface NeedsList {
  site: string;
  repo: string;
  snapshot: string;
  store: string;
  tags: string[];
  /** Stream time of the first needs message of this snapshot (what the policy uses). */
  time: number;
  /** The time the agent claims for the snapshot (shown, never used for retention). */
  claimedTime: number;
  parts: number;
  /** True once every part is in: only then does the list count for pruning. */
  complete: boolean;
}

interface Entry extends NeedsList {
  got: Map<number, Uint32Array>;
}

interface SiteBook {
  lists: Map<string, Entry>;
  names: string[];
  ids: Map<string, number>;
}

export class RetentionBook {
  private readonly bySite = new Map<string, SiteBook>();
  private readonly prunedMap = new Map<string, PrunedRecord>();

  /** Applies one MV_EVENTS message (others are not for this book); returns why it was ignored, or undefined. */
  applyNeeds(m: Pick<StoredMessage, 'subject' | 'data' | 'time'>): string | undefined {
    const s = parseEventSubject(m.subject);
    if (s?.event !== 'needs') return undefined;
    let n;
    try {
      n = decode(m.data, 'mv.snapshot-needs.v1');
    } catch (err) {
      return (err as Error).message;
    }
    if (n.site !== s.site) return `needs list for site ${n.site} came from site ${s.site}`;
    return this.add(n, m.time);
  }

  /** Applies one needs part, decoded and checked against its subject's site, stored at stream time `time`. */
  add(n: SnapshotNeeds, time: number): string | undefined {
    if (n.part >= n.parts) return `needs list of snapshot ${n.snapshot}: part ${n.part} of ${n.parts}`;
    const book = this.site(n.site);
    const k = `${n.repo}/${n.snapshot}`;
    let e = book.lists.get(k);
    if (!e) {
      e = { site: n.site, repo: n.repo, snapshot: n.snapshot, store: n.store, tags: n.tags, time, claimedTime: n.time, parts: n.parts, complete: false, got: new Map() };
      book.lists.set(k, e);
    }
    if (e.complete) return `snapshot ${n.snapshot}: its needs list is complete; a later one is ignored`;
    if (n.parts !== e.parts || n.store !== e.store) return `snapshot ${n.snapshot}: part ${n.part} does not match the first part (parts ${e.parts}, store ${e.store}); ignored`;
    if (e.got.has(n.part)) return `snapshot ${n.snapshot}: part ${n.part} is in already; ignored`;
    e.got.set(n.part, Uint32Array.from(n.objects, (o) => this.intern(book, n.site, n.repo, o)));
    e.complete = e.got.size === e.parts;
    return undefined;
  }

  /** Records an mv.pruned.v1 (already decoded, from MV_CONTROL). */
  applyPruned(r: PrunedRecord): void {
    for (const o of r.objects) this.prunedMap.set(objectKey({ site: r.site, repo: r.repo, ...o }), r);
  }

  /** A receipt arrived for this object: it is off site again, no longer pruned. */
  receipted(id: ObjectId): void {
    this.prunedMap.delete(objectKey(id));
  }

  /** The pruned record of an object that has no receipt since, if any. */
  pruned(id: ObjectId): PrunedRecord | undefined {
    return this.prunedMap.get(objectKey(id));
  }

  sites(): string[] {
    return [...this.bySite.keys()].sort();
  }

  /** Every snapshot of `site` with a needs list (complete or not), oldest first by stream time. */
  snapshots(site: string): NeedsList[] {
    return [...(this.bySite.get(site)?.lists.values() ?? [])].map(({ got: _got, ...l }) => l).sort((a, b) => a.time - b.time || a.snapshot.localeCompare(b.snapshot));
  }

  /** The objectKey of everything a snapshot needs (every part in); undefined while its list is incomplete or unknown. */
  needKeys(site: string, repo: string, snapshot: string): string[] | undefined {
    const book = this.bySite.get(site);
    const e = book?.lists.get(`${repo}/${snapshot}`);
    if (!book || !e?.complete) return undefined;
    const out: string[] = [];
    for (let p = 0; p < e.parts; p++) for (const i of e.got.get(p)!) out.push(book.names[i]!);
    return out;
  }

  /** What a snapshot needs, as kind and hash (see needKeys). */
  needs(site: string, repo: string, snapshot: string): ObjectRef[] | undefined {
    return this.needKeys(site, repo, snapshot)?.map(parseKey);
  }

  private site(site: string): SiteBook {
    let b = this.bySite.get(site);
    if (!b) this.bySite.set(site, (b = { lists: new Map(), names: [], ids: new Map() }));
    return b;
  }

  private intern(b: SiteBook, site: string, repo: string, o: ObjectRef): number {
    const name = objectKey({ site, repo, ...o });
    let i = b.ids.get(name);
    if (i === undefined) {
      i = b.names.length;
      b.names.push(name);
      b.ids.set(name, i);
    }
    return i;
  }
}

/** The kind and hash of an objectKey (`<site>.<repo>.<kind>.<hash>`; ids hold no dots). */
export function parseKey(key: string): ObjectRef {
  const [, , kind, hash] = key.split('.');
  return { kind: kind as ObjectKind, hash: hash! };
}
