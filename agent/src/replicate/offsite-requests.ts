/**
 * What the controller asks about the off-site copy, verified against the pinned controller key
 * (anything else is refused and logged):
 *  - mv.resend.v1: its scrub found these copies damaged and purged them;
 *  - mv.reconcile.v1: list what MV_OFFSITE holds for this site (headers only, with the site's own
 *    credentials) and take every local object missing there, or there only in part, as unreceipted,
 *    except what the controller pruned under its retention (signed mv.pruned.v1 on MV_CONTROL; the
 *    local copy stays under local retention, and the controller asks with mv.resend.v1 should a kept
 *    snapshot need it again).
 * Either way the objects' receipts are revoked (journalled, durable), an alert names them, and the
 * replicator sends them at once with message ids suffixed `.r<first 8 characters of the request id>`.
 * The alert resolves when every one of them has a fresh receipt (`check`, each round).
 * Like orders, a request is single-use and short-lived: one whose id was handled before (ids kept
 * durably in `<stateDir>/offsite-requests-seen.json` for MAX_REQUEST_AGE_MS) or whose `at` is older
 * than MAX_REQUEST_AGE_MS (or in the future past the clock tolerance) is refused and logged.
 */
import type { KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { CLOCK_TOLERANCE_MS, MedvaultError, OBJECT_HEADER, codes, decode, formatCount, objectKinds, parseObjectSubject, streams, subjects, validate, verifyMessage, type ObjectRef } from '@medvault/protocol';
import type { Link } from './link.js';
import type { ReceiptBook } from './receipts.js';
import type { Replicator, ReplicaSource } from './replicator.js';
import type { Spool } from './spool.js';
import { readFileIfExists, writeFileAtomic } from '../state/journal.js';

/** A resend/reconcile request older than this is refused (a replay of an old one does nothing). */
export const MAX_REQUEST_AGE_MS = 24 * 3600_000;

export interface OffsiteRequestDeps {
  site: string;
  repo: Pick<ReplicaSource, 'id' | 'listObjects'>;
  link: Pick<Link, 'read'>;
  book: Pick<ReceiptBook, 'revoke' | 'covers'>;
  replicator: Pick<Replicator, 'resend'>;
  spool: Pick<Spool, 'add'>;
  /** Where the ids of handled requests are kept. */
  stateDir: string;
  controllerKey: KeyObject;
  now: () => number;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export class OffsiteRequests {
  private readonly pending = new Map<string, ObjectRef[]>();
  private readonly seenFile: string;
  /** Request id → its `at`, for requests handled within MAX_REQUEST_AGE_MS. */
  private readonly seen: Map<string, number>;
  constructor(private readonly d: OffsiteRequestDeps) {
    this.seenFile = join(d.stateDir, 'offsite-requests-seen.json');
    const text = readFileIfExists(this.seenFile);
    this.seen = new Map(text ? (JSON.parse(text) as Array<[string, number]>) : []);
  }

  /** Refuses a replayed or stale request, else records its id durably before anything is done for it. */
  private admit(r: { type: string; id: string; at: number }): void {
    const now = this.d.now();
    if (this.seen.has(r.id)) throw new MedvaultError(codes.ORDER_REPLAYED, `${r.type} ${r.id} was already handled: requests are single-use`);
    if (r.at < now - MAX_REQUEST_AGE_MS) throw new MedvaultError(codes.ORDER_EXPIRED, `${r.type} ${r.id} was sent at ${new Date(r.at).toISOString()}, more than ${MAX_REQUEST_AGE_MS / 3600_000} h ago`);
    if (r.at > now + CLOCK_TOLERANCE_MS) throw new MedvaultError(codes.ORDER_NOT_YET_VALID, `${r.type} ${r.id} is dated ${new Date(r.at).toISOString()}, in the future`);
    for (const [id, at] of this.seen) if (at < now - MAX_REQUEST_AGE_MS - CLOCK_TOLERANCE_MS) this.seen.delete(id);
    this.seen.set(r.id, r.at);
    writeFileAtomic(this.seenFile, JSON.stringify([...this.seen]));
  }

  /** Handles one mv.resend.v1 or mv.reconcile.v1 message; returns the objects to be resent. Never throws. */
  async handle(kind: 'resend' | 'reconcile', data: Uint8Array): Promise<ObjectRef[]> {
    const { site, repo, log } = this.d;
    try {
      const r = decode(data, kind === 'resend' ? 'mv.resend.v1' : 'mv.reconcile.v1');
      verifyMessage(r, this.d.controllerKey);
      if (r.site !== site) throw new MedvaultError(codes.MESSAGE_INVALID, `${r.type} for site ${r.site} arrived at site ${site}`);
      this.admit(r);
      let objects: ObjectRef[];
      if (r.type === 'mv.resend.v1') {
        if (r.repo !== repo.id) throw new MedvaultError(codes.MESSAGE_INVALID, `resend ${r.id} names repository ${r.repo}; this appliance replicates ${repo.id}`);
        objects = r.objects;
      } else objects = await this.missingOffsite();
      if (objects.length === 0) {
        log('info', `${kind} request: nothing to send`, { request: r.id });
        return [];
      }
      this.d.book.revoke(repo.id, objects, { request: r.id, at: this.d.now() });
      this.d.replicator.resend(objects, `.r${r.id.slice(0, 8)}`);
      this.pending.set(r.id, objects);
      const names = objects.map((o) => `${o.kind} ${o.hash}`).join(', ');
      this.alert(r.id, 'open', `the controller ${kind === 'resend' ? `found ${formatCount(objects.length, 'off-site copy', 'off-site copies')} damaged` : `reconcile found ${formatCount(objects.length, 'object')} missing off site`} (${r.reason}); sending again: ${names}`);
      log('warn', `${kind} request: sending objects again`, { request: r.id, objects: objects.length, first: names.slice(0, 200) });
      return objects;
    } catch (err) {
      log('warn', `${kind} request refused`, { error: (err as Error).message });
      return [];
    }
  }

  /** Resolves the alert of every request whose objects all have fresh receipts. */
  check(): void {
    for (const [id, objects] of this.pending) {
      if (!this.d.book.covers(this.d.repo.id, objects)) continue;
      this.pending.delete(id);
      this.alert(id, 'resolved', `${objects.length === 1 ? 'the object is' : `all ${objects.length} objects are`} off site again, with fresh receipts`);
    }
  }

  /** Local objects of which MV_OFFSITE holds no complete set of parts (listed headers only), less the pruned ones. */
  async missingOffsite(): Promise<ObjectRef[]> {
    const { site, repo } = this.d;
    const pruned = await this.prunedOffsite();
    const parts = new Map<string, { want: number; got: Set<number> }>();
    for await (const m of this.d.link.read(streams.offsite.name, subjects.offsitePattern(site), { headersOnly: true })) {
      const o = parseObjectSubject(m.subject);
      if (!o || o.repo !== repo.id) continue;
      let h: { part?: unknown; parts?: unknown } = {};
      try {
        h = JSON.parse(m.header(OBJECT_HEADER) ?? '{}') as typeof h;
      } catch {
        continue;
      }
      if (typeof h.part !== 'number' || typeof h.parts !== 'number') continue;
      const k = `${o.kind}/${o.hash}`;
      const e = parts.get(k) ?? { want: h.parts, got: new Set<number>() };
      e.got.add(h.part);
      parts.set(k, e);
    }
    const missing: ObjectRef[] = [];
    for (const kind of objectKinds) {
      for await (const { hash } of repo.listObjects(kind)) {
        const e = parts.get(`${kind}/${hash}`);
        if ((!e || e.got.size < e.want) && !pruned.has(`${kind}/${hash}`)) missing.push({ kind, hash });
      }
    }
    return missing;
  }

  /** `kind/hash` of every object of this repository the controller's signed pruned records name. */
  async prunedOffsite(): Promise<Set<string>> {
    const out = new Set<string>();
    for await (const m of this.d.link.read(streams.control.name, subjects.control(this.d.site, 'pruned'))) {
      try {
        const r = decode(m.data, 'mv.pruned.v1');
        verifyMessage(r, this.d.controllerKey);
        if (r.site !== this.d.site || r.repo !== this.d.repo.id) continue;
        for (const o of r.objects) out.add(`${o.kind}/${o.hash}`);
      } catch (err) {
        this.d.log('warn', 'pruned record refused', { seq: m.seq, error: (err as Error).message });
      }
    }
    return out;
  }

  private alert(id: string, state: 'open' | 'resolved', message: string): void {
    this.d.spool.add('alert', validate({ type: 'mv.alert.v1', site: this.d.site, code: 'MV_ALERT_OFFSITE_RESEND', severity: 'warning', key: `offsite-resend:${id}`, state, message: message.slice(0, 2000), at: this.d.now() }, 'mv.alert.v1'));
  }
}
