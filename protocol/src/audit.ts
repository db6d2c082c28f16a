/**
 * Hash-chained audit trails, shared by agent and controller (pure: no I/O).
 *
 * Every entry (mv.audit.v1) carries `seq` (1, 2, 3, … without gaps), `prev` (the hash of the
 * entry before; GENESIS for the first) and `hash` = SHA-256 over the canonical encoding of all its
 * other members. `verifyChain` walks a chain in order and reports, for each break, where and why:
 *  1. an entry that does not validate as mv.audit.v1 (garbled);
 *  2. `hash` differs from the recomputed hash (the entry was edited);
 *  3. `seq` is not the previous seq + 1 (an entry was removed, or one inserted with a forged seq);
 *  4. `prev` differs from the previous entry's hash (an entry was inserted, removed or reordered).
 * Removing entries from the end leaves a valid, shorter chain: that is caught only against an
 * anchor, a head (seq and hash) known from elsewhere — the replicated copy, or an earlier verify.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical.js';
import { validate } from './decode.js';
import type { AuditActor, AuditEntry } from './messages.js';

export const GENESIS = '0'.repeat(64);

/** What a caller supplies for a new entry; the chain fills in seq, prev and hash. */
export interface AuditRecord {
  site?: string;
  at: number;
  actor: AuditActor;
  action: string;
  object: string;
  result: AuditEntry['result'];
  detail?: AuditEntry['detail'];
}

export interface ChainHead {
  seq: number;
  hash: string;
}

/** SHA-256 hex over the canonical encoding of `entry` without its `hash`. */
export function auditHash(entry: Omit<AuditEntry, 'hash'> & { hash?: string }): string {
  const { hash: _drop, ...body } = entry;
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

/** The entry that follows `head` (undefined: the first); validated, so it is safe to store. */
export function chainEntry(head: ChainHead | undefined, r: AuditRecord): AuditEntry {
  const body = {
    type: 'mv.audit.v1' as const,
    ...(r.site !== undefined ? { site: r.site } : {}),
    seq: (head?.seq ?? 0) + 1,
    at: r.at,
    actor: r.actor,
    action: r.action,
    object: r.object.slice(0, 1000),
    result: r.result,
    ...(r.detail !== undefined ? { detail: r.detail } : {}),
    prev: head?.hash ?? GENESIS,
  };
  return validate({ ...body, hash: auditHash(body) }, 'mv.audit.v1');
}

export interface ChainProblem {
  /** Position in the list given to verifyChain (0-based). */
  index: number;
  /** The entry's seq, when it has one. */
  seq?: number;
  kind: 'garbled' | 'edited' | 'gap' | 'link' | 'truncated';
  message: string;
}

export interface ChainReport {
  ok: boolean;
  entries: number;
  head?: ChainHead;
  problems: ChainProblem[];
}

/**
 * Verifies a whole chain, in order, from its first entry. `expect.head`: a head known from
 * elsewhere; the chain must reach it, with that hash at that seq. `expect.site`: every entry must
 * name this site (an agent's chain) or none (undefined: the controller's chain).
 */
export function verifyChain(entries: readonly unknown[], expect: { head?: ChainHead; site?: string | null } = {}): ChainReport {
  const problems: ChainProblem[] = [];
  let prev: ChainHead | undefined;
  const seen = new Map<number, string>();
  for (const [index, value] of entries.entries()) {
    let e: AuditEntry;
    try {
      e = validate(value, 'mv.audit.v1');
    } catch (err) {
      problems.push({ index, kind: 'garbled', message: `entry ${index + 1}: ${(err as Error).message}` });
      continue;
    }
    if (expect.site !== undefined && (e.site ?? null) !== expect.site) {
      problems.push({ index, seq: e.seq, kind: 'garbled', message: `entry seq ${e.seq} names site ${e.site ?? '(none)'}, expected ${expect.site ?? '(none)'}` });
    }
    const actual = auditHash(e);
    if (actual !== e.hash) problems.push({ index, seq: e.seq, kind: 'edited', message: `entry seq ${e.seq}: content does not match its hash (edited)` });
    const wantSeq = (prev?.seq ?? 0) + 1;
    if (e.seq !== wantSeq) {
      const dup = seen.has(e.seq);
      problems.push({ index, seq: e.seq, kind: 'gap', message: dup ? `entry seq ${e.seq} appears twice (inserted)` : `entry seq ${e.seq} follows seq ${prev?.seq ?? 0} (${e.seq > wantSeq ? `${e.seq - wantSeq} missing: removed` : 'out of order: inserted'})` });
    }
    if (e.prev !== (prev?.hash ?? GENESIS)) {
      problems.push({ index, seq: e.seq, kind: 'link', message: `entry seq ${e.seq} does not link to the entry before it (inserted, removed or reordered)` });
    }
    seen.set(e.seq, e.hash);
    prev = { seq: e.seq, hash: e.hash };
  }
  if (expect.head) {
    const at = seen.get(expect.head.seq);
    if (at === undefined) {
      problems.push({ index: entries.length, kind: 'truncated', message: `chain ends at seq ${prev?.seq ?? 0} but seq ${expect.head.seq} is known to exist (entries removed at the end)` });
    } else if (at !== expect.head.hash) {
      problems.push({ index: entries.length, seq: expect.head.seq, kind: 'edited', message: `entry seq ${expect.head.seq} differs from the known copy` });
    }
  }
  return { ok: problems.length === 0, entries: entries.length, ...(prev ? { head: prev } : {}), problems };
}

/** One entry as a CSV row: seq, time (ISO), actor kind, actor id, action, object, result, detail (JSON), prev, hash. */
export const AUDIT_CSV_HEADER = 'seq,time,site,actor_kind,actor_id,action,object,result,detail,prev,hash';

export function auditCsvRow(e: AuditEntry): string {
  const cell = (v: string) => (/[",\r\n]/.test(v) || /^[=+\-@\t]/.test(v) ? `"${(/^[=+\-@\t]/.test(v) ? `'${v}` : v).replace(/"/g, '""')}"` : v);
  return [String(e.seq), new Date(e.at).toISOString(), e.site ?? '', e.actor.kind, e.actor.id, e.action, e.object, e.result, e.detail ? canonicalJson(e.detail) : '', e.prev, e.hash]
    .map(cell)
    .join(',');
}
