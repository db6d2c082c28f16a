/**
 * Link.read against a real TLS-only nats-server with the generated per-site permissions, as a
 * site's agent (its own nkey and inbox prefix), and the same expectations against MemLink.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { OBJECT_HEADER, streams, subjects } from '@medvault/protocol';
import type { Nats } from '../../controller/src/nats.js';
import { startSecureSite, type SecureSite } from '../support/secure-nats.js';
import { freePort } from '../support/nats-server.js';
import { until } from '../support/procs.js';
import { FOLLOW_STALL_MS, MSG_SIZE_HEADER, openLink, type Link } from '../../agent/src/replicate/link.js';
import { MemLink } from '../../agent/src/replicate/mem-link.js';

const A = 'clinic-a';
const B = 'clinic-b';
const REPO = 'ab'.repeat(16);
const hash = (i: number) => i.toString(16).padStart(64, '0');
const OFF = streams.offsite.name;

/** What both twins hold: three messages of site A (one of 900 KiB) and one of site B, in this order. */
const fixture = [
  { subject: subjects.offsite(A, REPO, 'pack', hash(1)), data: randomBytes(900 * 1024) },
  { subject: subjects.offsite(B, REPO, 'pack', hash(2)), data: randomBytes(100) },
  { subject: subjects.offsite(A, REPO, 'index', hash(3)), data: randomBytes(10) },
  { subject: subjects.offsite(A, REPO, 'snapshot', hash(4)), data: randomBytes(0) },
].map((m, i) => ({ ...m, headers: { [OBJECT_HEADER]: `part-${i}` } }));

async function all(it: AsyncIterable<{ subject: string; data: Uint8Array; header(n: string): string | undefined }>) {
  const out: { subject: string; data: Buffer; header: string | undefined; size: string | undefined }[] = [];
  for await (const m of it) out.push({ subject: m.subject, data: Buffer.from(m.data), header: m.header(OBJECT_HEADER), size: m.header(MSG_SIZE_HEADER) });
  return out;
}

/** The read contract both twins pass. */
async function readContract(link: Link): Promise<void> {
  const got = await all(link.read(OFF, subjects.offsitePattern(A)));
  const mine = fixture.filter((m) => m.subject.startsWith(`mv.v1.off.${A}.`));
  expect(got.map((m) => m.subject)).toEqual(mine.map((m) => m.subject));
  got.forEach((m, i) => {
    expect(m.data.equals(mine[i]!.data)).toBe(true);
    expect(m.header).toBe(mine[i]!.headers[OBJECT_HEADER]);
  });
  const heads = await all(link.read(OFF, subjects.offsitePattern(A), { headersOnly: true }));
  expect(heads.map((m) => [m.subject, m.data.length, m.size, m.header])).toEqual(mine.map((m) => [m.subject, 0, String(m.data.length), m.headers[OBJECT_HEADER]]));
  const one = await all(link.read(OFF, `mv.v1.off.${A}.${REPO}.index.>`));
  expect(one.map((m) => m.subject)).toEqual([subjects.offsite(A, REPO, 'index', hash(3))]);
  expect(await all(link.read(OFF, `mv.v1.off.${A}.${'cd'.repeat(16)}.>`))).toEqual([]);
}

describe('MemLink.read', () => {
  it('passes the read contract', async () => {
    const link = new MemLink();
    for (const [i, m] of fixture.entries()) await link.publish(m.subject, m.data, { msgID: `m${i}`, headers: m.headers });
    await readContract(link);
  });
});

describe('Link.read on a secure nats-server, as a site', () => {
  let s: SecureSite;
  let ctl: Nats;
  let link: Link;
  beforeAll(async () => {
    s = await startSecureSite('mv-linkread-', [A, B], A, { readStallMs: 1500 });
    ({ ctl, link } = s);
    for (const m of fixture) await ctl.bus.publish(m.subject, m.data, { headers: m.headers });
  }, 60_000);
  afterAll(() => s?.dispose());

  it('passes the read contract with the site credentials', async () => {
    await readContract(link);
  });

  it('with failFast, fails to open with MV_ERR_TRANSPORT_FAILED naming the servers when NATS is not there', async () => {
    const url = `tls://127.0.0.1:${await freePort()}`;
    await expect(openLink({ servers: [url], name: 'cli', site: A, nkeySeedFile: s.siteSeedFile[A]!, caFile: s.caFile, failFast: true }))
      .rejects.toMatchObject({ code: 'MV_ERR_TRANSPORT_FAILED', message: expect.stringContaining(`cannot connect to NATS at ${url}`) });
  });

  it('with failFast, fails within 30 s with MV_ERR_TRANSPORT_FAILED naming the servers when the server is SIGSTOPped (TCP accepted, nothing answered)', async () => {
    s.server.pause();
    await new Promise((r) => setTimeout(r, 300)); // the stop reaches every thread of the server
    try {
      const t0 = Date.now();
      await expect(openLink({ servers: [s.url], name: 'cli', site: A, nkeySeedFile: s.siteSeedFile[A]!, caFile: s.caFile, failFast: true }))
        .rejects.toMatchObject({ code: 'MV_ERR_TRANSPORT_FAILED', message: expect.stringContaining(`cannot connect to NATS at ${s.url}`) });
      expect(Date.now() - t0).toBeLessThan(30_000);
    } finally {
      s.server.resume();
    }
  }, 60_000);

  it('close() returns within seconds when the server is SIGSTOPped (a drain waits for answers that never come)', async () => {
    const l = await openLink({ servers: [s.url], name: 'cli', site: A, nkeySeedFile: s.siteSeedFile[A]!, caFile: s.caFile, failFast: true });
    s.server.pause();
    try {
      const t0 = Date.now();
      await l.close();
      expect(Date.now() - t0).toBeLessThan(15_000);
    } finally {
      s.server.resume();
    }
  }, 60_000);

  it("refuses another site's off-site copies with MV_ERR_TRANSPORT_FAILED", async () => {
    await expect(all(link.read(OFF, subjects.offsitePattern(B)))).rejects.toMatchObject({ code: 'MV_ERR_TRANSPORT_FAILED', message: expect.stringContaining('mv.v1.off.clinic-b.>') });
  });

  it('reads 40 MiB (more than it keeps in flight) in order, then ends', async () => {
    const repo = 'ef'.repeat(16);
    const parts = Array.from({ length: 40 }, (_, i) => randomBytes(1000 * 1024 + i));
    for (const [i, p] of parts.entries()) await ctl.bus.publish(subjects.offsite(A, repo, 'pack', hash(100 + i)), p);
    const t0 = Date.now();
    const got = await all(link.read(OFF, `mv.v1.off.${A}.${repo}.>`));
    const ms = Date.now() - t0;
    expect(got.length).toBe(40);
    got.forEach((m, i) => expect(m.data.equals(parts[i]!)).toBe(true));
    console.log(`read 40 parts, ${(40 * 1000 * 1024) / 1e6} MB, in ${ms} ms`);
  });

  it('follow goes on after a nats-server restart (its memory-stored consumer is gone): nothing skipped', async () => {
    const repo = '34'.repeat(16);
    const got: string[] = [];
    const silentWhileHandling: number[] = [];
    const f = link.follow(OFF, `mv.v1.off.${A}.${repo}.>`, 1, async (m) => {
      silentWhileHandling.push(f.silentMs);
      got.push(m.subject);
    });
    await ctl.bus.publish(subjects.offsite(A, repo, 'index', hash(301)), randomBytes(10));
    await until('the first message', () => (got.length === 1 ? true : undefined), 30_000);
    // Its health: never silent while handling a message, and just heard from (a duration, not a time).
    expect(f.silentMs).toBeGreaterThanOrEqual(0);
    expect(f.silentMs).toBeLessThan(FOLLOW_STALL_MS);
    await s.server.stop();
    await s.server.restart();
    await until('the controller reconnected', async () => (await ctl.bus.publish(subjects.offsite(A, repo, 'index', hash(302)), randomBytes(10)).then(() => true, () => undefined)), 60_000, 1000);
    await until('the message published after the restart', () => (got.length >= 2 ? true : undefined), 120_000, 500);
    await f.stop();
    expect([...new Set(got)]).toEqual([subjects.offsite(A, repo, 'index', hash(301)), subjects.offsite(A, repo, 'index', hash(302))]);
    expect(silentWhileHandling.every((ms) => ms === 0)).toBe(true);
  }, 240_000);

  it('follow: silentMs is a duration on a monotonic clock, so a wall-clock step (NTP correcting a dead RTC) does not make a live follower look silent', async () => {
    const repo = '56'.repeat(16);
    let got = 0;
    const f = link.follow(OFF, `mv.v1.off.${A}.${repo}.>`, 1, async () => void got++);
    try {
      await ctl.bus.publish(subjects.offsite(A, repo, 'index', hash(401)), randomBytes(10));
      await until('the message', () => (got === 1 ? true : undefined), 30_000);
      const wall = Date.now;
      const step = 10 * 60_000; // past the daemon's FOLLOWER_DEAD_MS (3x FOLLOW_STALL_MS)
      const now = vi.spyOn(Date, 'now').mockImplementation(() => wall.call(Date) + step);
      try {
        expect(f.silentMs).toBeLessThan(FOLLOW_STALL_MS);
      } finally {
        now.mockRestore();
      }
    } finally {
      await f.stop();
    }
  });

  it('fails with MV_ERR_TRANSPORT_FAILED when the server stalls mid-read, instead of hanging', async () => {
    const repo = '12'.repeat(16);
    for (let i = 0; i < 48; i++) await ctl.bus.publish(subjects.offsite(A, repo, 'pack', hash(200 + i)), randomBytes(1000 * 1024));
    const it = link.read(OFF, `mv.v1.off.${A}.${repo}.>`)[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false);
    s.server.pause();
    try {
      const t0 = Date.now();
      let n = 1;
      const err = await (async () => {
        try {
          while (!(await it.next()).done) n++;
        } catch (e) {
          return e as { code?: string; message: string };
        }
        return undefined;
      })();
      expect(n).toBeLessThan(48);
      expect(err?.code).toBe('MV_ERR_TRANSPORT_FAILED');
      expect(err?.message).toMatch(/no message for 1500 ms/);
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      s.server.resume();
    }
  }, 30_000);
});
