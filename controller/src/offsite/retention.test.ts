/**
 * Off-site retention, pure: the RetentionBook (first complete needs list wins; controller time, not
 * the agent's claim) and planPrune's golden cases: a flood of fake snapshots in one day does not
 * push real ones out; holds, min_age (of snapshots and of receipts), unknown objects, config and
 * key are kept; an object a kept snapshot shares with a dropped one stays; a repository with an
 * incomplete or missing needs list is held back whole; a pruned object a kept snapshot needs again
 * is asked for again.
 */
import { describe, expect, it } from 'vitest';
import { MAX_MESSAGE_BYTES, MAX_NEEDS_PER_PART, encode, sha256Hex, subjects, type ObjectKind, type ObjectRef } from '@medvault/protocol';
import type { OffsiteEntry } from '../ingest/offsite-index.js';
import { formatPlan, planPrune, type PlanInput } from './prune.js';
import { RetentionBook } from './retention.js';

const SITE = 'clinic-a';
const REPO = 'aa'.repeat(16);
const DAY = 86_400_000;
const T0 = Date.UTC(2025, 0, 1, 12);
const h = (s: string) => sha256Hex(Buffer.from(s));
const ref = (kind: ObjectKind, name: string): ObjectRef => ({ kind, hash: h(name) });
const base = [ref('config', 'config'), ref('key', 'key')];

function needs(snapshot: string, objects: ObjectRef[], o: { claimed?: number; tags?: string[]; part?: number; parts?: number; store?: string; repo?: string } = {}) {
  return encode({
    type: 'mv.snapshot-needs.v1', site: SITE, repo: o.repo ?? REPO, snapshot: h(snapshot), time: o.claimed ?? T0, store: o.store ?? 'records', tags: o.tags ?? [],
    part: o.part ?? 0, parts: o.parts ?? 1, objects,
  });
}
const at = (book: RetentionBook, time: number, data: Uint8Array) => book.applyNeeds({ subject: subjects.event(SITE, 'needs'), data, time });
/** A snapshot needing config, key, itself and `packs`. */
const snap = (name: string, packs: string[]) => [...base, ref('snapshot', name), ...packs.map((p) => ref('pack', p))];
const entry = (o: ObjectRef, storedAt = T0): OffsiteEntry => ({ site: SITE, repo: REPO, ...o, size: 100, storedAt });

function plan(book: RetentionBook, entries: OffsiteEntry[], x: Partial<PlanInput> = {}) {
  return planPrune({
    site: SITE, lists: book.snapshots(SITE), needs: (repo, s) => book.needKeys(SITE, repo, s), entries, held: new Set(), policy: { last: 1 }, minAgeMs: DAY,
    now: T0 + 30 * DAY, pruned: (o) => book.pruned(o) !== undefined, ...x,
  });
}
const deleted = (p: ReturnType<typeof planPrune>) => p.delete.map((e) => `${e.kind} ${e.hash}`).sort();
const names = (...refs: ObjectRef[]) => refs.map((r) => `${r.kind} ${r.hash}`).sort();

describe('RetentionBook', () => {
  it('keeps the first complete list per snapshot, by the stream time of its first part; later lists and odd parts are ignored', () => {
    const book = new RetentionBook();
    expect(at(book, T0, needs('s1', snap('s1', ['p1', 'p2']), { parts: 2, claimed: T0 - 999 * DAY }))).toBeUndefined();
    expect(book.needs(SITE, REPO, h('s1'))).toBeUndefined(); // incomplete
    expect(at(book, T0 + 5, needs('s1', [ref('pack', 'x')], { part: 0, parts: 2 }))).toMatch(/part 0 is in already/);
    expect(at(book, T0 + 6, needs('s1', [ref('pack', 'x')], { part: 1, parts: 3 }))).toMatch(/does not match the first part/);
    expect(at(book, T0 + 7, needs('s1', [ref('pack', 'p3')], { part: 1, parts: 2 }))).toBeUndefined();
    expect(book.needs(SITE, REPO, h('s1'))).toEqual([...snap('s1', ['p1', 'p2']), ref('pack', 'p3')]);
    // A compromised appliance sends a shorter list (and no hold tag) later: ignored.
    expect(at(book, T0 + DAY, needs('s1', [ref('snapshot', 's1')]))).toMatch(/complete; a later one is ignored/);
    expect(book.needs(SITE, REPO, h('s1'))).toHaveLength(6);
    expect(book.snapshots(SITE)).toEqual([expect.objectContaining({ snapshot: h('s1'), time: T0, claimedTime: T0 - 999 * DAY, complete: true, parts: 2 })]);
    // A list naming another site than its subject is dropped.
    expect(book.applyNeeds({ subject: subjects.event('clinic-b', 'needs'), data: needs('s2', []), time: T0 })).toMatch(/came from site clinic-b/);
  });

  it('takes a needs part of the largest size the schema allows (MAX_NEEDS_PER_PART objects, 100 tags, long store name): under decode\'s limit', () => {
    const book = new RetentionBook();
    const objects = Array.from({ length: MAX_NEEDS_PER_PART }, (_, i) => ref('snapshot', `o${i}`));
    const data = needs('big', objects, { tags: Array.from({ length: 100 }, (_, i) => `${i}`.padEnd(100, 't')), store: 's'.repeat(200) });
    expect(data.byteLength).toBeLessThan(MAX_MESSAGE_BYTES);
    expect(at(book, T0, data)).toBeUndefined();
    expect(book.needs(SITE, REPO, h('big'))).toHaveLength(MAX_NEEDS_PER_PART);
  });

  it('marks pruned objects until their next receipt', () => {
    const book = new RetentionBook();
    const id = { site: SITE, repo: REPO, ...ref('pack', 'p1') };
    book.applyPruned({ type: 'mv.pruned.v1', id: '5b1c3c48-6a0e-4b36-9d4c-3f4a4b0f7e11', site: SITE, repo: REPO, objects: [ref('pack', 'p1')], reason: 'r', at: T0 });
    expect(book.pruned(id)?.reason).toBe('r');
    book.receipted(id);
    expect(book.pruned(id)).toBeUndefined();
  });
});

describe('planPrune (golden cases)', () => {
  it('a flood of fake snapshots in one day takes one daily slot, whatever times they claim', () => {
    const book = new RetentionBook();
    for (let d = 0; d < 10; d++) at(book, T0 + d * DAY, needs(`real${d}`, snap(`real${d}`, [`r${d}`])));
    // 500 fakes on day 9, claiming one a day into the future (by agent time they would fill every slot).
    for (let i = 0; i < 500; i++) at(book, T0 + 9 * DAY + 1000 + i, needs(`fake${i}`, snap(`fake${i}`, ['f']), { claimed: T0 + (10 + i) * DAY }));
    const p = plan(book, [], { policy: { daily: 7 }, minAgeMs: DAY, now: T0 + 12 * DAY });
    const kept = p.snapshots.filter((s) => s.keep).map((s) => s.snapshot);
    expect(kept.sort()).toEqual([...[3, 4, 5, 6, 7, 8].map((d) => h(`real${d}`)), h('fake499')].sort());
    expect(p.snapshots.find((s) => s.snapshot === h('real5'))!.reasons).toEqual([`daily ${new Date(T0 + 5 * DAY).toISOString().slice(0, 10)}`]);
  });

  it('deletes only objects no kept snapshot needs: holds, min_age, unknown objects, config and key, young receipts are kept', () => {
    const book = new RetentionBook();
    at(book, T0, needs('s1', snap('s1', ['p1', 'shared'])));
    at(book, T0 + DAY, needs('s2', snap('s2', ['p2']), { tags: ['legal-hold'] }));
    at(book, T0 + 2 * DAY, needs('s3', snap('s3', ['p3', 'young'])));
    at(book, T0 + 3 * DAY, needs('s4', snap('s4', ['p4', 'shared'])));
    at(book, T0 + 4 * DAY, needs('s5', snap('s5', ['p5'])));
    const now = T0 + 4 * DAY + 3_600_000;
    const objects = [...base, ...['s1', 's2', 's3', 's4', 's5'].map((s) => ref('snapshot', s)), ...['p1', 'p2', 'p3', 'p4', 'p5', 'shared', 'unknown'].map((p) => ref('pack', p))];
    const entries = [...objects.map((o) => entry(o)), entry(ref('pack', 'young'), now - 1000)];
    // Kept: s5 (last 1; and younger than min_age), s2 (hold tag), s4 (held by a technician); s1 and s3 go.
    const p = plan(book, entries, { policy: { last: 1 }, minAgeMs: DAY, now, held: new Set([h('s4')]) });
    const why = Object.fromEntries(p.snapshots.map((s) => [s.snapshot, s.reasons]));
    expect(why[h('s5')]).toEqual(['last 1 of 1', 'younger than min_age 1d']);
    expect(why[h('s2')]).toEqual(['legal hold (tag legal-hold)']);
    expect(why[h('s4')]).toEqual(['legal hold']);
    expect(why[h('s1')]).toEqual([]);
    // 'shared' is needed by s4 (kept), 'young' was receipted an instant ago, 'unknown' is in no list.
    expect(deleted(p)).toEqual(names(ref('snapshot', 's1'), ref('pack', 'p1'), ref('snapshot', 's3'), ref('pack', 'p3')));
    expect(p.delete.find((e) => e.hash === h('p1'))!.why).toBe(`needed only by snapshot ${h('s1').slice(0, 12)}, which the policy drops`);
    expect(p.kept).toBe(entries.length - 4);
    // The dry-run text: per snapshot, newest first, why it is kept or that it goes; then each copy that goes.
    const text = formatPlan(p);
    expect(text[0]).toBe(`site ${SITE}: 3 snapshots kept, 2 dropped; 4 copies to delete (400 bytes), ${entries.length - 4} kept`);
    expect(text[1]).toBe(`  snapshot ${h('s5').slice(0, 12)} records ${new Date(T0 + 4 * DAY).toISOString()}: kept: last 1 of 1; younger than min_age 1d`);
    expect(text).toContain(`  snapshot ${h('s3').slice(0, 12)} records ${new Date(T0 + 2 * DAY).toISOString()}: dropped: no rule keeps it`);
    expect(text).toContain(`  delete ${REPO} pack ${h('p3')} (100 bytes): needed only by snapshot ${h('s3').slice(0, 12)}, which the policy drops`);
    // No rule at all keeps everything.
    expect(plan(book, entries, { policy: {}, now }).delete).toEqual([]);
  });

  it('holds back a repository while a needs list is incomplete or a snapshot is off site without one', () => {
    const book = new RetentionBook();
    at(book, T0, needs('s1', snap('s1', ['p1'])));
    at(book, T0 + DAY, needs('s2', snap('s2', ['p2'])));
    const entries = [...snap('s1', ['p1']), ref('snapshot', 's2'), ref('pack', 'p2')].map((o) => entry(o));
    expect(deleted(plan(book, entries))).toEqual(names(ref('snapshot', 's1'), ref('pack', 'p1')));
    const orphan = [...entries, entry(ref('snapshot', 's0'))];
    const blocked = plan(book, orphan);
    expect(blocked.delete).toEqual([]);
    expect(blocked.snapshots.every((s) => s.keep && s.reasons[0]!.includes(`snapshot ${h('s0').slice(0, 12)} is off site without a needs list`))).toBe(true);
    at(book, T0 + 2 * DAY, needs('s3', [ref('pack', 'p2')], { parts: 2 }));
    expect(plan(book, entries).delete).toEqual([]);
    expect(plan(book, entries).snapshots[0]!.reasons[0]).toMatch(/needs list of snapshot .* is incomplete/);
  });

  it('asks for a pruned object again when a kept snapshot needs it', () => {
    const book = new RetentionBook();
    at(book, T0, needs('s1', snap('s1', ['p1'])));
    book.applyPruned({ type: 'mv.pruned.v1', id: '5b1c3c48-6a0e-4b36-9d4c-3f4a4b0f7e11', site: SITE, repo: REPO, objects: [ref('pack', 'old')], reason: 'r', at: T0 });
    at(book, T0 + DAY, needs('s2', snap('s2', ['p1', 'old'])));
    const p = plan(book, snap('s2', ['p1']).map((o) => entry(o)));
    expect(p.reneeded).toEqual([{ repo: REPO, ...ref('pack', 'old'), snapshot: h('s2') }]);
  });
});
