/**
 * Fuzzing restore orders: 10,000 mutations of valid signed orders (field changes, type changes,
 * truncation, byte flips in the canonical JSON, extra and missing fields, wrong or re-used
 * signatures, replays, other sites, bad times, escaping paths and targets) go through the agent's
 * OrderRunner with a spy engine. None may execute, and the runner never throws.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson, generateSigningKey, makeOrder, signMessage, type OrderRequest, type RestoreOrder } from '@medvault/protocol';
import { OrderLedger } from './ledger.js';
import { OrderRunner, type RestoreEngine } from './runner.js';
import { AuditLog } from '../audit/audit-log.js';

const site = 'clinic-a';
const now = Date.UTC(2026, 11, 3, 12);

/** Deterministic PRNG (xorshift32), so a failure is reproducible from its iteration number. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(a: readonly T[]): T => a[Math.floor(next() * a.length)]! };
}

const junkValues: unknown[] = [null, true, false, 0, -1, 1.5, 2 ** 53, Number.MAX_VALUE, '', ' ', 'x'.repeat(10_000), '../../etc', '/', '/etc/passwd', [], [null], {}, { $ne: 1 }, '\u0000', 'clinic-b', 'latest', NaN];

describe('order fuzzing', () => {
  it('executes none of 10,000 mutated orders and never throws', async () => {
    // On tmpfs where there is one: 10,000 refusals are 10,000 fsynced audit entries.
    const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'mv-fuzz-'));
    const root = join(dir, 'restore');
    mkdirSync(root);
    const key = generateSigningKey();
    const otherKey = generateSigningKey();
    const calls: unknown[] = [];
    const engine: RestoreEngine = {
      async restore(o) {
        calls.push(o);
        return { snapshot: 'f'.repeat(64), files: 0, bytes: 0, verified: 0, failed: [] };
      },
    };
    const ledger = OrderLedger.open(join(dir, 'state'), undefined, now - 3_600_000);
    const audit = AuditLog.open(join(dir, 'state'), site, { now: () => now });
    const runner = new OrderRunner({
      site, controllerKey: key.publicKey, ledger, engine: (source) => (source === 'offsite' ? undefined : engine), restoreRoots: [root],
      report: () => {}, log: () => {}, now: () => now, audit,
    });
    const request: OrderRequest = { site, snapshot: 'latest', paths: ['fhir'], target: join(root, 'out'), source: 'local', mode: 'overwrite', requestedBy: { user: 'tess', mfa: true } };

    // One valid order is accepted and run first; its copies must then be refused as replays.
    const used = makeOrder(request, key, now);
    expect((await runner.handle(used, 1)).state).toBe('done');
    expect(calls).toHaveLength(1);
    calls.length = 0;

    const r = rng(20261203);
    const fields = Object.keys(used);
    const mutations: Array<(o: RestoreOrder) => unknown> = [
      // a member replaced by junk (signature no longer matches, or schema refuses)
      (o) => ({ ...o, [r.pick(fields)]: r.pick(junkValues) }),
      // a member removed
      (o) => { const c: Record<string, unknown> = { ...o }; delete c[r.pick(fields)]; return c; },
      // an extra member
      (o) => ({ ...o, [r.pick(['extra', 'admin', '__proto__', 'sig2', 'approved'])]: r.pick(junkValues) }),
      // a type change of a member
      (o) => { const k = r.pick(fields); const v = (o as Record<string, unknown>)[k]; return { ...o, [k]: typeof v === 'string' ? [v] : typeof v === 'number' ? String(v) : JSON.stringify(v) }; },
      // a byte flip in the canonical JSON
      (o) => { const b = Buffer.from(canonicalJson(o)); b[r.int(b.length)]! ^= 1 << r.int(8); return b.toString('latin1'); },
      // truncated canonical JSON
      (o) => canonicalJson(o).slice(0, r.int(canonicalJson(o).length)),
      // a signature from another key, or another order's signature
      (o) => signMessage({ ...o, sig: undefined }, otherKey),
      (o) => ({ ...makeOrder({ ...request, target: '/etc' }, key, now), sig: o.sig }),
      // a signature value bit-flipped
      (o) => { const v = Buffer.from(o.sig!.value, 'base64url'); v[r.int(v.length)]! ^= 1 << r.int(8); return { ...o, sig: { ...o.sig!, value: v.toString('base64url') } }; },
      // properly signed but wrong: another site, expired, not yet valid, too long-lived, a replay, escaping paths/targets
      () => makeOrder({ ...request, site: r.pick(['clinic-b', 'clinic-aa', 'clinic']) }, key, now),
      () => makeOrder(request, key, now - (17 + r.int(10_000)) * 60_000),
      () => makeOrder(request, key, now + (3 + r.int(10_000)) * 60_000),
      (o) => signMessage({ ...o, expiresAt: o.issuedAt + (16 + r.int(10_000)) * 60_000 }, key),
      () => used,
      () => ({ ...used }),
      () => makeOrder({ ...request, paths: [r.pick(['..', '../..', 'a/../..', './..', '/etc', 'fhir/../../x', 'a\u0000b'])] }, key, now),
      () => makeOrder({ ...request, target: r.pick(['/etc', '/', `${root}/../x`, '/tmp', '/root/.ssh']) }, key, now),
      () => makeOrder({ ...request, source: 'offsite' }, key, now),
      // plain junk
      () => r.pick(junkValues),
      () => JSON.parse(JSON.stringify({ type: 'mv.restore-order.v1' })),
    ];
    const seen = new Set<string>();
    let refused = 0;
    for (let i = 0; i < 10_000; i++) {
      const base = makeOrder(request, key, now);
      let value: unknown;
      try {
        const m = mutations[i % mutations.length]!;
        value = m(base);
        // Some mutations (a byte flip inside a string) may re-parse; try both forms.
        if (typeof value === 'string' && r.next() < 0.5) {
          try {
            value = JSON.parse(value);
          } catch {
            // stays a string
          }
        }
      } catch {
        value = 'unbuildable';
      }
      // A mutation that happens to change nothing (e.g. snapshot 'latest' → 'latest') leaves a valid
      // order, which rightly runs: replace such a no-op by a replay of the used order.
      let same = false;
      try {
        same = canonicalJson(value) === canonicalJson(base);
      } catch {
        same = false;
      }
      if (same) value = used;
      // Only a mutation that leaves a valid signature over an acceptable order could run; there must be none.
      let verdict;
      try {
        verdict = await runner.handle(value, 1000 + i);
      } catch (err) {
        throw new Error(`iteration ${i}: runner threw ${(err as Error).message}`);
      }
      if (verdict.state !== 'refused') {
        // The unmutated base order happens only if a mutation was a no-op; that is still a bug in the fuzzer.
        throw new Error(`iteration ${i}: mutation ${i % mutations.length} was ${verdict.state}: ${JSON.stringify(value).slice(0, 500)}`);
      }
      refused++;
      if (verdict.code) seen.add(verdict.code);
    }
    expect(refused).toBe(10_000);
    expect(calls).toHaveLength(0);
    // Every check fired at least once.
    for (const code of ['MV_ERR_MESSAGE_INVALID', 'MV_ERR_SIGNATURE_INVALID', 'MV_ERR_ORDER_SITE', 'MV_ERR_ORDER_EXPIRED', 'MV_ERR_ORDER_NOT_YET_VALID', 'MV_ERR_ORDER_LIFETIME', 'MV_ERR_ORDER_REPLAYED', 'MV_ERR_ORDER_PATH', 'MV_ERR_ORDER_TARGET']) {
      expect(seen, code).toContain(code);
    }
    // Every refusal is in the agent's audit trail, which still verifies.
    const report = audit.verify();
    expect(report.ok).toBe(true);
    expect(report.entries).toBe(2 + 10_000);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);
});
