/**
 * Legal holds on off-site snapshots, durable in the JetStream KV bucket MV_HOLDS (key
 * `<site>.<snapshot>`, with history): a held snapshot, and every object it needs, is never pruned.
 * A hold is lifted by writing it inactive (who, when, why stay on record), never by deleting it.
 * Every add and remove is audited with the person's id; a reason is required for both.
 */
import { MedvaultError, codes, type AuditActor } from '@medvault/protocol';
import type { AuditSink } from '../audit/trail.js';
import type { KvBucket } from '../bus.js';

export const HOLDS_BUCKET = 'MV_HOLDS';

export interface Hold {
  site: string;
  snapshot: string;
  active: boolean;
  reason: string;
  by: string;
  at: number;
  /** When lifted: by whom, when and why. */
  removed?: { by: string; at: number; reason: string };
}

const enc = (h: Hold) => new TextEncoder().encode(JSON.stringify(h));
const dec = (v: Uint8Array) => JSON.parse(new TextDecoder().decode(v)) as Hold;

export class HoldBook {
  constructor(private readonly d: { kv: KvBucket; audit: AuditSink; clock: () => number }) {}

  /** Puts `snapshot` of `site` on hold (again); fails with MV_ERR_CONFLICT if it is held already. */
  async add(site: string, snapshot: string, reason: string, actor: AuditActor): Promise<Hold> {
    const key = `${site}.${snapshot}`;
    const cur = await this.d.kv.get(key);
    if (cur && dec(cur.value).active) throw new MedvaultError(codes.CONFLICT, `snapshot ${snapshot} of site ${site} is on legal hold already`);
    const h: Hold = { site, snapshot, active: true, reason, by: actor.id, at: this.d.clock() };
    await this.d.audit.record({ actor, action: 'hold.add', object: `snapshot:${site}/${snapshot}`, result: 'ok', detail: { reason } });
    if (cur) await this.d.kv.update(key, enc(h), cur.revision);
    else await this.d.kv.create(key, enc(h));
    return h;
  }

  /** Lifts the hold; MV_ERR_NOT_FOUND if the snapshot is not on hold. */
  async remove(site: string, snapshot: string, reason: string, actor: AuditActor): Promise<Hold> {
    const key = `${site}.${snapshot}`;
    const cur = await this.d.kv.get(key);
    const h = cur && dec(cur.value);
    if (!cur || !h?.active) throw new MedvaultError(codes.NOT_FOUND, `snapshot ${snapshot} of site ${site} is not on legal hold`);
    const lifted: Hold = { ...h, active: false, removed: { by: actor.id, at: this.d.clock(), reason } };
    await this.d.audit.record({ actor, action: 'hold.remove', object: `snapshot:${site}/${snapshot}`, result: 'ok', detail: { reason, heldSince: h.at, heldBy: h.by } });
    await this.d.kv.update(key, enc(lifted), cur.revision);
    return lifted;
  }

  /** Holds in force (of `site`), oldest first; with `all`, lifted ones too. */
  async list(site?: string, all = false): Promise<Hold[]> {
    const out: Hold[] = [];
    for (const k of await this.d.kv.keys()) {
      if (site !== undefined && !k.startsWith(`${site}.`)) continue;
      const v = await this.d.kv.get(k);
      if (!v) continue;
      const h = dec(v.value);
      if (h.active || all) out.push(h);
    }
    return out.sort((a, b) => a.at - b.at);
  }
}
